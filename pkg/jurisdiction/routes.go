package jurisdiction

import (
	"slices"
	"strings"

	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/notice"
)

// CopyAny in Route.CopyOf copies whatever any authority receives.
const CopyAny = "any"

// Route is a routing rule: when a notice matches, Authority (an authority
// other than its country's primary one) receives it instead of a primary
// authority, or as a copy of what one or all of them receive.
//
// Rules are applied after the Member States concerned and the fallback have
// been decided, so they never change which countries are concerned, only
// which of a country's authorities receives (InsteadOf) or who else gets a
// copy (CopyOf).
type Route struct {
	// Name names the rule in decisions (Recipient.Rule).
	Name string
	// Authority is the id of the authority that receives; Country its
	// country (a Member State, or "EU").
	Authority string
	Country   string
	// Categories the notice must have one of; empty means any category.
	Categories []string
	// Priority the notice must have; empty means any priority.
	Priority notice.Priority
	// InsteadOf is the id of the primary authority this one replaces.
	InsteadOf string
	// CopyOf is the id of the primary authority whose notices this one
	// receives a copy of, or CopyAny. Exactly one of InsteadOf and CopyOf
	// is set.
	CopyOf string
}

// matches reports whether a notice of category and priority p meets the
// route's conditions.
func (rt *Route) matches(category string, p notice.Priority) bool {
	if len(rt.Categories) > 0 && !slices.Contains(rt.Categories, category) {
		return false
	}
	return rt.Priority == "" || rt.Priority == p
}

// applyRoutes applies the routing rules to the sorted recipients of a
// decision, in two steps:
//
//  1. For each recipient, the first rule (in configuration order) that
//     replaces it and matches makes its authority the rule's, with the
//     same country and grounds; the recipient records the rule and the
//     authority replaced.
//  2. Each matching copy rule adds the rule's authority as a recipient
//     with the grounds of every recipient it copies (their union), unless
//     that authority receives the notice already. A copy of a replaced
//     authority follows the replacement. Several copy rules of one
//     authority merge into one recipient named after the first.
func applyRoutes(routes []Route, n *notice.Notice, p notice.Priority, rs []Recipient) []Recipient {
	if len(routes) == 0 || len(rs) == 0 {
		return rs
	}
	category := ""
	if n != nil {
		category = n.Category
	}
	for i := range rs {
		for j := range routes {
			rt := &routes[j]
			if rt.InsteadOf != "" && rt.InsteadOf == rs[i].Authority && rt.matches(category, p) {
				rs[i].InsteadOf, rs[i].Authority, rs[i].Rule = rs[i].Authority, rt.Authority, rt.Name
				break
			}
		}
	}
	primaries := len(rs)
	for j := range routes {
		rt := &routes[j]
		if rt.CopyOf == "" || !rt.matches(category, p) {
			continue
		}
		if slices.ContainsFunc(rs[:primaries], func(r Recipient) bool { return r.Authority == rt.Authority }) {
			continue // receives it already
		}
		var copied []string
		var grounds []Ground
		for _, r := range rs[:primaries] {
			if rt.CopyOf == CopyAny || r.Authority == rt.CopyOf || r.InsteadOf == rt.CopyOf {
				copied = append(copied, r.Authority)
				grounds = append(grounds, r.Grounds...)
			}
		}
		if len(copied) == 0 {
			continue
		}
		if k := slices.IndexFunc(rs, func(r Recipient) bool { return r.Authority == rt.Authority }); k >= 0 {
			rs[k].CopyOf = append(rs[k].CopyOf, copied...)
			rs[k].Grounds = append(rs[k].Grounds, grounds...)
			continue
		}
		rs = append(rs, Recipient{Authority: rt.Authority, Country: rt.Country, Grounds: grounds, Rule: rt.Name, CopyOf: copied})
	}
	for i := primaries; i < len(rs); i++ {
		slices.SortFunc(rs[i].Grounds, compareGrounds)
		rs[i].Grounds = slices.Compact(rs[i].Grounds)
		slices.Sort(rs[i].CopyOf)
		rs[i].CopyOf = slices.Compact(rs[i].CopyOf)
	}
	slices.SortStableFunc(rs, compareRecipients)
	return rs
}

// compareRecipients orders recipients by country code, Europol ("EU")
// last; within a country the recipients of the country's own decision
// before copies, then by authority id.
func compareRecipients(a, b Recipient) int {
	ae, be := a.Country == country.Europol, b.Country == country.Europol
	switch {
	case ae && !be:
		return 1
	case be && !ae:
		return -1
	}
	if c := strings.Compare(a.Country, b.Country); c != 0 {
		return c
	}
	ac, bc := len(a.CopyOf) > 0, len(b.CopyOf) > 0
	switch {
	case ac && !bc:
		return 1
	case bc && !ac:
		return -1
	}
	return strings.Compare(a.Authority, b.Authority)
}
