package station

import (
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	store "github.com/noticerelay/noticerelay/pkg/station"
	"github.com/noticerelay/noticerelay/pkg/web"
)

// signIn checks the sign-in form: a user of the configuration, with the
// right password, whom no lead suspended.
func (s *Station) signIn(r *http.Request) (*web.Account, string) {
	const refusal = "Unknown user or wrong password."
	id := strings.TrimSpace(r.PostForm.Get("user"))
	acc, known := s.app.Accounts[id]
	if !web.PasswordMatches(r.PostForm.Get("password"), acc.PasswordHash) || !known {
		return nil, refusal
	}
	suspended, err := s.store.IsSuspended(r.Context(), id)
	switch {
	case err != nil:
		s.log.Error("sign-in", zap.Error(err))
		return nil, "The station's database could not be read; try again."
	case suspended:
		return nil, "This user is suspended. Ask a lead of the station to reinstate you."
	}
	return &acc, ""
}

// userRow is a user of the configuration with what the database knows.
type userRow struct {
	User
	store.UserState
	Self bool
}

type usersData struct {
	Users []userRow
}

// users lists the users of the configuration for a lead: role, last
// sign-in, open sessions, suspension, and the forms to change those.
func (s *Station) users(w http.ResponseWriter, r *http.Request) {
	states, err := s.store.Users(r.Context(), time.Now())
	if err != nil {
		s.app.Fail(w, r, err)
		return
	}
	me := web.User(r).ID
	d := usersData{}
	for _, u := range s.cfg.Users {
		d.Users = append(d.Users, userRow{User: u, UserState: states[u.ID], Self: u.ID == me})
	}
	s.app.Render(w, r, http.StatusOK, "users", "Users", d)
}

// userAction answers a lead's form on the users page: suspend, reinstate
// or revoke (sign out everywhere). A lead does not act on their own
// account, so that the station is never left without one.
func (s *Station) userAction(w http.ResponseWriter, r *http.Request) {
	id, action, lead := r.PathValue("user"), r.PathValue("action"), web.User(r).ID
	if _, ok := s.app.Accounts[id]; !ok {
		s.app.Error(w, r, http.StatusNotFound, "The configuration has no such user.")
		return
	}
	if id == lead {
		s.app.Error(w, r, http.StatusConflict, "A lead does not suspend or sign out their own account here; ask another lead.")
		return
	}
	var err error
	var flash string
	now := time.Now()
	switch action {
	case "suspend":
		err, flash = s.store.Suspend(r.Context(), id, lead, now), id+" is suspended and signed out everywhere."
	case "reinstate":
		err, flash = s.store.Reinstate(r.Context(), id, lead, now), id+" may sign in again."
	case "revoke":
		err, flash = s.store.RevokeSessions(r.Context(), id, lead, now), id+" is signed out everywhere."
	default:
		s.app.Error(w, r, http.StatusNotFound, "No such action.")
		return
	}
	if err != nil {
		s.app.Fail(w, r, err)
		return
	}
	s.app.Flash(w, flash)
	http.Redirect(w, r, "/users", http.StatusSeeOther)
}
