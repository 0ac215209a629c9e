package station

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/noticerelay/noticerelay/pkg/web"
)

// SaveSession stores a new session (web.SessionStore), removing expired ones.
func (s *Store) SaveSession(ctx context.Context, se web.Session) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, ts(time.Now())); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (key, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			se.Key, se.User, se.CSRF, ts(se.Created), ts(se.Expires))
		return err
	})
}

// Session returns the unexpired session with key (web.SessionStore); a
// suspended user has none.
func (s *Store) Session(ctx context.Context, key string, now time.Time) (web.Session, error) {
	se := web.Session{Key: key}
	var created, expires string
	err := s.db.QueryRowContext(ctx, `SELECT user_id, csrf, created_at, expires_at FROM sessions WHERE key = ? AND expires_at > ?
		AND user_id NOT IN (SELECT user_id FROM user_state WHERE suspended_at IS NOT NULL)`,
		key, ts(now)).Scan(&se.User, &se.CSRF, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return se, web.ErrNoSession
	}
	se.Created, se.Expires = parseTS(created), parseTS(expires)
	return se, err
}

// DeleteSession ends a session (web.SessionStore).
func (s *Store) DeleteSession(ctx context.Context, key string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE key = ?`, key)
	return err
}
