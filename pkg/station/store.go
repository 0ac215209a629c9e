// Package station is the receiving station's store: one SQLite file (a
// pure-Go driver, no cgo) that holds every delivery the station took from
// the relay, the notices as the analysts read them, their triage, the
// messages with the platform, the analysts' sessions and the access log
// that Article 25 of Directive (EU) 2016/680 requires. Nothing the station
// knows is kept only in memory.
package station

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// File is the database's name under the station's data directory.
const File = "station.db"

// timeFormat is how times are stored: UTC with a fixed width, so that
// text order is time order.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

func ts(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTS(s string) time.Time {
	t, _ := time.Parse(timeFormat, s)
	return t
}

// Store is the station's database.
type Store struct {
	db *sql.DB
}

// schema is version 1 of the database. Attachments, messages and
// follow-ups have their place from the start, so that the relay's
// deliveries of those kinds are kept as soon as it sends them.
// Later versions are in migrations.
const schema = `
CREATE TABLE deliveries (
	id          TEXT PRIMARY KEY,       -- the relay's delivery id: receiving twice is a no-op
	notice_id   TEXT NOT NULL,
	type        TEXT NOT NULL,          -- notice, withdrawal, attachment, message, or what a newer relay sends
	priority    TEXT NOT NULL,
	sealed      INTEGER NOT NULL,       -- it arrived encrypted to the authority's age key
	body        BLOB NOT NULL,          -- as received, decrypted
	stored_at   TEXT NOT NULL
) STRICT;
CREATE INDEX deliveries_notice ON deliveries(notice_id);

CREATE TABLE notices (
	id                TEXT PRIMARY KEY,
	reference         TEXT NOT NULL,
	platform          TEXT NOT NULL,
	category          TEXT NOT NULL,
	priority          TEXT NOT NULL,
	countries         TEXT NOT NULL,     -- the Member States it names, comma-separated
	received_at       TEXT NOT NULL,     -- when the relay received it (or, if unknown, the station)
	stored_at         TEXT NOT NULL,
	body              BLOB NOT NULL,     -- the forwarded notice (JSON)
	complete          INTEGER NOT NULL,  -- 0 while only a withdrawal carried it
	follow_up_of      TEXT,
	supersedes        TEXT,
	escalation        BLOB,
	withdrawn_at      TEXT,
	withdrawal_reason TEXT,
	opened_at         TEXT,
	opened_by         TEXT,
	state             TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new','in_progress','forwarded','closed')),
	destination       TEXT NOT NULL DEFAULT '',
	outcome           TEXT NOT NULL DEFAULT '',
	assignee          TEXT NOT NULL DEFAULT '',
	updated_at        TEXT NOT NULL
) STRICT;
CREATE INDEX notices_order ON notices(received_at);

CREATE TABLE notes (
	id         INTEGER PRIMARY KEY,
	notice_id  TEXT NOT NULL REFERENCES notices(id),
	user_id    TEXT NOT NULL,
	text       TEXT NOT NULL,
	created_at TEXT NOT NULL
) STRICT;

CREATE TABLE attachments (
	delivery_id TEXT PRIMARY KEY,
	notice_id   TEXT NOT NULL,
	sha256      TEXT NOT NULL,
	size        INTEGER NOT NULL,
	media_type  TEXT NOT NULL,
	filename    TEXT NOT NULL,
	relevance   TEXT NOT NULL,
	data        BLOB,                   -- as downloaded (sealed ones stay sealed until opened); NULL until then
	stored_at   TEXT NOT NULL
) STRICT;
CREATE INDEX attachments_notice ON attachments(notice_id);

CREATE TABLE messages (
	id          TEXT PRIMARY KEY,        -- the relay's message id, or the station's for one not yet sent
	notice_id   TEXT NOT NULL,
	direction   TEXT NOT NULL CHECK (direction IN ('in','out')),
	kind        TEXT NOT NULL,
	text        TEXT NOT NULL,
	in_reply_to TEXT NOT NULL DEFAULT '',
	user_id     TEXT NOT NULL DEFAULT '',
	status      TEXT NOT NULL CHECK (status IN ('received','queued','sent')),
	at          TEXT NOT NULL
) STRICT;
CREATE INDEX messages_notice ON messages(notice_id, at);

CREATE TABLE access_log (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	at        TEXT NOT NULL,
	user_id   TEXT NOT NULL,
	action    TEXT NOT NULL,
	notice_id TEXT NOT NULL DEFAULT '',
	detail    TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;

CREATE TABLE sessions (
	key        TEXT PRIMARY KEY,         -- SHA-256 of the cookie: the cookie itself is never stored
	user_id    TEXT NOT NULL,
	csrf       TEXT NOT NULL,
	created_at TEXT NOT NULL,
	expires_at TEXT NOT NULL
) STRICT;

CREATE TABLE relay (
	id           INTEGER PRIMARY KEY CHECK (id = 1),
	unreachable_since TEXT,              -- NULL while the relay answers
	last_contact TEXT,
	last_error   TEXT NOT NULL DEFAULT ''
) STRICT;
INSERT INTO relay (id) VALUES (1);
`

// Open opens (creating if needed) the database under dir: WAL, every
// commit fsynced (synchronous=FULL), foreign keys on.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("station store: %w", err)
	}
	path := filepath.Join(dir, File)
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600); err != nil {
		return nil, fmt.Errorf("station store: %w", err)
	} else {
		f.Close()
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("station store: %w", err)
	}
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("station store %s: %w", path, err)
	}
	return s, nil
}

// migrations[i] takes the database from version i to i+1.
var migrations = []string{schema, schemaV2, schemaV3, schemaV4}

// schemaV2 makes messages sendable: an outgoing message is pending until
// the relay has stored it (relay_id, sent_at) or refused it for good;
// attachments record whether the kept file is sealed and why a download
// failed.
const schemaV2 = `
CREATE TABLE messages_v2 (
	id          TEXT PRIMARY KEY,        -- received: the relay's id; outgoing: the station's, sent as Idempotency-Key
	notice_id   TEXT NOT NULL,
	direction   TEXT NOT NULL CHECK (direction IN ('in','out')),
	kind        TEXT NOT NULL,
	text        TEXT NOT NULL,
	in_reply_to TEXT NOT NULL DEFAULT '', -- the relay's id of the message answered
	user_id     TEXT NOT NULL DEFAULT '',
	status      TEXT NOT NULL CHECK (status IN ('received','pending','sent','refused')),
	at          TEXT NOT NULL,            -- received: sent by the platform; outgoing: written
	relay_id    TEXT NOT NULL DEFAULT '', -- outgoing: the relay's id, once it stored the message
	sent_at     TEXT NOT NULL DEFAULT '', -- outgoing: the relay's time stamp, once stored
	attempts    INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT NOT NULL DEFAULT ''
) STRICT;
INSERT INTO messages_v2 (id, notice_id, direction, kind, text, in_reply_to, user_id, status, at)
	SELECT id, notice_id, direction, kind, text, in_reply_to, user_id,
		CASE status WHEN 'queued' THEN 'pending' ELSE status END, at FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v2 RENAME TO messages;
CREATE INDEX messages_notice ON messages(notice_id, at);
CREATE INDEX messages_pending ON messages(at) WHERE status = 'pending';

ALTER TABLE attachments ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;   -- data is age-encrypted to the authority
ALTER TABLE attachments ADD COLUMN fetched_at TEXT;
ALTER TABLE attachments ADD COLUMN fetch_error TEXT NOT NULL DEFAULT '';
ALTER TABLE attachments ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
`

// schemaV3 records which authority the relay says the station receives
// for (the inbox's answer names it), and the leads' suspensions of users
// (the users themselves are in the configuration file).
const schemaV3 = `
ALTER TABLE relay ADD COLUMN authority_id TEXT NOT NULL DEFAULT '';
ALTER TABLE relay ADD COLUMN authority_name TEXT NOT NULL DEFAULT '';
ALTER TABLE relay ADD COLUMN authority_country TEXT NOT NULL DEFAULT '';

CREATE TABLE user_state (
	user_id      TEXT PRIMARY KEY,
	suspended_at TEXT,                   -- NULL: the user may sign in
	suspended_by TEXT NOT NULL DEFAULT ''
) STRICT;
`

// schemaV4 records files the relay will no longer hand out because the
// platform withdrew their notice (410 Gone): they are not asked for again.
const schemaV4 = `
ALTER TABLE attachments ADD COLUMN withdrawn_at TEXT;
`

func (s *Store) migrate(ctx context.Context) error {
	// Each step reads the version inside its (immediate) transaction:
	// another process opening the same file at the same moment (a tool
	// reading the station's database) waits, then finds it migrated.
	for {
		done := false
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var v int
			if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
				return err
			}
			switch {
			case v > len(migrations):
				return fmt.Errorf("database version %d is newer than this program (%d)", v, len(migrations))
			case v == len(migrations):
				done = true
				return nil
			}
			if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migrating to version %d: %w", v+1, err)
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1))
			return err
		})
		if err != nil || done {
			return err
		}
	}
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// tx runs f in one transaction, committed only if f returns nil.
// each runs query q and hands every row to scan, in order.
func (s *Store) each(ctx context.Context, q string, scan func(*sql.Rows) error, args ...any) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// strings runs query q, which selects one text column, and returns its
// values.
func (s *Store) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	var out []string
	err := s.each(ctx, q, func(r *sql.Rows) error {
		var v string
		err := r.Scan(&v)
		out = append(out, v)
		return err
	}, args...)
	return out, err
}

func (s *Store) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}
