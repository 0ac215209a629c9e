package relay_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// groundsOf returns a delivered notice's grounds as "basis/evidence".
func groundsOf(t *testing.T, d relaytest.Delivery) []string {
	t.Helper()
	var out []string
	gs, _ := d.Notice["grounds"].([]any)
	for _, g := range gs {
		m := g.(map[string]any)
		out = append(out, m["basis"].(string)+"/"+m["evidence"].(string))
	}
	return out
}

// byNotice finds the delivery of notice id among ds.
func byNotice(t *testing.T, ds []relaytest.Delivery, id string) relaytest.Delivery {
	t.Helper()
	for _, d := range ds {
		if d.NoticeID == id && d.Type == "notice" {
			return d
		}
	}
	t.Fatalf("no delivery of notice %s among %d", id, len(ds))
	return relaytest.Delivery{}
}

// TestFollowUpRouting: a follow-up goes to the recipients of its own
// decision and to every recipient of the notice it follows up on, with
// basis follow_up; a correction of the follow-up reaches all of them
// through the chain; the corrected notice shows superseded and by which
// notice; every delivery names the earlier notice by id; the audit log
// records the links, verifies and counts them.
func TestFollowUpRouting(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.NATS.Listen = "127.0.0.1:0" // for the audit command line
	}})
	first := r.Submit("examplenet", relaytest.Notice("FU-1", false, "AT", "DE", ""))
	// The follow-up: its own decision is FR (offence) and AT (suspect).
	fu := relaytest.Notice("FU-2", false, "FR", "AT", "")
	fu["follow_up_of"] = "FU-1"
	second := r.Submit("examplenet", fu)
	// A correction of the follow-up, its own decision NL only.
	fix := relaytest.Notice("FU-3", false, "NL", "", "")
	fix["supersedes"] = "FU-2"
	third := r.Submit("examplenet", fix)

	fr := r.InboxUntil("fr-police", 2, wait)
	nl := r.InboxUntil("nl-police", 1, wait)
	de := r.InboxUntil("de-bka", 3, wait)
	at := r.InboxUntil("at-police", 3, wait)

	type want struct {
		ds                   []relaytest.Delivery
		id                   string
		grounds              []string
		followUpOf, supersed string
	}
	for name, w := range map[string]want{
		"fr-police/FU-2": {fr, second, []string{"offence/declared"}, first, ""},
		"at-police/FU-2": {at, second, []string{"suspect/declared", "follow_up/follow_up_of"}, first, ""},
		"de-bka/FU-2":    {de, second, []string{"follow_up/follow_up_of"}, first, ""},
		"nl-police/FU-3": {nl, third, []string{"offence/declared"}, "", second},
		"fr-police/FU-3": {fr, third, []string{"follow_up/supersedes"}, "", second},
		"de-bka/FU-3":    {de, third, []string{"follow_up/supersedes"}, "", second},
		"at-police/FU-1": {at, first, []string{"offence/declared"}, "", ""},
	} {
		d := byNotice(t, w.ds, w.id)
		if got := groundsOf(t, d); !slices.Equal(got, w.grounds) {
			t.Errorf("%s: grounds %q, want %q", name, got, w.grounds)
		}
		if got, _ := d.Notice["follow_up_of"].(string); got != w.followUpOf {
			t.Errorf("%s: follow_up_of %q, want %q", name, got, w.followUpOf)
		}
		if got, _ := d.Notice["supersedes"].(string); got != w.supersed {
			t.Errorf("%s: supersedes %q, want %q", name, got, w.supersed)
		}
	}
	// One delivery per recipient and notice, nobody else.
	for auth, n := range map[string]int{"fr-police": 2, "nl-police": 1, "de-bka": 3, "at-police": 3} {
		if extra := r.Inbox(auth, 100); len(extra) > 0 {
			t.Errorf("%s: %d more deliveries than the %d expected", auth, len(extra), n)
		}
	}
	if got := r.Inbox("ro-police", 100); len(got) != 0 {
		t.Errorf("ro-police received %d deliveries", len(got))
	}

	// Status: the corrected notice is superseded, by the correction; the
	// first stays routed; the correction lists its four recipients.
	relaytest.Eventually(t, wait, "FU-2 superseded", func() bool {
		s := r.Status("examplenet", second)
		return s["status"] == "superseded" && s["superseded_by"] == third && s["superseded_at"] != nil
	})
	if s := r.Status("examplenet", first); s["status"] == "superseded" || s["superseded_by"] != nil {
		t.Errorf("FU-1 was only followed up: %v", s)
	}
	relaytest.Eventually(t, wait, "FU-3 routed to four", func() bool {
		rs, _ := r.Status("examplenet", third)["recipients"].([]any)
		return len(rs) == 4
	})

	// The log: the links are events of the earlier notices, naming no
	// notice id or reference.
	events, _ := allEvents(t, r)
	if strings.Count(events, `"type":"followed_up"`) != 1 || strings.Count(events, `"type":"superseded"`) != 1 {
		t.Errorf("want one followed_up and one superseded event in the log")
	}
	if !strings.Contains(events, `"follow_up_of":"`) || !strings.Contains(events, `"supersedes":"`) {
		t.Error("the decided events do not name the earlier notices by pseudonym")
	}
	for _, s := range []string{first, second, third, "FU-1", "FU-2", "FU-3"} {
		if strings.Contains(events, s) {
			t.Errorf("%s appears in the events", s)
		}
	}
	rep := replayVerified(t, r)
	if rep.FollowedUp != 1 || rep.Superseded != 1 || rep.Accepted != 3 {
		t.Errorf("replay: %d follow-ups, %d superseded, %d accepted; want 1, 1, 3", rep.FollowedUp, rep.Superseded, rep.Accepted)
	}
}

// TestFollowUpReachesEscalationTarget: de-bka leaves an urgent notice
// unacknowledged past its deadline, so europol, its escalation target,
// receives a copy; a follow-up of that notice then reaches europol too,
// with basis follow_up and naming the earlier notice, and its status lists
// europol among its recipients. Europol and the platform can write to each
// other about the escalated notice. The withdrawal of the escalated notice
// reaches europol as well; its status still names de-bka alone.
func TestFollowUpReachesEscalationTarget(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Config: escalatingToEuropol(time.Second)})
	first := r.Submit("examplenet", relaytest.Notice("ESC-FU-1", true, "", "DE", ""))
	esc := r.InboxUntil("europol", 1, wait)[0]
	if esc.Type != "escalation" || esc.NoticeID != first {
		t.Fatalf("europol: %+v", esc)
	}
	// The target holds the conversation like a recipient: it writes by
	// its copy's delivery id, and the platform may answer it.
	ask := r.Do("POST", "/v1/inbox/"+esc.ID+"/messages", "authority:europol",
		map[string]any{"kind": "request_information", "text": "Is the account still active?"})
	if ask.Status != http.StatusCreated {
		t.Fatalf("europol's message: %s", ask)
	}
	if resp := r.Do("POST", "/v1/notices/"+first+"/messages", "platform:examplenet",
		map[string]any{"to": "europol", "text": "Yes.", "in_reply_to": ask.Map()["id"]}); resp.Status != http.StatusCreated {
		t.Fatalf("the platform's answer to europol: %s", resp)
	}
	if msg := r.InboxUntil("europol", 1, wait)[0]; msg.Type != "message" || msg.Message["from"] != "platform" {
		t.Fatalf("europol's answer: %+v", msg)
	}
	fu := relaytest.Notice("ESC-FU-2", false, "FR", "", "")
	fu["follow_up_of"] = "ESC-FU-1"
	second := r.Submit("examplenet", fu)

	for auth, grounds := range map[string][]string{
		"europol": {"follow_up/follow_up_of"}, "de-bka": {"follow_up/follow_up_of"}, "fr-police": {"offence/declared"},
	} {
		// de-bka never acknowledged the first notice (hence the
		// escalation): its inbox may hand that out before the follow-up.
		d := r.DeliveryUntil(auth, "notice", second, wait)
		if got := groundsOf(t, d); !slices.Equal(got, grounds) {
			t.Errorf("%s: grounds %q, want %q", auth, got, grounds)
		}
		if got, _ := d.Notice["follow_up_of"].(string); got != first {
			t.Errorf("%s: follow_up_of %q, want %q", auth, got, first)
		}
	}
	relaytest.Eventually(t, wait, "europol among the follow-up's recipients", func() bool {
		rs, _ := r.Status("examplenet", second)["recipients"].([]any)
		for _, rc := range rs {
			if m := rc.(map[string]any); m["authority"] == "europol" && m["status"] == "delivered" {
				return len(rs) == 3
			}
		}
		return false
	})

	if resp := r.Do("POST", "/v1/notices/"+first+"/withdraw", "platform:examplenet", map[string]string{"reason": "mistake"}); resp.Status != http.StatusAccepted {
		t.Fatal(resp)
	}
	for _, auth := range []string{"europol", "de-bka"} {
		r.DeliveryUntil(auth, "withdrawal", first, wait)
	}
	relaytest.Eventually(t, wait, "the escalated notice withdrawn", func() bool {
		st := r.Status("examplenet", first)
		rs, _ := st["recipients"].([]any)
		return st["status"] == "withdrawn" && len(rs) == 1 && rs[0].(map[string]any)["authority"] == "de-bka"
	})
}
