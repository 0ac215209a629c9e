package jurisdiction

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/notice"
)

// scope returns the Member States of "EU27" or "EEA".
func scope(t testing.TB, name string) country.Set {
	t.Helper()
	s, ok := country.MemberStates(name)
	if !ok {
		t.Fatalf("scope %q unknown", name)
	}
	return s
}

// authorities returns one authority per Member State of the EEA ("de-police"
// for DE) plus Europol ("europol"), without the countries in except.
func authorities(except ...string) map[string]string {
	m := map[string]string{country.Europol: "europol"}
	for _, c := range append(append([]string{}, country.EU27...), country.EEAOnly...) {
		m[c] = strings.ToLower(c) + "-police"
	}
	for _, c := range except {
		delete(m, c)
	}
	return m
}

func g(basis, evidence string, territory ...string) Ground {
	gr := Ground{Basis: basis, Evidence: evidence}
	if len(territory) > 0 {
		gr.Territory = territory[0]
	}
	return gr
}

func rcp(country string, gs ...Ground) Recipient {
	a := strings.ToLower(country) + "-police"
	if country == "EU" {
		a = "europol"
	}
	return Recipient{Authority: a, Country: country, Grounds: gs}
}

// nt builds a notice from countries: offences, suspects, victims.
func nt(offences, suspects, victims []string) *notice.Notice {
	n := &notice.Notice{Reference: "T-1", Category: "human_trafficking", Suspicion: "s"}
	for _, c := range offences {
		n.Locations = append(n.Locations, notice.Location{Country: c})
	}
	for _, c := range suspects {
		n.Suspects = append(n.Suspects, notice.Person{Country: c})
	}
	for _, c := range victims {
		n.Victims = append(n.Victims, notice.Person{Country: c})
	}
	return n
}

func l(cs ...string) []string { return cs }

var (
	offDecl = g(BasisOffence, Declared)
	susDecl = g(BasisSuspect, Declared)
	vicDecl = g(BasisVictim, Declared)
	estConf = g(BasisEstablishment, Configured)
	repConf = g(BasisLegalRepresentative, Configured)
	euFb    = g(BasisEuropol, Fallback)
	euLast  = g(BasisEuropol, LastResort)
	euNoAut = g(BasisEuropol, NoAuthority)
)

func TestDecide(t *testing.T) {
	ieOnly := Platform{Establishment: "IE"}
	tests := []struct {
		name     string
		scope    string   // "EU27" (default) or "EEA"
		except   []string // countries without an authority
		platform Platform
		notice   *notice.Notice
		want     Decision
	}{
		// Rule 1 and 2: the Member States concerned.
		{
			name:   "victim, suspect and offence in three states",
			notice: nt(l("AT"), l("DE"), l("RO")),
			want: Decision{Recipients: []Recipient{
				rcp("AT", offDecl), rcp("DE", susDecl), rcp("RO", vicDecl),
			}},
		},
		{
			name:   "same state from two bases is one recipient with both grounds",
			notice: nt(nil, l("DE"), l("DE")),
			want:   Decision{Recipients: []Recipient{rcp("DE", susDecl, vicDecl)}},
		},
		{
			name:   "grounds ordered offence, suspect, victim whatever the order declared",
			notice: nt(l("PL"), l("PL", "PL"), l("PL")),
			want:   Decision{Recipients: []Recipient{rcp("PL", offDecl, susDecl, vicDecl)}},
		},
		{
			name:   "same basis and state twice is one ground",
			notice: nt(l("DE", "DE"), nil, l("IT", "IT", "IT")),
			want:   Decision{Recipients: []Recipient{rcp("DE", offDecl), rcp("IT", vicDecl)}},
		},
		{
			name:   "recipients sorted by country code",
			notice: nt(l("SE", "AT"), l("PT", "BE"), l("LV")),
			want: Decision{Recipients: []Recipient{
				rcp("AT", offDecl), rcp("BE", susDecl), rcp("LV", vicDecl), rcp("PT", susDecl), rcp("SE", offDecl),
			}},
		},
		{
			name:   "territory RE counts as FR",
			notice: nt(l("RE"), nil, nil),
			want:   Decision{Recipients: []Recipient{rcp("FR", g(BasisOffence, Declared, "RE"))}},
		},
		{
			name:   "territory GP counts as FR",
			notice: nt(nil, nil, l("GP")),
			want:   Decision{Recipients: []Recipient{rcp("FR", g(BasisVictim, Declared, "GP"))}},
		},
		{
			name:   "territory IC (Canary Islands) counts as ES",
			notice: nt(nil, l("IC"), nil),
			want:   Decision{Recipients: []Recipient{rcp("ES", g(BasisSuspect, Declared, "IC"))}},
		},
		{
			name:   "territory AX (Åland) counts as FI",
			notice: nt(l("AX"), nil, nil),
			want:   Decision{Recipients: []Recipient{rcp("FI", g(BasisOffence, Declared, "AX"))}},
		},
		{
			name:   "territory GL (Greenland) counts as DK",
			notice: nt(nil, nil, l("GL")),
			want:   Decision{Recipients: []Recipient{rcp("DK", g(BasisVictim, Declared, "GL"))}},
		},
		{
			name:   "territory BQ (Caribbean Netherlands) counts as NL",
			notice: nt(nil, l("BQ"), nil),
			want:   Decision{Recipients: []Recipient{rcp("NL", g(BasisSuspect, Declared, "BQ"))}},
		},
		{
			name:   "Member State and its territory on the same basis are two grounds, state first",
			notice: nt(l("RE", "FR", "GP", "RE"), nil, nil),
			want: Decision{Recipients: []Recipient{rcp("FR",
				offDecl, g(BasisOffence, Declared, "GP"), g(BasisOffence, Declared, "RE"))}},
		},
		{
			name:   "EL counts as GR, without a territory",
			notice: nt(nil, l("EL"), l("GR")),
			want:   Decision{Recipients: []Recipient{rcp("GR", susDecl, vicDecl)}},
		},
		{
			name:   "lower and mixed case accepted",
			notice: nt(l("de"), l("el"), l("Re")),
			want: Decision{Recipients: []Recipient{
				rcp("DE", offDecl), rcp("FR", g(BasisVictim, Declared, "RE")), rcp("GR", susDecl),
			}},
		},
		{
			name:   "non-member states concern nobody",
			notice: nt(l("US"), l("GB", "UK", "CH", "NO"), l("DE")),
			want:   Decision{Recipients: []Recipient{rcp("DE", vicDecl)}},
		},
		{
			name:   "unknown, empty and pseudo codes concern nobody",
			notice: nt(l("ZZ", ""), l("EU", "DEU"), l("D", "CZ")),
			want:   Decision{Recipients: []Recipient{rcp("CZ", vicDecl)}},
		},

		// Scope: EU27 or EEA.
		{
			name:     "EU27: NO is not a Member State",
			platform: ieOnly,
			notice:   nt(l("NO"), l("IS"), l("LI")),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("IE", estConf)}},
		},
		{
			name:   "EEA: NO, IS and LI are Member States",
			scope:  "EEA",
			notice: nt(l("NO"), l("IS"), l("LI")),
			want: Decision{Recipients: []Recipient{
				rcp("IS", susDecl), rcp("LI", vicDecl), rcp("NO", offDecl),
			}},
		},
		{
			name:   "EEA: SJ (Svalbard) counts as NO",
			scope:  "EEA",
			notice: nt(l("sj"), nil, nil),
			want:   Decision{Recipients: []Recipient{rcp("NO", g(BasisOffence, Declared, "SJ"))}},
		},
		{
			name:     "EU27: SJ concerns nobody",
			platform: ieOnly,
			notice:   nt(l("SJ"), nil, nil),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("IE", estConf)}},
		},

		// Rule 3: Member States without an authority.
		{
			name:   "state without authority: unserved, Europol with no_authority",
			except: l("MT"),
			notice: nt(nil, nil, l("MT")),
			want:   Decision{Unserved: l("MT"), Recipients: []Recipient{rcp("EU", euNoAut)}},
		},
		{
			name:   "served and unserved states: Europol added once, unserved sorted",
			except: l("MT", "CY"),
			notice: nt(l("MT"), l("DE"), l("CY")),
			want: Decision{Unserved: l("CY", "MT"), Recipients: []Recipient{
				rcp("DE", susDecl), rcp("EU", euNoAut),
			}},
		},
		{
			name:   "unserved state and no Europol: only the served states",
			except: l("MT", "EU"),
			notice: nt(l("MT"), l("DE"), nil),
			want:   Decision{Unserved: l("MT"), Recipients: []Recipient{rcp("DE", susDecl)}},
		},
		{
			name:     "unserved state is identified: no fallback to the establishment",
			except:   l("MT"),
			platform: ieOnly,
			notice:   nt(l("MT"), nil, nil),
			want:     Decision{Unserved: l("MT"), Recipients: []Recipient{rcp("EU", euNoAut)}},
		},
		{
			name:     "unserved state, no Europol, nothing else: empty",
			except:   l("MT", "EU"),
			platform: ieOnly,
			notice:   nt(l("MT"), nil, nil),
			want:     Decision{Unserved: l("MT")},
		},
		{
			name:   "Europol sorts last, after codes above EU",
			except: l("LU"),
			notice: nt(l("FI", "GR", "LU"), l("ES"), l("DE")),
			want: Decision{Unserved: l("LU"), Recipients: []Recipient{
				rcp("DE", vicDecl), rcp("ES", susDecl), rcp("FI", offDecl), rcp("GR", offDecl), rcp("EU", euNoAut),
			}},
		},

		// Rule 4: fallback.
		{
			name:     "fallback default: establishment",
			platform: Platform{Establishment: "IE"},
			notice:   nt(nil, nil, nil),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("IE", estConf)}},
		},
		{
			name:     "fallback default: establishment and legal representative",
			platform: Platform{Establishment: "IE", LegalRepresentative: "NL"},
			notice:   nt(l("US"), nil, nil),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("IE", estConf), rcp("NL", repConf)}},
		},
		{
			name:     "fallback default: establishment null, legal representative",
			platform: Platform{LegalRepresentative: "BE"},
			notice:   nt(nil, nil, nil),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("BE", repConf)}},
		},
		{
			name:     "fallback default: establishment without authority, legal representative",
			except:   l("IE"),
			platform: Platform{Establishment: "IE", LegalRepresentative: "BE"},
			notice:   nt(nil, nil, nil),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("BE", repConf)}},
		},
		{
			name:     "fallback: establishment without authority only: last resort",
			except:   l("IE"),
			platform: Platform{Establishment: "IE", Fallback: l("establishment")},
			notice:   nt(nil, nil, nil),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("EU", euLast)}},
		},
		{
			name:     "fallback: establishment null only: last resort",
			platform: Platform{LegalRepresentative: "BE", Fallback: l("establishment")},
			notice:   nt(nil, nil, nil),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("EU", euLast)}},
		},
		{
			name:     "fallback: establishment outside the Member States: last resort",
			platform: Platform{Establishment: "US", LegalRepresentative: "NO"},
			notice:   nt(nil, nil, nil),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("EU", euLast)}},
		},
		{
			name:     "fallback: legal representative only",
			platform: Platform{Establishment: "IE", LegalRepresentative: "LU", Fallback: l("legal_representative")},
			notice:   nt(nil, nil, nil),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("LU", repConf)}},
		},
		{
			name:     "fallback: europol only",
			platform: Platform{Establishment: "IE", Fallback: l("europol")},
			notice:   nt(nil, nil, nil),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("EU", euFb)}},
		},
		{
			name:     "fallback: establishment and europol, both",
			platform: Platform{Establishment: "IE", Fallback: l("establishment", "europol")},
			notice:   nt(nil, nil, nil),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("IE", estConf), rcp("EU", euFb)}},
		},
		{
			name:     "fallback: all three",
			platform: Platform{Establishment: "IE", LegalRepresentative: "DE", Fallback: l("europol", "legal_representative", "establishment")},
			notice:   nt(nil, nil, nil),
			want: Decision{Fallback: true, Recipients: []Recipient{
				rcp("DE", repConf), rcp("IE", estConf), rcp("EU", euFb),
			}},
		},
		{
			name:     "fallback: establishment and legal representative in one state: one recipient",
			platform: Platform{Establishment: "IE", LegalRepresentative: "IE"},
			notice:   nt(nil, nil, nil),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("IE", estConf, repConf)}},
		},
		{
			name:     "fallback: duplicated entries give one ground, Europol merged",
			platform: Platform{Establishment: "IE", Fallback: l("europol", "establishment", "europol", "establishment")},
			notice:   nt(nil, nil, nil),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("IE", estConf), rcp("EU", euFb)}},
		},
		{
			name:     "fallback: unknown entries ignored, case ignored",
			platform: Platform{Establishment: "IE", Fallback: l("headquarters", "Europol")},
			notice:   nt(nil, nil, nil),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("EU", euFb)}},
		},
		{
			name:     "fallback: configured codes normalised (lower case, EL, territory)",
			platform: Platform{Establishment: "el", LegalRepresentative: "re"},
			notice:   nt(nil, nil, nil),
			want: Decision{Fallback: true, Recipients: []Recipient{
				rcp("FR", g(BasisLegalRepresentative, Configured, "RE")), rcp("GR", estConf),
			}},
		},
		{
			name:     "fallback: europol listed but not configured, establishment resolves",
			except:   l("EU"),
			platform: Platform{Establishment: "IE", Fallback: l("europol", "establishment")},
			notice:   nt(nil, nil, nil),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("IE", estConf)}},
		},
		{
			name:     "fallback: EEA establishment under EEA scope",
			scope:    "EEA",
			platform: Platform{Establishment: "NO"},
			notice:   nt(l("US"), nil, nil),
			want:     Decision{Fallback: true, Recipients: []Recipient{rcp("NO", estConf)}},
		},

		// Rule 5: never dropped.
		{
			name:   "last resort: nothing declared, nothing configured",
			notice: nt(nil, nil, nil),
			want:   Decision{Fallback: true, Recipients: []Recipient{rcp("EU", euLast)}},
		},
		{
			name:   "last resort: nil notice",
			notice: nil,
			want:   Decision{Fallback: true, Recipients: []Recipient{rcp("EU", euLast)}},
		},
		{
			name:     "no Europol configured and nothing resolves: empty recipients",
			except:   l("EU", "IE"),
			platform: Platform{Establishment: "IE", Fallback: l("establishment", "europol")},
			notice:   nt(l("US"), nil, nil),
			want:     Decision{Fallback: true},
		},

		// Rule 7: priority.
		{
			name:   "imminent threat is urgent",
			notice: func() *notice.Notice { n := nt(l("DE"), nil, nil); n.ImminentThreat = true; return n }(),
			want:   Decision{Priority: notice.Urgent, Recipients: []Recipient{rcp("DE", offDecl)}},
		},
		{
			name:   "imminent threat urgent in fallback too",
			notice: func() *notice.Notice { n := nt(nil, nil, nil); n.ImminentThreat = true; return n }(),
			want:   Decision{Priority: notice.Urgent, Fallback: true, Recipients: []Recipient{rcp("EU", euLast)}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := tc.scope
			if sc == "" {
				sc = "EU27"
			}
			r := Rules{MemberStates: scope(t, sc), Authorities: authorities(tc.except...)}
			got := Decide(r, tc.platform, tc.notice)
			got.Clues = nil // checked in TestDecideEvidence

			want := tc.want
			if want.Priority == "" {
				want.Priority = notice.Normal
			}
			if want.Recipients == nil {
				want.Recipients = []Recipient{}
			}
			if !reflect.DeepEqual(got, want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(want)
				t.Errorf("Decide\n got %s\nwant %s", gj, wj)
			}
		})
	}
}

func TestDecideEmptyRecipientsIsJSONArray(t *testing.T) {
	r := Rules{MemberStates: scope(t, "EU27")}
	b, err := json.Marshal(Decide(r, Platform{}, nt(nil, nil, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"priority":"normal","recipients":[],"fallback":true}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}

// TestDecideDeterministic checks rule 8: the order in which countries are
// declared, and repeated calls, never change the JSON of the decision.
func TestDecideDeterministic(t *testing.T) {
	r := Rules{MemberStates: scope(t, "EEA"), Authorities: authorities("MT", "CY")}
	p := Platform{Establishment: "IE"}
	codes := []string{"DE", "fr", "RE", "EL", "GR", "MT", "CY", "US", "NO", "AX", "IC", "ES", "GL", "dk", "SJ", "PL"}
	base := nt(codes, codes, codes)
	// Clues name their fields, which shuffling changes: the rest must not.
	decide := func(n *notice.Notice) Decision {
		d := Decide(r, p, n)
		d.Clues = nil
		return d
	}
	want, err := json.Marshal(decide(base))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		o, s, v := append([]string{}, codes...), append([]string{}, codes...), append([]string{}, codes...)
		for _, c := range [][]string{o, s, v} {
			rng.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
		}
		got, err := json.Marshal(decide(nt(o, s, v)))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("shuffle %d: got %s\nwant %s", i, got, want)
		}
	}
	for range 50 {
		got, _ := json.Marshal(decide(base))
		if string(got) != string(want) {
			t.Fatalf("repeated call: got %s\nwant %s", got, want)
		}
	}
}

// TestDecideDoesNotModifyInput checks that Decide is pure.
func TestDecideDoesNotModifyInput(t *testing.T) {
	r := Rules{MemberStates: scope(t, "EU27"), Authorities: authorities("MT")}
	rBefore := Rules{MemberStates: scope(t, "EU27"), Authorities: authorities("MT")}
	p := Platform{Establishment: "ie", Fallback: []string{"europol", "establishment"}}
	n := nt(l("mt", "RE"), l("el"), l("US"))
	nb, _ := json.Marshal(n)
	d1 := Decide(r, p, n)
	Decide(r, p, nt(nil, nil, nil))
	if !reflect.DeepEqual(r, rBefore) {
		t.Error("rules modified")
	}
	if !reflect.DeepEqual(p, Platform{Establishment: "ie", Fallback: []string{"europol", "establishment"}}) {
		t.Errorf("platform modified: %+v", p)
	}
	if na, _ := json.Marshal(n); string(na) != string(nb) {
		t.Errorf("notice modified:\n%s\n%s", na, nb)
	}
	// A decision shares no memory with a later one.
	d1.Recipients[0].Grounds[0].Basis = "x"
	d2 := Decide(r, p, n)
	if d2.Recipients[0].Grounds[0].Basis == "x" {
		t.Error("decisions share memory")
	}
}

func BenchmarkDecide(b *testing.B) {
	s, _ := country.MemberStates("EU27")
	r := Rules{MemberStates: s, Authorities: authorities("MT")}
	p := Platform{Establishment: "IE"}
	// Six countries: AT, DE (twice), RO, FR via RE, MT (unserved), US (ignored).
	n := nt(l("AT", "RE"), l("DE", "US"), l("RO", "DE", "MT"))
	b.ReportAllocs()
	for b.Loop() {
		Decide(r, p, n)
	}
}

func Example() {
	memberStates, _ := country.MemberStates("EU27")
	rules := Rules{
		MemberStates: memberStates,
		Authorities:  map[string]string{"AT": "at-bk", "DE": "de-bka", "FR": "fr-ofast", "EU": "europol"},
	}
	platform := Platform{Establishment: "IE", Fallback: []string{"establishment", "europol"}}
	n := &notice.Notice{
		Reference:      "EX-2026-000123",
		Category:       "human_trafficking",
		ImminentThreat: true,
		Suspicion:      "...",
		Locations:      []notice.Location{{Country: "AT"}},
		Suspects:       []notice.Person{{Country: "DE"}, {Country: "US"}},
		Victims:        []notice.Person{{Country: "RO"}, {Country: "re"}, {Country: "DE"}},
	}
	out, _ := json.MarshalIndent(Decide(rules, platform, n), "", "  ")
	fmt.Println(string(out))
	// Output:
	// {
	//   "priority": "urgent",
	//   "recipients": [
	//     {
	//       "authority": "at-bk",
	//       "country": "AT",
	//       "grounds": [
	//         {
	//           "basis": "offence",
	//           "evidence": "declared"
	//         }
	//       ]
	//     },
	//     {
	//       "authority": "de-bka",
	//       "country": "DE",
	//       "grounds": [
	//         {
	//           "basis": "suspect",
	//           "evidence": "declared"
	//         },
	//         {
	//           "basis": "victim",
	//           "evidence": "declared"
	//         }
	//       ]
	//     },
	//     {
	//       "authority": "fr-ofast",
	//       "country": "FR",
	//       "grounds": [
	//         {
	//           "basis": "victim",
	//           "evidence": "declared",
	//           "territory": "RE"
	//         }
	//       ]
	//     },
	//     {
	//       "authority": "europol",
	//       "country": "EU",
	//       "grounds": [
	//         {
	//           "basis": "europol",
	//           "evidence": "no_authority"
	//         }
	//       ]
	//     }
	//   ],
	//   "unserved": [
	//     "RO"
	//   ],
	//   "fallback": false,
	//   "clues": [
	//     {
	//       "field": "locations[0].country",
	//       "basis": "offence",
	//       "evidence": "declared",
	//       "country": "AT",
	//       "member_state": "AT"
	//     },
	//     {
	//       "field": "suspects[0].country",
	//       "basis": "suspect",
	//       "evidence": "declared",
	//       "country": "DE",
	//       "member_state": "DE"
	//     },
	//     {
	//       "field": "suspects[1].country",
	//       "basis": "suspect",
	//       "evidence": "declared",
	//       "country": "US",
	//       "ignored": "not_member_state"
	//     },
	//     {
	//       "field": "victims[0].country",
	//       "basis": "victim",
	//       "evidence": "declared",
	//       "country": "RO",
	//       "member_state": "RO"
	//     },
	//     {
	//       "field": "victims[1].country",
	//       "basis": "victim",
	//       "evidence": "declared",
	//       "country": "RE",
	//       "member_state": "FR"
	//     },
	//     {
	//       "field": "victims[2].country",
	//       "basis": "victim",
	//       "evidence": "declared",
	//       "country": "DE",
	//       "member_state": "DE"
	//     }
	//   ]
	// }
}
