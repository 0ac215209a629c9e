package station

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/web"
)

// The first authority the relay names stays; another is refused.
func TestAuthorityKept(t *testing.T) {
	s, ctx := open(t), context.Background()
	if err := s.SetAuthority(ctx, Authority{ID: "de-bka", Name: "BKA"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAuthority(ctx, Authority{ID: "de-bka", Name: "Bundeskriminalamt", Country: "DE"}); err != nil {
		t.Fatalf("a new name of the same authority: %v", err)
	}
	if err := s.SetAuthority(ctx, Authority{ID: "fr-police"}); !errors.Is(err, ErrOtherAuthority) {
		t.Fatalf("another authority: %v", err)
	}
	st, err := s.Relay(ctx)
	if err != nil || st.Authority != (Authority{ID: "de-bka", Name: "Bundeskriminalamt", Country: "DE"}) {
		t.Fatalf("kept: %+v %v", st.Authority, err)
	}
}

// Suspending a user ends their sessions at once and keeps new ones from
// counting until reinstated; revoking ends them without suspending.
func TestSuspendEndsSessions(t *testing.T) {
	s, ctx, now := open(t), context.Background(), time.Now()
	save := func(key string) {
		t.Helper()
		if err := s.SaveSession(ctx, web.Session{Key: key, User: "duty1", CSRF: "c", Created: now, Expires: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	valid := func(key string) bool {
		_, err := s.Session(ctx, key, now)
		return err == nil
	}
	save("k1")
	if err := s.RevokeSessions(ctx, "duty1", "lead", now); err != nil || valid("k1") {
		t.Fatalf("revoked: %v, session still valid: %v", err, valid("k1"))
	}
	save("k2")
	if err := s.Suspend(ctx, "duty1", "lead", now); err != nil || valid("k2") {
		t.Fatalf("suspended: %v, session still valid: %v", err, valid("k2"))
	}
	save("k3") // a sign-in racing the suspension
	if valid("k3") {
		t.Fatal("a suspended user's new session is valid")
	}
	if ok, err := s.IsSuspended(ctx, "duty1"); err != nil || !ok {
		t.Fatalf("IsSuspended: %v %v", ok, err)
	}
	users, err := s.Users(ctx, now)
	if err != nil || !users["duty1"].Suspended() || users["duty1"].SuspendedBy != "lead" {
		t.Fatalf("users: %+v %v", users, err)
	}
	if err := s.Reinstate(ctx, "duty1", "lead", now); err != nil || !valid("k3") {
		t.Fatalf("reinstated: %v, session valid: %v", err, valid("k3"))
	}
	log, err := s.AccessLog(ctx, 0, 10)
	if err != nil || len(log) != 3 || log[0].Action != ActionUserReinstate || log[2].Action != ActionSessionsRevoke || log[1].Detail != "user=duty1" {
		t.Fatalf("access log: %+v %v", log, err)
	}
}
