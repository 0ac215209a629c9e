package cli

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
	"github.com/noticerelay/noticerelay/pkg/notice"
)

// fileList is a repeatable flag of file names.
type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(s string) error { *f = append(*f, s); return nil }

// earlierNotices are the notices given with --earlier, by reference: those
// a follow-up or correction may name (contract section 9).
type earlierNotices map[string]*notice.Notice

// readEarlier parses every --earlier file. A file that is not a valid
// notice is an error naming it.
func readEarlier(files []string) (earlierNotices, error) {
	out := earlierNotices{}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--earlier: %w", err)
		}
		n, errs := notice.Parse(body)
		if errs != nil {
			return nil, fmt.Errorf("--earlier %s: not a valid notice (%s: %s)", f, errs[0].Field, errs[0].Message)
		}
		out[n.Reference] = n
	}
	return out, nil
}

// followUpDecision returns the decision the relay stores for n: its own
// decision (decide) plus, for the notices it follows up on or supersedes,
// every recipient of theirs with basis follow_up, computed the same way
// from the earlier notices given (a chain through them included).
// ifEscalated are the recipients the relay adds besides, with their
// grounds, when a delivery of an earlier urgent notice was escalated
// before n is routed: the escalation targets (escalate) of its
// recipients received it too. missing lists the references n (or a notice
// of the chain) names that are not among them: the relay would add their
// recipients too.
func followUpDecision(n *notice.Notice, earlier earlierNotices, decide func(*notice.Notice) jurisdiction.Decision,
	escalate func(jurisdiction.Decision) jurisdiction.Decision) (d jurisdiction.Decision, ifEscalated []jurisdiction.Recipient, missing []string) {
	var walk func(n *notice.Notice, seen map[string]bool, escalated bool) jurisdiction.Decision
	walk = func(n *notice.Notice, seen map[string]bool, escalated bool) jurisdiction.Decision {
		var links []jurisdiction.Earlier
		for _, l := range []struct{ ref, kind string }{
			{n.FollowUpOf, jurisdiction.LinkFollowUpOf}, {n.Supersedes, jurisdiction.LinkSupersedes}} {
			if l.ref == "" {
				continue
			}
			e, ok := earlier[l.ref]
			if !ok || seen[l.ref] {
				if !ok && !escalated {
					missing = append(missing, l.ref)
				}
				continue
			}
			seen[l.ref] = true
			ed := walk(e, seen, escalated)
			if escalated {
				ed = escalate(ed)
			}
			links = append(links, jurisdiction.Earlier{Link: l.kind, Decision: ed})
			delete(seen, l.ref)
		}
		return jurisdiction.FollowUp(decide(n), links...)
	}
	d = walk(n, map[string]bool{n.Reference: true}, false)
	for _, r := range walk(n, map[string]bool{n.Reference: true}, true).Recipients {
		if !slices.ContainsFunc(d.Recipients, func(x jurisdiction.Recipient) bool { return x.Authority == r.Authority }) {
			ifEscalated = append(ifEscalated, r)
		}
	}
	return d, ifEscalated, missing
}
