package jurisdiction

import (
	"slices"
	"strings"
)

// BasisFollowUp is why an authority receives a follow-up or superseding
// notice when it received the earlier notice (contract section 9).
const BasisFollowUp = "follow_up"

// Evidence of a follow_up ground: the link of the new notice to the
// earlier one that made the authority a recipient.
const (
	LinkFollowUpOf = "follow_up_of" // new information on the same case
	LinkSupersedes = "supersedes"   // a correction of the earlier notice
)

// Earlier is the stored decision of an earlier notice and how the new
// notice names it (LinkFollowUpOf or LinkSupersedes).
type Earlier struct {
	Link     string
	Decision Decision
}

// FollowUp returns the decision for a notice that follows up on or
// supersedes earlier notices: own (the notice's own decision) plus every
// recipient of each earlier decision. An authority that receives the notice
// only because it received an earlier one gets the single ground
// {basis follow_up, evidence <link>}; an authority of own that also received
// an earlier notice keeps its own grounds and gets that ground after them,
// once per link. Since the earlier decision is the stored one, which was
// itself built by FollowUp, a chain of follow-ups reaches every recipient
// of every notice before it. Recipients stay sorted by country code,
// Europol ("EU") last; the added ones come after own's of the same country,
// in the order of earlier. FollowUp is pure: own and earlier are not
// changed.
func FollowUp(own Decision, earlier ...Earlier) Decision {
	out := own
	out.Recipients = make([]Recipient, len(own.Recipients))
	for i, r := range own.Recipients {
		r.Grounds = slices.Clone(r.Grounds)
		out.Recipients[i] = r
	}
	for _, e := range earlier {
		g := Ground{Basis: BasisFollowUp, Evidence: e.Link}
		for _, r := range e.Decision.Recipients {
			i := slices.IndexFunc(out.Recipients, func(x Recipient) bool { return x.Authority == r.Authority })
			if i < 0 {
				out.Recipients = append(out.Recipients, Recipient{Authority: r.Authority, Country: r.Country, Grounds: []Ground{g}})
				continue
			}
			if !slices.Contains(out.Recipients[i].Grounds, g) {
				out.Recipients[i].Grounds = append(out.Recipients[i].Grounds, g)
			}
		}
	}
	slices.SortStableFunc(out.Recipients, func(a, b Recipient) int {
		if (a.Country == "EU") != (b.Country == "EU") {
			if a.Country == "EU" {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Country, b.Country)
	})
	return out
}
