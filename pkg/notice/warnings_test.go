package notice

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/country"
)

// warnedFields returns the fields of warnings, in order.
func warnedFields(ws []Warning) []string {
	out := []string{}
	for _, w := range ws {
		if w.Message == "" {
			return []string{"(a warning without a message at " + w.Field + ")"}
		}
		out = append(out, w.Field)
	}
	return out
}

func TestWarnings(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	eea, _ := country.MemberStates("EEA")
	const contact = `{"email": "lea@example.net"}`
	at := func(cc string) string { return `[{"country": "` + cc + `"}]` }
	for _, tc := range []struct {
		name   string
		body   string
		states country.Set
		want   []string
	}{
		{"nothing to say", mkBody("contact", contact, "locations", at("AT")), nil, []string{}},
		{"bare minimum", mkBody(), nil, []string{"contact", "locations"}},
		{"empty contact", mkBody("contact", `{}`, "locations", at("AT")), nil, []string{"contact"}},
		{"contact of nulls and empty strings", mkBody("contact", `{"name": null, "email": ""}`, "locations", at("AT")), nil, []string{"contact"}},
		{"imminent threat without a reason", mkBody("imminent_threat", "true", "contact", contact, "locations", at("AT")), nil,
			[]string{"urgency_reason"}},
		{"imminent threat with a blank reason", mkBody("imminent_threat", "true", "urgency_reason", `""`, "contact", contact, "locations", at("AT")), nil,
			[]string{"urgency_reason"}},
		{"imminent threat with a reason", mkBody("imminent_threat", "true", "urgency_reason", `"tonight"`, "contact", contact, "locations", at("AT")), nil,
			[]string{}},
		{"IP address without port and time", mkBody("contact", contact,
			"suspects", `[{"ip_addresses": [{"ip": "192.0.2.1", "port": 1, "seen_at": "2026-11-20T10:00:00Z"}, {"ip": "192.0.2.2"}]}]`), nil,
			[]string{"suspects[0].ip_addresses[1].port", "suspects[0].ip_addresses[1].seen_at"}},
		{"occurred_at in the future", mkBody("contact", contact, "locations", at("AT"), "occurred_at", `"2026-11-21T13:10:00+01:00"`), nil,
			[]string{"occurred_at"}},
		{"occurred_at within the slack", mkBody("contact", contact, "locations", at("AT"), "occurred_at", `"2026-11-21T12:04:00Z"`), nil,
			[]string{}},
		{"seen_at in the future", mkBody("contact", contact,
			"victims", `[{"ip_addresses": [{"ip": "192.0.2.1", "port": 1, "seen_at": "2027-01-01T00:00:00Z"}]}]`), nil,
			[]string{"victims[0].ip_addresses[0].seen_at"}},
		{"no Member State", mkBody("contact", contact, "locations", at("US"), "victims", `[{"country": "CH"}]`), nil, []string{"locations"}},
		{"a territory counts", mkBody("contact", contact, "locations", at("GP")), nil, []string{}},
		{"Norway in the EEA", mkBody("contact", contact, "suspects", at("no")), eea, []string{}},
		{"Norway outside the EU", mkBody("contact", contact, "suspects", at("NO")), nil, []string{"locations"}},
		{"a phone number might", mkBody("contact", contact, "suspects", `[{"phone": "+4915112345678"}]`), nil, []string{}},
		{"a proxy cannot", mkBody("contact", contact,
			"suspects", `[{"ip_addresses": [{"ip": "192.0.2.1", "port": 1, "seen_at": "2026-11-20T10:00:00Z", "possible_proxy": true}]}]`), nil,
			[]string{"locations"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Check([]byte(tc.body), Options{Now: now, MemberStates: tc.states})
			if r.Errors != nil || r.Notice == nil {
				t.Fatalf("warnings refused the notice: %v", r.Errors)
			}
			if got := warnedFields(r.Warnings); !slices.Equal(got, tc.want) {
				t.Errorf("warnings at %q, want %q: %+v", got, tc.want, r.Warnings)
			}
			// Parse agrees on the notice.
			n, errs := Parse([]byte(tc.body))
			if errs != nil {
				t.Fatal(errs)
			}
			if a, b := mustJSON(n), mustJSON(r.Notice); a != b {
				t.Errorf("Parse and Check differ:\n%s\n%s", a, b)
			}
		})
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestWarningsWithErrors: a refused body still gets its warnings, so that a
// form can show both at once; a body that is not JSON gets none.
func TestWarningsWithErrors(t *testing.T) {
	r := Check([]byte(mkBody("category", `"fraud"`)), Options{})
	if r.Notice != nil || len(r.Errors) != 1 || !slices.Equal(warnedFields(r.Warnings), []string{"contact", "locations"}) {
		t.Errorf("got %+v", r)
	}
	if r := Check([]byte(`{`), Options{}); r.Warnings != nil || len(r.Errors) != 1 {
		t.Errorf("got %+v", r)
	}
}

func TestLinks(t *testing.T) {
	n, errs := Parse([]byte(mkBody("follow_up_of", `"EX-1"`, "supersedes", `"EX-2"`,
		"related_references", `["EX-3", "EX:4"]`, "prior_reports", `[{"recipient": "NCMEC", "id": "CT-123"}]`)))
	if errs != nil {
		t.Fatal(errs)
	}
	body, _ := Canonical(n)
	want := `{"reference":"R-1","category":"other","imminent_threat":false,"suspicion":"s","follow_up_of":"EX-1","supersedes":"EX-2",` +
		`"related_references":["EX-3","EX:4"],"prior_reports":[{"recipient":"NCMEC","id":"CT-123"}]}`
	if string(body) != want {
		t.Errorf("canonical form\n got %s\nwant %s", body, want)
	}
	for _, tc := range []struct {
		name, body string
		want       []wantErr
	}{
		{"follow-up of itself", mkBody("follow_up_of", `"R-1"`), []wantErr{{"follow_up_of", "must be the reference of an earlier notice"}}},
		{"superseding itself", mkBody("supersedes", `"R-1"`), []wantErr{{"supersedes", "must be the reference of an earlier notice"}}},
		{"bad reference", mkBody("follow_up_of", `"a b"`), []wantErr{{"follow_up_of", "may only contain"}}},
		{"reference too long", mkBody("supersedes", quoted(strings.Repeat("a", 129))), []wantErr{{"supersedes", "must be at most 128 characters"}}},
		{"related not an array", mkBody("related_references", `"EX-1"`), []wantErr{{"related_references", "must be an array of references"}}},
		{"related items", mkBody("related_references", `["EX-1", "a b", 7, null, ""]`), []wantErr{
			{"related_references[1]", "may only contain"}, {"related_references[2]", "must be a string"},
			{"related_references[3]", "must be a string"}, {"related_references[4]", "must not be empty"}}},
		{"21 related", mkBody("related_references", `[`+strings.Repeat(`"x",`, 20)+`"x"]`), []wantErr{{"related_references", "must have at most 20 items"}}},
		{"prior report incomplete", mkBody("prior_reports", `[{"recipient": "NCMEC"}, {"id": "1", "url": "x"}]`), []wantErr{
			{"prior_reports[1].url", "unknown field"}, {"prior_reports[0].id", "is required"}, {"prior_reports[1].recipient", "is required"}}},
		{"21 prior reports", mkBody("prior_reports", `[`+strings.Repeat(`{"recipient": "a", "id": "b"},`, 20)+`{"recipient": "a", "id": "b"}]`),
			[]wantErr{{"prior_reports", "must have at most 20 items"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := Parse([]byte(tc.body))
			if !errsMatch(errs, tc.want) {
				t.Errorf("Parse errors:\n got %s\nwant %s", showErrs(errs), showWant(tc.want))
			}
		})
	}
}
