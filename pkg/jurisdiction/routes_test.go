package jurisdiction

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/noticerelay/noticerelay/pkg/notice"
)

// Routing rules of the tests: a German CSA unit, a German 24/7 desk that
// copies urgent German notices, an EU 24/7 desk that copies every urgent
// notice, and a Europol terrorism centre replacing Europol.
var testRoutes = []Route{
	{Name: "de-csa-unit", Authority: "de-csa", Country: "DE", Categories: []string{"child_sexual_abuse", "grooming"}, InsteadOf: "de-police"},
	{Name: "de-urgent", Authority: "de-247", Country: "DE", Priority: notice.Urgent, CopyOf: "de-police"},
	{Name: "eu-urgent", Authority: "eu-247", Country: "EU", Priority: notice.Urgent, CopyOf: CopyAny},
	{Name: "ectc", Authority: "eu-ctc", Country: "EU", Categories: []string{"terrorism"}, InsteadOf: "europol"},
}

// rn builds a notice of category, priority and declared countries.
func rn(category string, urgent bool, offences, suspects, victims []string) *notice.Notice {
	n := nt(offences, suspects, victims)
	n.Category, n.ImminentThreat = category, urgent
	return n
}

func TestDecideRoutes(t *testing.T) {
	ie := Platform{Establishment: "IE", Fallback: l("establishment")}
	de := func(auth string, gs ...Ground) Recipient {
		return Recipient{Authority: auth, Country: "DE", Grounds: gs}
	}
	tests := []struct {
		name     string
		routes   []Route
		platform Platform
		notice   *notice.Notice
		want     []Recipient
	}{
		{name: "no rule matches: primary authorities",
			notice: rn("human_trafficking", false, l("AT"), l("DE"), nil),
			want:   []Recipient{rcp("AT", offDecl), rcp("DE", susDecl)}},
		{name: "category rule replaces the primary authority",
			notice: rn("child_sexual_abuse", false, nil, l("DE"), l("AT")),
			want: []Recipient{rcp("AT", vicDecl),
				{Authority: "de-csa", Country: "DE", Grounds: []Ground{susDecl}, Rule: "de-csa-unit", InsteadOf: "de-police"}}},
		{name: "any category of the list",
			notice: rn("grooming", false, nil, nil, l("DE")),
			want:   []Recipient{{Authority: "de-csa", Country: "DE", Grounds: []Ground{vicDecl}, Rule: "de-csa-unit", InsteadOf: "de-police"}}},
		{name: "urgent: copies to the German desk and the EU desk",
			notice: rn("human_trafficking", true, l("AT"), l("DE"), nil),
			want: []Recipient{rcp("AT", offDecl), rcp("DE", susDecl),
				{Authority: "de-247", Country: "DE", Grounds: []Ground{susDecl}, Rule: "de-urgent", CopyOf: l("de-police")},
				{Authority: "eu-247", Country: "EU", Grounds: []Ground{offDecl, susDecl}, Rule: "eu-urgent", CopyOf: l("at-police", "de-police")}}},
		{name: "urgent without Germany: only the EU desk",
			notice: rn("threat_to_life", true, nil, nil, l("FR")),
			want: []Recipient{rcp("FR", vicDecl),
				{Authority: "eu-247", Country: "EU", Grounds: []Ground{vicDecl}, Rule: "eu-urgent", CopyOf: l("fr-police")}}},
		{name: "urgent and replaced: the copy follows the replacement",
			notice: rn("child_sexual_abuse", true, nil, l("DE"), nil),
			want: []Recipient{
				{Authority: "de-csa", Country: "DE", Grounds: []Ground{susDecl}, Rule: "de-csa-unit", InsteadOf: "de-police"},
				{Authority: "de-247", Country: "DE", Grounds: []Ground{susDecl}, Rule: "de-urgent", CopyOf: l("de-csa")},
				{Authority: "eu-247", Country: "EU", Grounds: []Ground{susDecl}, Rule: "eu-urgent", CopyOf: l("de-csa")}}},
		{name: "Europol replaced for terrorism in the fallback",
			platform: Platform{Fallback: l("europol")},
			notice:   rn("terrorism", false, l("US"), nil, nil),
			want:     []Recipient{{Authority: "eu-ctc", Country: "EU", Grounds: []Ground{euFb}, Rule: "ectc", InsteadOf: "europol"}}},
		{name: "urgent fallback: the copy carries the fallback grounds",
			notice: rn("other", true, nil, nil, nil),
			want: []Recipient{rcp("IE", estConf),
				{Authority: "eu-247", Country: "EU", Grounds: []Ground{estConf}, Rule: "eu-urgent", CopyOf: l("ie-police")}}},
		{name: "unconditional copy of a last resort",
			routes:   []Route{{Name: "all", Authority: "desk", Country: "EU", CopyOf: CopyAny}},
			platform: Platform{Fallback: l("establishment")},
			notice:   rn("other", false, l("US"), nil, nil),
			want:     []Recipient{rcp("EU", euLast), {Authority: "desk", Country: "EU", Grounds: []Ground{euLast}, Rule: "all", CopyOf: l("europol")}}},
		{name: "first matching replacement wins",
			routes: []Route{
				{Name: "a", Authority: "de-a", Country: "DE", Categories: l("grooming"), InsteadOf: "de-police"},
				{Name: "b", Authority: "de-b", Country: "DE", InsteadOf: "de-police"},
			},
			notice: rn("other", false, nil, l("DE"), nil),
			want:   []Recipient{{Authority: "de-b", Country: "DE", Grounds: []Ground{susDecl}, Rule: "b", InsteadOf: "de-police"}}},
		{name: "two copy rules of one authority: one recipient named after the first",
			routes: []Route{
				{Name: "urgent-at", Authority: "desk", Country: "EU", Priority: notice.Urgent, CopyOf: "at-police"},
				{Name: "urgent-de", Authority: "desk", Country: "EU", Priority: notice.Urgent, CopyOf: "de-police"},
			},
			notice: rn("other", true, l("AT"), l("DE"), nil),
			want: []Recipient{rcp("AT", offDecl), rcp("DE", susDecl),
				{Authority: "desk", Country: "EU", Grounds: []Ground{offDecl, susDecl}, Rule: "urgent-at", CopyOf: l("at-police", "de-police")}}},
		{name: "no copy to an authority that receives the notice already",
			routes: []Route{
				{Name: "csa", Authority: "de-csa", Country: "DE", Categories: l("child_sexual_abuse"), InsteadOf: "de-police"},
				{Name: "csa-copy", Authority: "de-csa", Country: "DE", CopyOf: CopyAny},
			},
			notice: rn("child_sexual_abuse", false, nil, l("DE"), l("AT")),
			want: []Recipient{rcp("AT", vicDecl),
				{Authority: "de-csa", Country: "DE", Grounds: []Ground{susDecl}, Rule: "csa", InsteadOf: "de-police"}}},
		{name: "normal priority rule",
			routes: []Route{{Name: "n", Authority: "de-day", Country: "DE", Priority: notice.Normal, InsteadOf: "de-police"}},
			notice: rn("other", false, nil, l("DE"), nil),
			want:   []Recipient{{Authority: "de-day", Country: "DE", Grounds: []Ground{susDecl}, Rule: "n", InsteadOf: "de-police"}}},
		{name: "normal priority rule, urgent notice",
			routes: []Route{{Name: "n", Authority: "de-day", Country: "DE", Priority: notice.Normal, InsteadOf: "de-police"}},
			notice: rn("other", true, nil, l("DE"), nil),
			want:   []Recipient{de("de-police", susDecl)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			routes := tc.routes
			if routes == nil {
				routes = testRoutes
			}
			p := tc.platform
			if p.Establishment == "" && p.Fallback == nil {
				p = ie
			}
			r := Rules{MemberStates: scope(t, "EU27"), Authorities: authorities(), Routes: routes}
			got := Decide(r, p, tc.notice).Recipients
			if !reflect.DeepEqual(got, tc.want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(tc.want)
				t.Errorf("recipients\n got %s\nwant %s", gj, wj)
			}
		})
	}
}
