package status

import (
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
	"github.com/noticerelay/noticerelay/pkg/notice"
)

// A superseded notice shows superseded and by which notice, whichever of
// the event and the later notice's record is folded first; a follow-up
// alone changes nothing; withdrawal still wins.
func TestSupersededView(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	decided := &event.Event{Type: event.Decided, Time: t0, Decision: &jurisdiction.Decision{
		Recipients: []jurisdiction.Recipient{{Authority: "at-police", Country: "AT"}}}}
	later := &notice.Record{ID: "later-id", SupersedesID: "earlier-id"}
	for name, steps := range map[string][]func(*Projection){
		"event first": {func(p *Projection) {
			p.Apply(&event.Event{Type: event.Superseded, Time: t0.Add(time.Minute), By: "p2"})
		}, func(p *Projection) { p.supersededBy(later) }},
		"record first": {func(p *Projection) { p.supersededBy(later) }, func(p *Projection) {
			p.Apply(&event.Event{Type: event.Superseded, Time: t0.Add(time.Minute), By: "p2"})
		}},
	} {
		p := &Projection{ID: "earlier-id"}
		p.Apply(decided)
		p.Apply(&event.Event{Type: event.FollowedUp, Time: t0, By: "p3"})
		if v := p.View(); v.Status != "routed" {
			t.Errorf("%s: a follow-up made the status %q", name, v.Status)
		}
		for _, s := range steps {
			s(p)
		}
		v := p.View()
		if v.Status != "superseded" || v.SupersededBy != "later-id" || v.SupersededAt != "2026-12-01T10:01:00.000Z" {
			t.Errorf("%s: %+v", name, v)
		}
		p.Apply(&event.Event{Type: event.Withdrawn, Time: t0.Add(time.Hour)})
		if v := p.View(); v.Status != "withdrawn" {
			t.Errorf("%s: withdrawn and superseded shows %q", name, v.Status)
		}
	}
}
