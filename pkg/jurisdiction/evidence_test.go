package jurisdiction

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/phone"
)

// fakeLocator places addresses by the first matching prefix, and every
// other address in DE: so an address that must not count (special ranges)
// would count if Decide asked the database about it.
type fakeLocator struct{ version string }

var fakeNets = []struct {
	prefix netip.Prefix
	place  Place
}{
	{netip.MustParsePrefix("85.214.0.0/16"), Place{Country: "DE"}},
	{netip.MustParsePrefix("2a01:4f8::/32"), Place{Country: "DE"}},
	{netip.MustParsePrefix("62.0.0.0/16"), Place{Country: "AT"}},
	{netip.MustParsePrefix("2a02:8388::/32"), Place{Country: "AT"}},
	{netip.MustParsePrefix("83.0.0.0/16"), Place{Country: "PL"}},
	{netip.MustParsePrefix("185.220.100.0/22"), Place{Country: "DE", Anonymous: true}},
	{netip.MustParsePrefix("2a0b:f4c0::/32"), Place{Country: "NL", Anonymous: true}},
	{netip.MustParsePrefix("104.16.0.0/13"), Place{Anonymous: true}},
	{netip.MustParsePrefix("8.8.8.0/24"), Place{Country: "US"}},
	{netip.MustParsePrefix("2001:4860::/32"), Place{Country: "US"}},
	{netip.MustParsePrefix("81.2.0.0/16"), Place{Country: "RE"}},
	{netip.MustParsePrefix("193.0.0.0/16"), Place{Country: "EU"}},
	{netip.MustParsePrefix("5.0.0.0/16"), Place{}},
	{netip.MustParsePrefix("91.0.0.0/16"), Place{Country: "mt"}},
}

func (f fakeLocator) Locate(a netip.Addr) Place {
	for _, n := range fakeNets {
		if n.prefix.Contains(a) {
			return n.place
		}
	}
	return Place{Country: "DE"}
}

func (f fakeLocator) Database() GeoDatabase {
	return GeoDatabase{Type: "Test-Country", BuiltAt: "2026-11-17T00:00:00Z", SHA256: f.version}
}

// ev is a notice for evidence tests: occurred_at 2026-11-20T14:03:00+01:00,
// changed by the options.
func ev(opts ...func(*notice.Notice)) *notice.Notice {
	n := &notice.Notice{Reference: "T-1", Category: "grooming", Suspicion: "s", OccurredAt: "2026-11-20T14:03:00+01:00"}
	for _, o := range opts {
		o(n)
	}
	return n
}

// suspect adds a suspect with a declared country (or ""), a phone (or "")
// and addresses.
func suspect(country, ph string, ips ...notice.IPAddress) func(*notice.Notice) {
	return func(n *notice.Notice) {
		n.Suspects = append(n.Suspects, notice.Person{Country: country, Phone: ph, IPAddresses: ips})
	}
}

func victim(country, ph string, ips ...notice.IPAddress) func(*notice.Notice) {
	return func(n *notice.Notice) {
		n.Victims = append(n.Victims, notice.Person{Country: country, Phone: ph, IPAddresses: ips})
	}
}

func offence(country string) func(*notice.Notice) {
	return func(n *notice.Notice) { n.Locations = append(n.Locations, notice.Location{Country: country}) }
}

func times(occurred, aware string) func(*notice.Notice) {
	return func(n *notice.Notice) { n.OccurredAt, n.AwareAt = occurred, aware }
}

// ip is an address seen at occurred_at.
func ip(a string) notice.IPAddress { return notice.IPAddress{IP: a, SeenAt: "2026-11-20T13:58:11Z"} }

func ipAt(a, seen string) notice.IPAddress { return notice.IPAddress{IP: a, SeenAt: seen} }

func proxy(a string) notice.IPAddress {
	x := ip(a)
	x.PossibleProxy = true
	return x
}

var (
	susIP    = g(BasisSuspect, IP)
	vicIP    = g(BasisVictim, IP)
	susPhone = g(BasisSuspect, Phone)
	vicPhone = g(BasisVictim, Phone)
	ieEst    = []Recipient{rcp("IE", estConf)}
)

func evidenceRules(except ...string) Rules {
	s, _ := country.MemberStates("EU27")
	return Rules{MemberStates: s, Authorities: authorities(except...), Locator: fakeLocator{version: "v1"}, PhoneRegion: phone.Region}
}

// TestDecideEvidence covers clues beyond declared countries: phone numbers,
// IP addresses and what makes them not count, and how they combine with
// declared countries.
func TestDecideEvidence(t *testing.T) {
	ie := Platform{Establishment: "IE"}
	tests := []struct {
		name   string
		rules  func(*Rules)
		except []string
		notice *notice.Notice
		want   []Recipient
		// fallback defaults to false; ignored lists, per clue field, the
		// reason it must not count ("" = it must count).
		fallback bool
		ignored  map[string]string
	}{
		// IP addresses alone.
		{name: "suspect IPv4 in a Member State", notice: ev(suspect("", "", ip("85.214.132.117"))),
			want: []Recipient{rcp("DE", susIP)}, ignored: map[string]string{"suspects[0].ip_addresses[0]": ""}},
		{name: "suspect IPv6 in a Member State", notice: ev(suspect("", "", ip("2a02:8388:1:2::3"))),
			want: []Recipient{rcp("AT", susIP)}},
		{name: "IPv4-mapped IPv6 counts as IPv4", notice: ev(suspect("", "", ip("::ffff:62.0.1.2"))),
			want: []Recipient{rcp("AT", susIP)}},
		{name: "victim IP", notice: ev(victim("", "", ip("83.0.0.9"))),
			want: []Recipient{rcp("PL", vicIP)}},
		{name: "IP in a territory counts as its Member State", notice: ev(suspect("", "", ip("81.2.69.160"))),
			want: []Recipient{rcp("FR", g(BasisSuspect, IP, "RE"))}},
		{name: "database code in lower case", notice: ev(suspect("", "", ip("91.0.0.1"))),
			want: []Recipient{rcp("MT", susIP)}},
		{name: "two addresses in one state: one ground", notice: ev(suspect("", "", ip("85.214.0.1"), ip("2a01:4f8::1"))),
			want: []Recipient{rcp("DE", susIP)}},
		{name: "two addresses in two states: two recipients", notice: ev(suspect("", "", ip("85.214.0.1"), ip("62.0.0.1"))),
			want: []Recipient{rcp("AT", susIP), rcp("DE", susIP)}},
		{name: "IP outside the Member States: fallback", notice: ev(suspect("", "", ip("8.8.8.8"))),
			want: ieEst, fallback: true, ignored: map[string]string{"suspects[0].ip_addresses[0]": ReasonNotMemberState}},
		{name: "IPv6 outside the Member States: fallback", notice: ev(suspect("", "", ip("2001:4860:4860::8888"))),
			want: ieEst, fallback: true, ignored: map[string]string{"suspects[0].ip_addresses[0]": ReasonNotMemberState}},
		{name: "database's continent code EU is no country, never Europol", notice: ev(suspect("", "", ip("193.0.0.1"))),
			want: ieEst, fallback: true, ignored: map[string]string{"suspects[0].ip_addresses[0]": ReasonUnknownCountry}},
		{name: "address unknown to the database: fallback", notice: ev(suspect("", "", ip("5.0.0.1"))),
			want: ieEst, fallback: true, ignored: map[string]string{"suspects[0].ip_addresses[0]": ReasonNotLocated}},
		{name: "no database: IP addresses count for nothing", rules: func(r *Rules) { r.Locator = nil },
			notice: ev(suspect("", "", ip("85.214.0.1"))),
			want:   ieEst, fallback: true, ignored: map[string]string{"suspects[0].ip_addresses[0]": ReasonNoGeoDatabase}},
		{name: "IP in a Member State without authority: unserved, Europol", except: l("DE"),
			notice: ev(suspect("", "", ip("85.214.0.1"))),
			want:   []Recipient{rcp("EU", euNoAut)}},

		// Proxies.
		{name: "address marked possible_proxy: fallback", notice: ev(suspect("", "", proxy("85.214.132.117"))),
			want: ieEst, fallback: true, ignored: map[string]string{"suspects[0].ip_addresses[0]": ReasonPossibleProxy}},
		{name: "IPv6 marked possible_proxy: fallback", notice: ev(victim("", "", proxy("2a01:4f8::1"))),
			want: ieEst, fallback: true, ignored: map[string]string{"victims[0].ip_addresses[0]": ReasonPossibleProxy}},
		{name: "database anonymiser IPv4: fallback", notice: ev(suspect("", "", ip("185.220.101.4"))),
			want: ieEst, fallback: true, ignored: map[string]string{"suspects[0].ip_addresses[0]": ReasonAnonymiser}},
		{name: "database anonymiser IPv6: fallback", notice: ev(suspect("", "", ip("2a0b:f4c0::1"))),
			want: ieEst, fallback: true, ignored: map[string]string{"suspects[0].ip_addresses[0]": ReasonAnonymiser}},
		{name: "database anonymiser without country: fallback", notice: ev(suspect("", "", ip("104.16.0.1"))),
			want: ieEst, fallback: true, ignored: map[string]string{"suspects[0].ip_addresses[0]": ReasonNotLocated}},
		{name: "proxy in one state, real address in another", notice: ev(suspect("", "", proxy("62.0.0.1"), ip("85.214.0.1"))),
			want:    []Recipient{rcp("DE", susIP)},
			ignored: map[string]string{"suspects[0].ip_addresses[0]": ReasonPossibleProxy, "suspects[0].ip_addresses[1]": ""}},
		{name: "proxy does not take away a declared country", notice: ev(suspect("AT", "", proxy("85.214.0.1"))),
			want: []Recipient{rcp("AT", susDecl)}},

		// The seen_at window (default 30 days around occurred_at).
		{name: "seen 29 days before occurred_at counts", notice: ev(suspect("", "", ipAt("85.214.0.1", "2026-10-22T14:03:00+01:00"))),
			want: []Recipient{rcp("DE", susIP)}},
		{name: "seen exactly 30 days before counts", notice: ev(suspect("", "", ipAt("85.214.0.1", "2026-10-21T13:03:00Z"))),
			want: []Recipient{rcp("DE", susIP)}},
		{name: "seen 30 days and 1 second before does not count", notice: ev(suspect("", "", ipAt("85.214.0.1", "2026-10-21T13:02:59Z"))),
			want: ieEst, fallback: true, ignored: map[string]string{"suspects[0].ip_addresses[0]": ReasonOutsideWindow}},
		{name: "seen 31 days after does not count", notice: ev(suspect("", "", ipAt("2a01:4f8::1", "2026-12-21T14:03:00+01:00"))),
			want: ieEst, fallback: true, ignored: map[string]string{"suspects[0].ip_addresses[0]": ReasonOutsideWindow}},
		{name: "seen a year before does not count, one seen on the day does", notice: ev(suspect("", "",
			ipAt("62.0.0.1", "2025-11-20T14:03:00+01:00"), ipAt("85.214.0.1", "2026-11-20T23:59:00-08:00"))),
			want: []Recipient{rcp("DE", susIP)}},
		{name: "no seen_at: the window is not applied", notice: ev(suspect("", "", notice.IPAddress{IP: "85.214.0.1"})),
			want: []Recipient{rcp("DE", susIP)}},
		{name: "no occurred_at: aware_at is the reference", notice: ev(times("", "2027-06-01T00:00:00Z"),
			suspect("", "", ipAt("85.214.0.1", "2026-11-20T13:58:11Z"), ipAt("62.0.0.1", "2027-05-20T00:00:00Z"))),
			want: []Recipient{rcp("AT", susIP)}},
		{name: "neither occurred_at nor aware_at: the window is not applied", notice: ev(times("", ""),
			suspect("", "", ipAt("85.214.0.1", "2020-01-01T00:00:00Z"))),
			want: []Recipient{rcp("DE", susIP)}},
		{name: "configured window of one hour", rules: func(r *Rules) { r.SeenWindow = time.Hour },
			notice: ev(suspect("", "", ipAt("85.214.0.1", "2026-11-20T12:03:00Z"), ipAt("62.0.0.1", "2026-11-20T11:03:00Z"))),
			want:   []Recipient{rcp("DE", susIP)}, ignored: map[string]string{"suspects[0].ip_addresses[1]": ReasonOutsideWindow}},

		// Phone numbers.
		{name: "E.164 phone alone", notice: ev(suspect("", "+4915112345678")),
			want: []Recipient{rcp("DE", susPhone)}},
		{name: "international phone with spaces", notice: ev(victim("", "+43 660 1234567")),
			want: []Recipient{rcp("AT", vicPhone)}},
		{name: "national phone read in the declared country", notice: ev(suspect("DE", "0151 12345678")),
			want: []Recipient{rcp("DE", susDecl, susPhone)}},
		{name: "national phone, declared EL reads as GR", notice: ev(victim("el", "691 234 5678")),
			want: []Recipient{rcp("GR", vicDecl, vicPhone)}},
		{name: "national phone without declared country does not count", notice: ev(suspect("", "0151 12345678")),
			want: ieEst, fallback: true, ignored: map[string]string{"suspects[0].phone": ReasonInvalidPhone}},
		{name: "garbage phone does not count", notice: ev(suspect("", "not a number")),
			want: ieEst, fallback: true, ignored: map[string]string{"suspects[0].phone": ReasonInvalidPhone}},
		{name: "too short phone does not count", notice: ev(suspect("", "+49 151")),
			want: ieEst, fallback: true, ignored: map[string]string{"suspects[0].phone": ReasonInvalidPhone}},
		{name: "phone outside the Member States", notice: ev(suspect("", "+1 202 555 0143")),
			want: ieEst, fallback: true, ignored: map[string]string{"suspects[0].phone": ReasonNotMemberState}},
		{name: "phone of a territory counts as its Member State", notice: ev(suspect("", "+262 692 12 34 56")),
			want: []Recipient{rcp("FR", g(BasisSuspect, Phone, "RE"))}},
		{name: "no phone parser: phones count for nothing", rules: func(r *Rules) { r.PhoneRegion = nil },
			notice: ev(suspect("", "+4915112345678")),
			want:   ieEst, fallback: true, ignored: map[string]string{"suspects[0].phone": ReasonNoPhoneParser}},

		// Precedence and conflicts: every clue counts on its own.
		{name: "declared, phone and IP in one state: strongest first", notice: ev(suspect("DE", "+4915112345678", ip("85.214.0.1"))),
			want: []Recipient{rcp("DE", susDecl, susPhone, susIP)}},
		{name: "one suspect, three states: declared, phone, IP", notice: ev(suspect("DE", "+43 660 1234567", ip("83.0.0.9"))),
			want: []Recipient{rcp("AT", susPhone), rcp("DE", susDecl), rcp("PL", susIP)}},
		{name: "resides in one state, located in another", notice: ev(suspect("DE", "", ip("2a02:8388::1"))),
			want: []Recipient{rcp("AT", susIP), rcp("DE", susDecl)}},
		{name: "declared outside, located inside", notice: ev(suspect("US", "", ip("85.214.0.1"))),
			want: []Recipient{rcp("DE", susIP)}, ignored: map[string]string{"suspects[0].country": ReasonNotMemberState}},
		{name: "strongest evidence first across bases", notice: ev(suspect("", "", ip("85.214.0.1")), victim("DE", "")),
			want: []Recipient{rcp("DE", vicDecl, susIP)}},
		{name: "same evidence: offence, suspect, victim", notice: ev(victim("", "", ip("85.214.0.2")), suspect("", "", ip("85.214.0.1"))),
			want: []Recipient{rcp("DE", susIP, vicIP)}},
		{name: "offence declared, suspect located elsewhere", notice: ev(offence("AT"), suspect("", "", ip("85.214.0.1"))),
			want: []Recipient{rcp("AT", offDecl), rcp("DE", susIP)}},
		{name: "phone and IP of victim and suspect", notice: ev(suspect("", "+33 6 12 34 56 78", ip("62.0.0.1")), victim("RO", "+40 721 234 567")),
			want: []Recipient{rcp("AT", susIP), rcp("FR", susPhone), rcp("RO", vicDecl, vicPhone)}},
		{name: "everything discarded: fallback, with every reason", notice: ev(
			suspect("US", "garbage", proxy("85.214.0.1"), ip("10.0.0.1"), ip("185.220.100.1"), ipAt("62.0.0.1", "2025-01-01T00:00:00Z"))),
			want: ieEst, fallback: true, ignored: map[string]string{
				"suspects[0].country": ReasonNotMemberState, "suspects[0].phone": ReasonInvalidPhone,
				"suspects[0].ip_addresses[0]": ReasonPossibleProxy, "suspects[0].ip_addresses[1]": ReasonSpecialAddress,
				"suspects[0].ip_addresses[2]": ReasonAnonymiser, "suspects[0].ip_addresses[3]": ReasonOutsideWindow,
			}},
		{name: "invalid address text does not count", notice: ev(suspect("", "", ip("85.214.0.300"))),
			want: ieEst, fallback: true, ignored: map[string]string{"suspects[0].ip_addresses[0]": ReasonInvalidAddress}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := evidenceRules(tc.except...)
			if tc.rules != nil {
				tc.rules(&r)
			}
			d := Decide(r, ie, tc.notice)
			if !reflect.DeepEqual(d.Recipients, tc.want) || d.Fallback != tc.fallback {
				gj, _ := json.Marshal(d)
				wj, _ := json.Marshal(tc.want)
				t.Errorf("Decide\n got %s\nwant recipients %s, fallback %v", gj, wj, tc.fallback)
			}
			for field, reason := range tc.ignored {
				c := clue(d, field)
				if c == nil {
					t.Errorf("no clue %s in %+v", field, d.Clues)
					continue
				}
				if c.Ignored != reason || (reason == "") != (c.MemberState != "") {
					t.Errorf("clue %s = %+v, want ignored %q", field, *c, reason)
				}
			}
			if r.Locator != nil && (d.GeoDatabase == nil || d.GeoDatabase.SHA256 != "v1") {
				t.Errorf("geo_database = %+v", d.GeoDatabase)
			}
			if r.Locator == nil && d.GeoDatabase != nil {
				t.Errorf("geo_database without a database: %+v", d.GeoDatabase)
			}
		})
	}
}

func clue(d Decision, field string) *Clue {
	for i := range d.Clues {
		if d.Clues[i].Field == field {
			return &d.Clues[i]
		}
	}
	return nil
}

// TestSpecialAddresses checks every special range on its own, and the
// addresses just outside them, against a database that places every
// address in DE.
func TestSpecialAddresses(t *testing.T) {
	never := map[string]string{
		"0.0.0.0":             "0.0.0.0/8",
		"0.1.2.3":             "0.0.0.0/8",
		"10.0.0.1":            "10.0.0.0/8",
		"10.255.255.255":      "10.0.0.0/8",
		"100.64.0.1":          "100.64.0.0/10",
		"100.127.255.254":     "100.64.0.0/10",
		"127.0.0.1":           "127.0.0.0/8",
		"169.254.10.20":       "169.254.0.0/16",
		"172.16.0.1":          "172.16.0.0/12",
		"172.31.255.255":      "172.16.0.0/12",
		"192.0.0.8":           "192.0.0.0/24",
		"192.0.2.1":           "192.0.2.0/24",
		"192.88.99.1":         "192.88.99.0/24",
		"192.168.1.1":         "192.168.0.0/16",
		"198.18.0.1":          "198.18.0.0/15",
		"198.19.255.255":      "198.18.0.0/15",
		"198.51.100.7":        "198.51.100.0/24",
		"203.0.113.7":         "203.0.113.0/24",
		"224.0.0.1":           "224.0.0.0/4",
		"239.255.255.250":     "224.0.0.0/4",
		"240.0.0.1":           "240.0.0.0/4",
		"255.255.255.255":     "240.0.0.0/4",
		"::ffff:192.168.1.1":  "192.168.0.0/16",
		"::":                  "::/128",
		"::1":                 "::1/128",
		"::1.2.3.4":           "outside 2000::/3",
		"64:ff9b::8.8.8.8":    "64:ff9b::/96",
		"64:ff9b:1::1":        "64:ff9b:1::/48",
		"100::1":              "100::/64",
		"fc00::1":             "fc00::/7",
		"fd12:3456:789a::1":   "fc00::/7",
		"fe80::1":             "fe80::/10",
		"fec0::1":             "fec0::/10",
		"ff02::1":             "ff00::/8",
		"2001::1":             "2001::/32",
		"2001:0:4136:e378::1": "2001::/32",
		"2001:2::1":           "2001::/23",
		"2001:10::1":          "2001::/23",
		"2001:db8::1":         "2001:db8::/32",
		"2001:db8:ffff::1":    "2001:db8::/32",
		"2002:c000:204::1":    "2002::/16",
		"3fff::1":             "3fff::/20",
		"4000::1":             "outside 2000::/3",
	}
	counts := []string{
		"1.1.1.1", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0", "126.255.255.255",
		"169.253.255.255", "172.15.255.255", "172.32.0.0", "192.0.1.255", "192.0.3.0", "192.167.255.255",
		"192.169.0.0", "198.17.255.255", "198.20.0.0", "198.51.99.255", "203.0.112.255", "203.0.114.0",
		"223.255.255.255", "2001:200::1", "2001:db9::1", "2003:e1::1", "2a00:1450::1", "3ffe::1",
	}
	r := evidenceRules()
	for a, prefix := range never {
		d := Decide(r, Platform{Establishment: "IE"}, ev(suspect("", "", ip(a))))
		c := clue(d, "suspects[0].ip_addresses[0]")
		if !d.Fallback || c == nil || c.Ignored != ReasonSpecialAddress || !strings.HasPrefix(c.Detail, prefix) {
			t.Errorf("%s: fallback %v, clue %+v; want special_address %s", a, d.Fallback, c, prefix)
		}
	}
	for _, a := range counts {
		d := Decide(r, Platform{Establishment: "IE"}, ev(suspect("", "", ip(a))))
		if !reflect.DeepEqual(d.Recipients, []Recipient{rcp("DE", susIP)}) {
			t.Errorf("%s does not count: %+v", a, d.Clues)
		}
	}
}

// The decision, which the decided event stores, names fields and
// countries, never the addresses and numbers themselves.
func TestDecisionHoldsNoAddressOrNumber(t *testing.T) {
	n := ev(suspect("DE", "+49 151 12345678", ip("85.214.132.117"), proxy("2a01:4f8:c17:1::1"), ip("10.1.2.3")),
		victim("", "0660 1234567", ipAt("62.0.77.1", "2020-01-01T00:00:00Z")))
	b, err := json.Marshal(Decide(evidenceRules(), Platform{Establishment: "IE"}, n))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"85.214", "132.117", "2a01", "c17", "10.1.2.3", "12345678", "151", "1234567", "62.0.77", "2020-01-01"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("decision holds %q: %s", secret, b)
		}
	}
	want := `{"field":"suspects[0].ip_addresses[1]","basis":"suspect","evidence":"ip","ignored":"possible_proxy","detail":"marked possible_proxy by the platform"}`
	if !strings.Contains(string(b), want) {
		t.Errorf("decision lacks %s:\n%s", want, b)
	}
	if !strings.Contains(string(b), `"geo_database":{"type":"Test-Country","built_at":"2026-11-17T00:00:00Z","sha256":"v1"}`) {
		t.Errorf("decision lacks its database: %s", b)
	}
}

// The outside_window detail says how far and which way, in days.
func TestOutsideWindowDetail(t *testing.T) {
	d := Decide(evidenceRules(), Platform{}, ev(suspect("", "", ipAt("85.214.0.1", "2027-01-04T13:03:00Z"))))
	c := clue(d, "suspects[0].ip_addresses[0]")
	if c == nil || c.Detail != "seen_at is 45 days after occurred_at; the window is 30 days" {
		t.Errorf("clue %+v", c)
	}
	r := evidenceRules()
	r.SeenWindow = 90 * time.Minute
	d = Decide(r, Platform{}, ev(suspect("", "", ipAt("85.214.0.1", "2026-11-20T11:00:00Z"))))
	if c := clue(d, "suspects[0].ip_addresses[0]"); c == nil || c.Detail != "seen_at is 2h3m0s before occurred_at; the window is 1h30m0s" {
		t.Errorf("clue %+v", c)
	}
}

// FuzzDecideEvidence feeds arbitrary addresses, numbers, countries and
// times to Decide: it never panics, every clue is accounted for, and a
// clue counts exactly when its Member State is concerned.
func FuzzDecideEvidence(f *testing.F) {
	f.Add("85.214.0.1", "+4915112345678", "de", "2026-11-20T13:58:11Z", "2026-11-20T14:03:00+01:00", false)
	f.Add("::ffff:10.0.0.1", "0151 12345678", "EL", "", "", true)
	f.Add("2001:db8::1", "garbage", "RE", "2020-01-01T00:00:00Z", "2026-11-20T14:03:00Z", false)
	f.Add("not an address", "+262 692 12 34 56", "", "x", "y", false)
	f.Fuzz(func(t *testing.T, addr, ph, country, seen, occurred string, proxy bool) {
		n := ev(times(occurred, ""), suspect(country, ph, notice.IPAddress{IP: addr, SeenAt: seen, PossibleProxy: proxy}))
		d := Decide(evidenceRules(), Platform{Establishment: "IE"}, n)
		concerned := map[string]bool{}
		for _, r := range d.Recipients {
			concerned[r.Country] = true
		}
		for _, c := range d.Clues {
			if (c.Ignored == "") != (c.MemberState != "") {
				t.Fatalf("clue %+v: counts without a Member State, or the reverse", c)
			}
			if c.MemberState != "" && !concerned[c.MemberState] {
				t.Fatalf("clue %+v counts but %s receives nothing: %+v", c, c.MemberState, d.Recipients)
			}
		}
		if len(d.Recipients) == 0 {
			t.Fatal("no recipient")
		}
	})
}
