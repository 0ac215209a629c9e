package jurisdiction

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/notice"
)

// Evidence the relay derives itself, weakest last: a declared country
// outranks a phone number, which outranks an IP address.
const (
	Phone = "phone" // the country of a person's phone number
	IP    = "ip"    // the country a geolocation database places a person's IP address in
)

// DefaultSeenWindow is how far an IP address's seen_at may lie before or
// after the notice's reference time (occurred_at, else aware_at) and still
// count, when Rules.SeenWindow is zero.
const DefaultSeenWindow = 30 * 24 * time.Hour

// Reasons why a clue does not count (Clue.Ignored).
const (
	ReasonUnknownCountry = "unknown_country"  // not an ISO 3166-1 alpha-2 code (also the database's EU and AP)
	ReasonNotMemberState = "not_member_state" // a country outside the configured Member States
	ReasonNoPhoneParser  = "no_phone_parser"  // Rules.PhoneRegion is nil
	ReasonInvalidPhone   = "invalid_phone"    // not a valid number, even with the declared country as a hint
	ReasonInvalidAddress = "invalid_address"  // not an IP address
	ReasonPossibleProxy  = "possible_proxy"   // the platform marked the address "possible_proxy": true
	ReasonSpecialAddress = "special_address"  // private, loopback, documentation, CGNAT, ... (Clue.Detail names the range)
	ReasonOutsideWindow  = "outside_window"   // seen too long before or after the reference time
	ReasonNoGeoDatabase  = "no_geo_database"  // Rules.Locator is nil
	ReasonNotLocated     = "not_located"      // the database has no country for the address
	ReasonAnonymiser     = "anonymiser"       // the database knows the address as a VPN, proxy, Tor exit, hosting or satellite provider
)

// Place is what a geolocation database knows of an address.
type Place struct {
	// Country is the ISO 3166-1 alpha-2 code of where the address is
	// located, or "" when the database does not know.
	Country string
	// Anonymous is true when the database knows the address as an
	// anonymiser: its location is not its user's.
	Anonymous bool
}

// GeoDatabase identifies the geolocation database a decision used.
type GeoDatabase struct {
	Type    string `json:"type"`             // the database's own type, e.g. "GeoLite2-Country"
	BuiltAt string `json:"built_at"`         // its build time, RFC 3339 UTC
	SHA256  string `json:"sha256,omitempty"` // of the database file
}

// Locator places IP addresses. It is one version of a geolocation
// database: for a given Locator, Locate always answers the same.
type Locator interface {
	Locate(addr netip.Addr) Place
	Database() GeoDatabase
}

// PhoneRegion returns the ISO 3166-1 alpha-2 region of a valid phone
// number, or "" when number is not a valid number. hint is the region a
// number in national format is read in (the person's declared country);
// it may be "".
type PhoneRegion func(number, hint string) string

// Clue is one piece of evidence about where a notice's offence, suspect or
// victim is, and what became of it. It names the field it came from and
// the country it pointed to, never the value itself (no address, no number).
type Clue struct {
	// Field is the path of the clue in the notice, e.g. "locations[0].country",
	// "suspects[1].phone", "victims[0].ip_addresses[2]".
	Field    string `json:"field"`
	Basis    string `json:"basis"`
	Evidence string `json:"evidence"`
	// Country is the code the clue pointed to (a territory such as RE stays
	// RE), when it pointed to a known country.
	Country string `json:"country,omitempty"`
	// MemberState is the Member State the clue made concerned; empty when
	// the clue does not count.
	MemberState string `json:"member_state,omitempty"`
	// Ignored is why the clue does not count (one of the Reason constants).
	Ignored string `json:"ignored,omitempty"`
	// Detail explains Ignored where a code is not enough, e.g. the special
	// range an address is in.
	Detail string `json:"detail,omitempty"`
}

// clues walks every clue of n in document order.
func (b *builder) clues(r Rules, n *notice.Notice) {
	for i := range n.Locations {
		if c := n.Locations[i].Country; c != "" {
			b.point(r, Clue{Field: fmt.Sprintf("locations[%d].country", i), Basis: BasisOffence, Evidence: Declared}, c)
		}
	}
	ref, refName := referenceTime(n)
	for i := range n.Suspects {
		b.person(r, &n.Suspects[i], fmt.Sprintf("suspects[%d]", i), BasisSuspect, ref, refName)
	}
	for i := range n.Victims {
		b.person(r, &n.Victims[i], fmt.Sprintf("victims[%d]", i), BasisVictim, ref, refName)
	}
}

// referenceTime is the time an IP address's seen_at is compared with:
// occurred_at, else aware_at (an address seen long before the platform
// became aware of the offence is stale too); zero when neither is given.
func referenceTime(n *notice.Notice) (time.Time, string) {
	if t, err := time.Parse(time.RFC3339Nano, n.OccurredAt); err == nil {
		return t, "occurred_at"
	}
	if t, err := time.Parse(time.RFC3339Nano, n.AwareAt); err == nil {
		return t, "aware_at"
	}
	return time.Time{}, ""
}

// person walks the clues about one suspect or victim: the declared
// country, the phone number and every IP address. Each counts on its own,
// so one person can make several Member States concerned.
func (b *builder) person(r Rules, p *notice.Person, field, basis string, ref time.Time, refName string) {
	if p.Country != "" {
		b.point(r, Clue{Field: field + ".country", Basis: basis, Evidence: Declared}, p.Country)
	}
	if p.Phone != "" {
		b.phone(r, Clue{Field: field + ".phone", Basis: basis, Evidence: Phone}, p.Phone, phoneHint(p.Country))
	}
	for j := range p.IPAddresses {
		b.ip(r, Clue{Field: fmt.Sprintf("%s.ip_addresses[%d]", field, j), Basis: basis, Evidence: IP},
			&p.IPAddresses[j], ref, refName)
	}
}

// phoneHint is the region a national number is read in: the person's
// declared country, in the spelling phone numbering uses (GR, not EL; a
// territory keeps its own code, as it has its own numbering).
func phoneHint(declared string) string {
	c, ok := country.Normalize(strings.TrimSpace(declared))
	if !ok {
		return ""
	}
	switch c {
	case "EL":
		return "GR"
	case "UK":
		return "GB"
	}
	return c
}

func (b *builder) phone(r Rules, cl Clue, number, hint string) {
	if r.PhoneRegion == nil {
		b.ignore(cl, ReasonNoPhoneParser, "")
		return
	}
	region := r.PhoneRegion(number, hint)
	if region == "" {
		b.ignore(cl, ReasonInvalidPhone, "")
		return
	}
	b.point(r, cl, region)
}

func (b *builder) ip(r Rules, cl Clue, a *notice.IPAddress, ref time.Time, refName string) {
	addr, err := netip.ParseAddr(a.IP)
	if err != nil {
		b.ignore(cl, ReasonInvalidAddress, "")
		return
	}
	addr = addr.Unmap()
	if a.PossibleProxy {
		b.ignore(cl, ReasonPossibleProxy, "marked possible_proxy by the platform")
		return
	}
	if name, ok := special(addr); ok {
		b.ignore(cl, ReasonSpecialAddress, name)
		return
	}
	if seen, err := time.Parse(time.RFC3339Nano, a.SeenAt); err == nil && refName != "" {
		window := r.SeenWindow
		if window <= 0 {
			window = DefaultSeenWindow
		}
		if d := seen.Sub(ref); d > window || d < -window {
			when := "before " + refName
			if d > 0 {
				when = "after " + refName
			}
			b.ignore(cl, ReasonOutsideWindow, fmt.Sprintf("seen_at is %s %s; the window is %s", days(d.Abs()), when, days(window)))
			return
		}
	}
	if r.Locator == nil {
		b.ignore(cl, ReasonNoGeoDatabase, "")
		return
	}
	pl := r.Locator.Locate(addr)
	if pl.Country == "" {
		b.ignore(cl, ReasonNotLocated, "")
		return
	}
	if pl.Anonymous {
		if c, ok := country.Normalize(pl.Country); ok {
			cl.Country = c
		}
		b.ignore(cl, ReasonAnonymiser, "the geolocation database knows the address as an anonymiser")
		return
	}
	b.point(r, cl, pl.Country)
}

// days formats d in days with one decimal ("30 days", "45.5 days"), or
// as a Go duration when it is shorter than a day.
func days(d time.Duration) string {
	if d < 24*time.Hour {
		return d.Round(time.Second).String()
	}
	v := float64(d) / float64(24*time.Hour)
	if v == float64(int64(v)) {
		if v == 1 {
			return "1 day"
		}
		return fmt.Sprintf("%d days", int64(v))
	}
	return fmt.Sprintf("%.1f days", v)
}

// ignore records a clue that does not count.
func (b *builder) ignore(cl Clue, reason, detail string) {
	cl.Ignored, cl.Detail = reason, detail
	b.found = append(b.found, cl)
}

// point records a clue that points to code: if that is a Member State (or
// a territory of one), the Member State becomes concerned on the clue's
// basis, with its evidence.
func (b *builder) point(r Rules, cl Clue, code string) {
	c, known := country.Normalize(strings.TrimSpace(code))
	if !known {
		b.ignore(cl, ReasonUnknownCountry, "")
		return
	}
	cl.Country = c
	s, mapped := country.State(c)
	if !r.MemberStates[s] {
		b.ignore(cl, ReasonNotMemberState, "")
		return
	}
	cl.MemberState = s
	b.found = append(b.found, cl)
	g := Ground{Basis: cl.Basis, Evidence: cl.Evidence}
	if mapped {
		g.Territory = c
	}
	for i := range b.states {
		if b.states[i].code == s {
			b.states[i].grounds = append(b.states[i].grounds, g)
			return
		}
	}
	b.states = append(b.states, state{code: s, grounds: []Ground{g}})
}
