package station

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// UserState is what the station's database knows of a user of its
// configuration: whether a lead suspended them, when they last signed in
// and how many sessions they have open.
type UserState struct {
	SuspendedAt  time.Time // zero: not suspended
	SuspendedBy  string
	LastSignIn   time.Time // zero: never
	OpenSessions int
}

// Suspended reports whether the user is suspended.
func (u UserState) Suspended() bool { return !u.SuspendedAt.IsZero() }

// Users returns the state of every user the database knows of, by id
// (a user it does not list has never signed in and is not suspended).
func (s *Store) Users(ctx context.Context, now time.Time) (map[string]UserState, error) {
	out := map[string]UserState{}
	err := s.each(ctx, `SELECT user_id, MAX(at) FROM access_log WHERE action = ? GROUP BY user_id`, func(r *sql.Rows) error {
		var id, at string
		err := r.Scan(&id, &at)
		u := out[id]
		u.LastSignIn = parseTS(at)
		out[id] = u
		return err
	}, ActionSignIn)
	if err == nil {
		err = s.each(ctx, `SELECT user_id, count(*) FROM sessions WHERE expires_at > ? GROUP BY user_id`, func(r *sql.Rows) error {
			var id string
			var n int
			err := r.Scan(&id, &n)
			u := out[id]
			u.OpenSessions = n
			out[id] = u
			return err
		}, ts(now))
	}
	if err == nil {
		err = s.each(ctx, `SELECT user_id, suspended_at, suspended_by FROM user_state WHERE suspended_at IS NOT NULL`, func(r *sql.Rows) error {
			var id, at, by string
			err := r.Scan(&id, &at, &by)
			u := out[id]
			u.SuspendedAt, u.SuspendedBy = parseTS(at), by
			out[id] = u
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("reading the users' state: %w", err)
	}
	return out, nil
}

// IsSuspended reports whether a lead suspended user.
func (s *Store) IsSuspended(ctx context.Context, user string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM user_state WHERE user_id = ? AND suspended_at IS NOT NULL`, user).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("reading user %s: %w", user, err)
	}
	return n > 0, nil
}

// Suspend stops user from signing in and ends their sessions; Reinstate
// lets them sign in again; RevokeSessions only ends their sessions. Each
// is logged as lead's action, in the same transaction.
func (s *Store) Suspend(ctx context.Context, user, lead string, now time.Time) error {
	return s.userChange(ctx, user, lead, ActionUserSuspend, now, `INSERT INTO user_state (user_id, suspended_at, suspended_by) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET suspended_at = COALESCE(user_state.suspended_at, excluded.suspended_at),
			suspended_by = CASE WHEN user_state.suspended_at IS NULL THEN excluded.suspended_by ELSE user_state.suspended_by END`,
		user, ts(now), lead)
}

// Reinstate lets a suspended user sign in again (see Suspend).
func (s *Store) Reinstate(ctx context.Context, user, lead string, now time.Time) error {
	return s.userChange(ctx, user, lead, ActionUserReinstate, now, `DELETE FROM user_state WHERE user_id = ?`, user)
}

// RevokeSessions signs user out everywhere (see Suspend).
func (s *Store) RevokeSessions(ctx context.Context, user, lead string, now time.Time) error {
	return s.userChange(ctx, user, lead, ActionSessionsRevoke, now, "")
}

// userChange runs q (if any), ends user's sessions and logs action, in
// one transaction.
func (s *Store) userChange(ctx context.Context, user, lead, action string, now time.Time, q string, args ...any) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if q != "" {
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		if action != ActionUserReinstate {
			if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, user); err != nil {
				return err
			}
		}
		return logAccess(ctx, tx, Access{At: now, User: lead, Action: action, Detail: "user=" + user})
	})
	if err != nil {
		return fmt.Errorf("%s of %s: %w", action, user, err)
	}
	return nil
}
