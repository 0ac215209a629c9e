// Package jurisdiction decides which authorities receive a notice under DSA
// Article 18: the authorities of every Member State concerned (Art. 18(2):
// where the offence took, takes or is likely to take place, where a suspect
// resides or is located, where a victim resides or is located) and, when no
// Member State can be identified, those the platform's fallback list names
// (Art. 18(1): its establishment, its legal representative, Europol, or
// several).
//
// The package is pure: Decide reads only its arguments, changes none of
// them, and returns the same Decision, down to the bytes of its JSON
// encoding, for the same input. Lookups (IP geolocation, phone numbering)
// come in through Rules as a Locator, which is one fixed version of a
// database, and a PhoneRegion function.
//
// How a decision is made:
//
//  1. Every clue is weighed (see Clue): each country declared in locations
//     (basis offence), suspects (basis suspect) and victims (basis victim)
//     (evidence declared); each suspect's and victim's phone number
//     (evidence phone, read in the person's declared country when it is in
//     national format); each of their IP addresses (evidence ip), unless
//     marked possible_proxy, in a special range (private, loopback,
//     documentation, carrier-grade NAT, ...), seen more than
//     Rules.SeenWindow before or after occurred_at (else aware_at), unknown to the
//     database or known to it as an anonymiser. Codes are normalised: any
//     letter case is accepted, EL counts as GR, and a territory that is
//     part of a Member State (RE, GP, IC, AX, GL, ...) counts as that
//     Member State, with Ground.Territory set to the territory's code.
//     Unknown codes and countries that are not Member States of
//     Rules.MemberStates concern nobody. Every clue that counts makes its
//     Member State concerned, so one person can make two States concerned.
//  2. Each Member State concerned that has an authority becomes one
//     recipient carrying all its grounds. A Member State concerned without
//     an authority is listed in Decision.Unserved and, if Europol is
//     configured, Europol receives the notice with evidence no_authority.
//  3. When no Member State was identified, Decision.Fallback is true and the
//     platform's fallback list is walked; every entry that resolves to an
//     authority adds a recipient.
//  4. A notice is never dropped: with no recipient left, it goes to Europol
//     with evidence last_resort. If Europol is not configured either,
//     Decision.Recipients is empty and the caller must deal with it (refuse
//     the configuration, raise an alarm, park the notice).
//  5. Routing rules (Rules.Routes) then replace a primary authority by
//     another of its country's, or add copies: see Route.
package jurisdiction

import (
	"slices"
	"strings"
	"time"

	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/notice"
)

// Evidence: how the country of a ground was known.
const (
	Declared    = "declared"     // the platform stated the country in the notice
	Configured  = "configured"   // from the platform's configuration (establishment / legal representative)
	Fallback    = "fallback"     // Europol named in the platform's fallback list
	LastResort  = "last_resort"  // Europol because nothing else was left
	NoAuthority = "no_authority" // Europol because a concerned Member State has no configured authority
)

// Bases: why an authority receives the notice.
const (
	BasisOffence             = "offence"              // Art. 18(2): where the offence took, takes or is likely to take place
	BasisSuspect             = "suspect"              // Art. 18(2): where a suspect resides or is located
	BasisVictim              = "victim"               // Art. 18(2): where a victim resides or is located
	BasisEstablishment       = "establishment"        // Art. 18(1): the platform's main establishment
	BasisLegalRepresentative = "legal_representative" // Art. 18(1): the platform's legal representative
	BasisEuropol             = "europol"              // Art. 18(1): Europol
)

// DefaultFallback is the fallback list of a platform that configured none.
var DefaultFallback = []string{BasisEstablishment, BasisLegalRepresentative}

// Ground is one reason why a recipient receives a notice.
type Ground struct {
	Basis    string `json:"basis"`
	Evidence string `json:"evidence"`
	// Territory is the declared code when it was a territory mapped to its
	// Member State, e.g. "RE" for FR.
	Territory string `json:"territory,omitempty"`
}

// Recipient is an authority that receives the notice, with every ground it
// receives it on, strongest evidence first (declared, phone, ip,
// configured, fallback, no_authority, last_resort), and for the same
// evidence in the order offence, suspect, victim, establishment,
// legal_representative, europol.
type Recipient struct {
	Authority string   `json:"authority"`
	Country   string   `json:"country"` // Member State code, or "EU" for Europol
	Grounds   []Ground `json:"grounds"`
	// Rule names the routing rule that made Authority a recipient: it
	// receives the notice instead of InsteadOf, or a copy of what the
	// authorities in CopyOf receive.
	Rule      string   `json:"rule,omitempty"`
	InsteadOf string   `json:"instead_of,omitempty"`
	CopyOf    []string `json:"copy_of,omitempty"`
}

// Decision is who receives a notice and how fast.
type Decision struct {
	Priority notice.Priority `json:"priority"`
	// Recipients are sorted by country code, Europol ("EU") last, copies
	// after the other recipients of their country. Never nil;
	// empty only when nothing, not even Europol, is configured to receive
	// the notice: the caller must deal with that case.
	Recipients []Recipient `json:"recipients"`
	// Unserved are the Member States concerned by the notice that have no
	// authority configured, sorted.
	Unserved []string `json:"unserved,omitempty"`
	// Fallback is true when no Member State was identified from the notice
	// and the platform's fallback list was walked.
	Fallback bool `json:"fallback"`
	// Clues are every clue of the notice in document order, with the
	// country each pointed to and, for those that do not count, why.
	Clues []Clue `json:"clues,omitempty"`
	// GeoDatabase is the geolocation database IP addresses were looked up
	// in; absent when none is configured.
	GeoDatabase *GeoDatabase `json:"geo_database,omitempty"`
}

// Platform is what the decision needs of a platform's configuration.
type Platform struct {
	Establishment       string // Member State code or ""
	LegalRepresentative string // Member State code or ""
	// Fallback holds any of "establishment", "legal_representative",
	// "europol"; empty means DefaultFallback. Other values are ignored.
	Fallback []string
}

// Rules are the relay's configuration the decision depends on.
type Rules struct {
	MemberStates country.Set // EU27 or EEA (country.MemberStates)
	// Authorities maps an upper-case Member State code, or "EU" for
	// Europol, to the id of its primary authority; at most one per
	// country. An empty id counts as no authority.
	Authorities map[string]string
	// Locator places IP addresses; nil means IP addresses count for
	// nothing.
	Locator Locator
	// PhoneRegion reads phone numbers; nil means phone numbers count for
	// nothing.
	PhoneRegion PhoneRegion
	// SeenWindow is how far an IP address's seen_at may lie from the
	// notice's occurred_at (else aware_at); 0 means DefaultSeenWindow. An
	// address without seen_at, or a notice with neither time, is not
	// checked against the window.
	SeenWindow time.Duration
	// Routes are the routing rules, in configuration order.
	Routes []Route
}

// Decide decides who receives n. It never fails: see the package
// documentation for the rules and for the one case (no authority at all,
// Europol included) in which Recipients is empty. A nil notice counts as a
// notice that declares no country.
func Decide(r Rules, p Platform, n *notice.Notice) Decision {
	d := Decision{Priority: notice.Normal}
	var b builder

	if n != nil {
		d.Priority = n.Priority()
		b.clues(r, n)
		d.Clues = b.found
	}
	if r.Locator != nil {
		db := r.Locator.Database()
		d.GeoDatabase = &db
	}

	if len(b.states) > 0 {
		// Rules 2 and 3: one recipient per Member State concerned.
		for _, s := range b.states {
			if id := r.Authorities[s.code]; id != "" {
				b.add(id, s.code, s.grounds...)
			} else {
				d.Unserved = append(d.Unserved, s.code)
			}
		}
		if len(d.Unserved) > 0 {
			slices.Sort(d.Unserved)
			b.europol(r, NoAuthority)
		}
	} else {
		// Rule 4: no Member State identified, the platform's list decides.
		d.Fallback = true
		list := p.Fallback
		if len(list) == 0 {
			list = DefaultFallback
		}
		for _, f := range list {
			switch strings.ToLower(strings.TrimSpace(f)) {
			case BasisEstablishment:
				b.configured(r, p.Establishment, BasisEstablishment)
			case BasisLegalRepresentative:
				b.configured(r, p.LegalRepresentative, BasisLegalRepresentative)
			case BasisEuropol:
				b.europol(r, Fallback)
			}
		}
	}

	// Rule 5: never dropped.
	if len(b.recipients) == 0 {
		b.europol(r, LastResort)
	}

	d.Recipients = applyRoutes(r.Routes, n, d.Priority, b.finish())
	return d
}

// state is a Member State concerned by the notice, with its grounds.
type state struct {
	code    string
	grounds []Ground
}

// builder collects Member States and recipients. Notices name few
// countries, so linear searches beat maps here.
type builder struct {
	states     []state
	recipients []Recipient
	found      []Clue
}

// member normalises a declared or configured code to the Member State it
// counts as. territory is the code itself when it was a territory of that
// Member State. ok is false for unknown codes and for countries that are not
// Member States of r.
func member(r Rules, code string) (ms, territory string, ok bool) {
	c, known := country.Normalize(strings.TrimSpace(code))
	if !known {
		return "", "", false
	}
	s, mapped := country.State(c)
	if !r.MemberStates[s] {
		return "", "", false
	}
	if mapped {
		territory = c
	}
	return s, territory, true
}

// configured adds the authority of a Member State from the platform's
// configuration, if it is a Member State with an authority.
func (b *builder) configured(r Rules, code, basis string) {
	s, t, ok := member(r, code)
	if !ok {
		return
	}
	if id := r.Authorities[s]; id != "" {
		b.add(id, s, Ground{Basis: basis, Evidence: Configured, Territory: t})
	}
}

// europol adds Europol, if configured, with evidence.
func (b *builder) europol(r Rules, evidence string) {
	if id := r.Authorities[country.Europol]; id != "" {
		b.add(id, country.Europol, Ground{Basis: BasisEuropol, Evidence: evidence})
	}
}

// add adds grounds to the recipient of country c, creating it if needed.
func (b *builder) add(authority, c string, gs ...Ground) {
	for i := range b.recipients {
		if b.recipients[i].Country == c {
			b.recipients[i].Grounds = append(b.recipients[i].Grounds, gs...)
			return
		}
	}
	b.recipients = append(b.recipients, Recipient{
		Authority: authority,
		Country:   c,
		Grounds:   append([]Ground(nil), gs...),
	})
}

// finish sorts recipients and their grounds and removes duplicate grounds.
func (b *builder) finish() []Recipient {
	rs := b.recipients
	if rs == nil {
		rs = []Recipient{}
	}
	for i := range rs {
		slices.SortFunc(rs[i].Grounds, compareGrounds)
		rs[i].Grounds = slices.Compact(rs[i].Grounds)
	}
	slices.SortFunc(rs, compareRecipients)
	return rs
}

var basisRank = map[string]int{
	BasisOffence: 0, BasisSuspect: 1, BasisVictim: 2,
	BasisEstablishment: 3, BasisLegalRepresentative: 4, BasisEuropol: 5,
}

var evidenceRank = map[string]int{
	Declared: 0, Phone: 1, IP: 2, Configured: 3, Fallback: 4, NoAuthority: 5, LastResort: 6,
}

// compareGrounds orders grounds by evidence, strongest first, then basis,
// then territory (the Member State itself before its territories).
func compareGrounds(a, b Ground) int {
	if c := evidenceRank[a.Evidence] - evidenceRank[b.Evidence]; c != 0 {
		return c
	}
	if c := basisRank[a.Basis] - basisRank[b.Basis]; c != 0 {
		return c
	}
	return strings.Compare(a.Territory, b.Territory)
}
