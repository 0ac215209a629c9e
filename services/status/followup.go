package status

import (
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/notice"
)

// Supersession is what the projection of an earlier notice knows of the
// notice that supersedes it (contract section 9).
type Supersession struct {
	// At is when the superseding notice was received, from the earlier
	// notice's superseded event (written when it was routed).
	At string `json:"superseded_at,omitempty"`
	// By is the superseding notice's id, from its stored record (events
	// name notices only by pseudonym). The first one stays.
	By string `json:"superseded_by,omitempty"`
}

// applyLink folds a followed_up or superseded event of the notice.
func (p *Projection) applyLink(e *event.Event) {
	if e.Type == event.Superseded {
		earliest(&p.Superseded.At, module.Timestamp(e.Time))
	}
}

// supersededBy records the id of a notice that supersedes this one.
func (p *Projection) supersededBy(rec *notice.Record) {
	if p.Superseded.By == "" {
		p.Superseded.By = rec.ID
	}
}

// superseding returns, for a stored record that supersedes an earlier
// notice, the earlier notice's id ("" otherwise).
func superseding(rec *notice.Record) string { return rec.SupersedesID }
