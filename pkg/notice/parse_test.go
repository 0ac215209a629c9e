package notice

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// fullNotice is the contract's example, completed to be valid, with letter
// cases and address forms that Parse normalises.
const fullNotice = `{
  "reference": "EX-2026-000123",
  "category": "human_trafficking",
  "exploitation": "sexual",
  "imminent_threat": true,
  "urgency_reason": "The victim says she will be moved abroad tonight.",
  "suspicion": "Why the platform suspects an offence (1 to 10000 characters).",
  "occurred_at": "2026-11-20T14:03:00+01:00",
  "aware_at": "2026-11-21T08:15:30.250Z",
  "locations": [{"country": "at", "description": "meeting point named in chat"}, {"description": "a hotel near the station"}],
  "suspects":  [{"country": "De", "account_id": "u-991", "username": "x", "profile_url": "https://chat.example.net/u/991",
                 "ip_addresses": [
                   {"ip": "203.0.113.7", "port": 50312, "seen_at": "2026-11-20T13:58:11Z", "event": "login"},
                   {"ip": "::FFFF:198.51.100.23", "port": 0},
                   {"ip": "2001:0DB8:0000:0000:0000:0000:0000:0001", "event": "upload", "possible_proxy": true}
                 ],
                 "phone": "+4915112345678"}],
  "victims":   [{"country": "ro", "minor": true}, {"username": "anna", "minor": false}],
  "content":   [{"url": "https://chat.example.net/m/1", "type": "text", "published_at": "2026-11-20T13:59:00+01:00",
                 "sha256": "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"}],
  "contact":   {"name": "Trust & Safety duty desk", "email": "lea@example.net", "phone": "+353 (1) 234-5678"}
}`

func valPtr[T any](v T) *T { return &v }

var wantFull = &Notice{
	Reference:      "EX-2026-000123",
	Category:       "human_trafficking",
	Exploitation:   "sexual",
	ImminentThreat: true,
	UrgencyReason:  "The victim says she will be moved abroad tonight.",
	Suspicion:      "Why the platform suspects an offence (1 to 10000 characters).",
	OccurredAt:     "2026-11-20T14:03:00+01:00",
	AwareAt:        "2026-11-21T08:15:30.250Z",
	Locations: []Location{
		{Country: "AT", Description: "meeting point named in chat"},
		{Description: "a hotel near the station"},
	},
	Suspects: []Person{{
		Country: "DE", AccountID: "u-991", Username: "x", ProfileURL: "https://chat.example.net/u/991",
		IPAddresses: []IPAddress{
			{IP: "203.0.113.7", Port: valPtr(50312), SeenAt: "2026-11-20T13:58:11Z", Event: "login"},
			{IP: "198.51.100.23", Port: valPtr(0)},
			{IP: "2001:db8::1", Event: "upload", PossibleProxy: true},
		},
		Phone: "+4915112345678",
	}},
	Victims: []Person{
		{Country: "RO", Minor: valPtr(true)},
		{Username: "anna", Minor: valPtr(false)},
	},
	Content: []Content{{
		URL: "https://chat.example.net/m/1", Type: "text", PublishedAt: "2026-11-20T13:59:00+01:00",
		SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	}},
	Contact: &Contact{Name: "Trust & Safety duty desk", Email: "lea@example.net", Phone: "+353 (1) 234-5678"},
}

func TestParseFull(t *testing.T) {
	n, errs := Parse([]byte(fullNotice))
	if errs != nil {
		t.Fatalf("Parse: %v", errs)
	}
	if !reflect.DeepEqual(n, wantFull) {
		got, _ := json.MarshalIndent(n, "", "  ")
		want, _ := json.MarshalIndent(wantFull, "", "  ")
		t.Fatalf("Parse:\n got %s\nwant %s", got, want)
	}
	if n.Priority() != Urgent {
		t.Errorf("Priority = %s, want urgent", n.Priority())
	}
}

// omitField removes a base field in mkBody.
const omitField = "\x00omit"

// mkBody builds a body from a minimal valid notice, replacing or removing
// (omitField) its fields and appending others:
// mkBody("category", `"x"`, "suspects", `[...]`). Values are raw JSON.
func mkBody(kv ...string) string {
	keys := []string{"reference", "category", "imminent_threat", "suspicion"}
	vals := map[string]string{
		"reference": `"R-1"`, "category": `"other"`, "imminent_threat": `false`, "suspicion": `"s"`,
	}
	for i := 0; i < len(kv); i += 2 {
		if _, ok := vals[kv[i]]; !ok {
			keys = append(keys, kv[i])
		}
		vals[kv[i]] = kv[i+1]
	}
	var b strings.Builder
	b.WriteString("{")
	sep := ""
	for _, k := range keys {
		if vals[k] == omitField {
			continue
		}
		fmt.Fprintf(&b, "%s%q: %s", sep, k, vals[k])
		sep = ", "
	}
	b.WriteString("}")
	return b.String()
}

// quoted returns s as a JSON string.
func quoted(s string) string { b, _ := json.Marshal(s); return string(b) }

// wantErr is an expected error: the exact path and a part of the message.
type wantErr struct{ path, msg string }

func TestParseValid(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		check      func(*Notice) bool
	}{
		{"minimal", mkBody(), func(n *Notice) bool { return n.Reference == "R-1" && n.Priority() == Normal }},
		{"reference 128 characters", mkBody("reference", quoted(strings.Repeat("aZ0._:-x", 16))), nil},
		{"suspicion 10000 characters, 20000 bytes", mkBody("suspicion", quoted(strings.Repeat("é", 10000))), nil},
		{"suspicion with tabs and newlines", mkBody("suspicion", quoted("line 1\r\n\tline 2")), nil},
		{"urgency_reason 3000 characters", mkBody("urgency_reason", quoted(strings.Repeat("ü", 3000))), nil},
		{"optional fields null", mkBody("exploitation", "null", "urgency_reason", "null", "occurred_at", "null",
			"aware_at", "null", "locations", "null", "suspects", "null", "victims", "null", "content", "null", "contact", "null"),
			func(n *Notice) bool { return n.Contact == nil && n.Locations == nil }},
		{"optional strings empty", mkBody("urgency_reason", `""`, "occurred_at", `""`,
			"suspects", `[{"country": "", "username": "u", "profile_url": "", "phone": ""}]`),
			func(n *Notice) bool { return reflect.DeepEqual(n.Suspects[0], Person{Username: "u"}) }},
		{"empty arrays", mkBody("locations", "[]", "suspects", "[]", "victims", "[]", "content", "[]"),
			func(n *Notice) bool {
				return n.Locations == nil && n.Suspects == nil && n.Victims == nil && n.Content == nil
			}},
		{"time stamps keep their offsets", mkBody("occurred_at", `"2026-11-20T14:03:00.123456789-05:30"`, "aware_at", `"2026-02-28T23:59:59-00:00"`),
			func(n *Notice) bool {
				return n.OccurredAt == "2026-11-20T14:03:00.123456789-05:30" && n.AwareAt == "2026-02-28T23:59:59-00:00"
			}},
		{"100 locations", mkBody("locations", "["+strings.Repeat(`{"country":"fr"},`, 99)+`{"country":"FR"}]`),
			func(n *Notice) bool { return len(n.Locations) == 100 && n.Locations[0].Country == "FR" }},
		{"port -0 and 65535", mkBody("suspects", `[{"ip_addresses": [{"ip": "::1", "port": -0}, {"ip": "10.0.0.1", "port": 65535}]}]`),
			func(n *Notice) bool {
				ips := n.Suspects[0].IPAddresses
				return *ips[0].Port == 0 && *ips[1].Port == 65535
			}},
		{"possible_proxy true, false and null", mkBody("suspects", `[{"ip_addresses": [{"ip": "192.0.2.1", "possible_proxy": true},
			{"ip": "192.0.2.2", "possible_proxy": false}, {"ip": "192.0.2.3", "possible_proxy": null}]}]`),
			func(n *Notice) bool {
				ips := n.Suspects[0].IPAddresses
				return ips[0].PossibleProxy && !ips[1].PossibleProxy && !ips[2].PossibleProxy
			}},
		{"reserved country codes", mkBody("locations", `[{"country": "el"}, {"country": "xk"}]`),
			func(n *Notice) bool { return n.Locations[0].Country == "EL" && n.Locations[1].Country == "XK" }},
		{"empty person and contact", mkBody("victims", `[{}]`, "contact", `{}`),
			func(n *Notice) bool { return len(n.Victims) == 1 && n.Contact != nil }},
		{"quoted e-mail local part", mkBody("contact", `{"email": "\"duty desk\"@example.net"}`), nil},
		{"leading and trailing whitespace", " \r\n\t" + mkBody() + "\n\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, errs := Parse([]byte(tc.body))
			if errs != nil || n == nil {
				t.Fatalf("Parse(%s): %v", tc.body, errs)
			}
			if tc.check != nil && !tc.check(n) {
				got, _ := json.Marshal(n)
				t.Errorf("Parse(%s) = %s", tc.body, got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const (
		mustString = "must be a string"
		mustBool   = "must be a boolean"
		mustObject = "must be an object"
		mustArray  = "must be an array of objects"
	)
	long := func(n int) string { return quoted(strings.Repeat("a", n)) }
	person := func(fields string) string { return `[{"country": "DE"}, {` + fields + `}]` }
	ip := func(fields string) string { return `[{"ip_addresses": [{"ip": "192.0.2.1"}, {` + fields + `}]}]` }
	for _, tc := range []struct {
		name, body string
		want       []wantErr
	}{
		// The body itself.
		{"empty body", "", []wantErr{{"", "is empty"}}},
		{"whitespace body", " \n ", []wantErr{{"", "is empty"}}},
		{"not an object", `[]`, []wantErr{{"", "must be a JSON object"}}},
		{"string body", `"notice"`, []wantErr{{"", "must be a JSON object"}}},
		{"null body", `null`, []wantErr{{"", "must be a JSON object"}}},
		{"two objects", `{}{}`, []wantErr{{"", "unexpected data after the top-level value (at byte 2)"}}},
		{"trailing garbage", mkBody() + ` x`, []wantErr{{"", "unexpected data after the top-level value"}}},
		{"truncated", `{"reference": "R-1"`, []wantErr{{"", "unexpected end of input (at byte 19)"}}},
		{"trailing comma", `{"reference": "R-1",}`, []wantErr{{"", "is not valid JSON: invalid character '}' looking for beginning of object key string (at byte 20)"}}},
		{"single quotes", `{'reference': 1}`, []wantErr{{"", "is not valid JSON"}}},
		{"bad escape", `{"reference": "\x"}`, []wantErr{{"", "is not valid JSON"}}},
		{"not UTF-8", "{\"suspicion\": \"caf\xe9\"}", []wantErr{{"", "is not valid UTF-8 (at byte 18)"}}},
		{"UTF-8 BOM", "\ufeff" + mkBody(), []wantErr{{"", "is not valid JSON"}}},
		{"too deep", `{"locations": ` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
			[]wantErr{{"", "is nested more than 32 levels deep"}}},
		{"too large", `{"suspicion": "` + strings.Repeat("a", MaxBodyBytes) + `"}`, []wantErr{{"", "is larger than 1048576 bytes"}}},

		// Unknown and duplicate fields, in document order, before the field rules.
		{"unknown top-level field", mkBody("Reference", `"R-2"`, "victim", `[{"country": "RO"}]`),
			[]wantErr{{"Reference", "unknown field"}, {"victim", "unknown field"}}},
		{"misspelt required field", mkBody("reference", omitField, "referenc", `"R-1"`),
			[]wantErr{{"referenc", "unknown field"}, {"reference", "is required"}}},
		{"unknown key needing quotes", mkBody("a b", `1`, "", `2`, "x.y", `3`),
			[]wantErr{{`["a b"]`, "unknown field"}, {`[""]`, "unknown field"}, {`["x.y"]`, "unknown field"}}},
		{"unknown long key is cut short", mkBody(strings.Repeat("k", 100), `1`),
			[]wantErr{{`["` + strings.Repeat("k", 64) + `..."]`, "unknown field"}}},
		{"unknown nested fields", mkBody("locations", `[{"country": "AT", "city": "Wien"}]`,
			"suspects", `[{"ip_addresses": [{"ip": "192.0.2.1", "port": 1, "proto": "tcp"}], "email": "a@b.c"}]`,
			"content", `[{"url": "https://e.x/1", "hash": "00"}]`, "contact", `{"fax": "1234"}`),
			[]wantErr{{"locations[0].city", "unknown field"}, {"suspects[0].email", "unknown field"},
				{"suspects[0].ip_addresses[0].proto", "unknown field"}, {"content[0].hash", "unknown field"},
				{"contact.fax", "unknown field"}}},
		{"minor on a suspect", mkBody("suspects", `[{"country": "DE", "minor": true}]`), []wantErr{{"suspects[0].minor", "unknown field"}}},
		{"duplicate top-level field", `{"reference": "R-1", "category": "other", "imminent_threat": false, "suspicion": "s", "reference": "R-2"}`,
			[]wantErr{{"reference", "duplicate field"}}},
		{"duplicate nested field", mkBody("victims", `[{"country": "RO", "minor": true, "country": "BG"}]`),
			[]wantErr{{"victims[0].country", "duplicate field"}}},
		{"duplicate field with null first", mkBody("contact", `{"email": null, "email": "a@b.c"}`),
			[]wantErr{{"contact.email", "duplicate field"}}},
		{"field names are case-sensitive", mkBody("Contact", `{}`), []wantErr{{"Contact", "unknown field"}}},

		// reference
		{"reference missing", mkBody("reference", omitField), []wantErr{{"reference", "is required"}}},
		{"reference null", mkBody("reference", "null"), []wantErr{{"reference", "is required"}}},
		{"reference empty", mkBody("reference", `""`), []wantErr{{"reference", "must not be empty"}}},
		{"reference number", mkBody("reference", `123`), []wantErr{{"reference", mustString}}},
		{"reference too long", mkBody("reference", long(129)), []wantErr{{"reference", "must be at most 128 characters"}}},
		{"reference bad character", mkBody("reference", `"EX 2026/1"`), []wantErr{{"reference", "may only contain letters A-Z and a-z, digits and . _ : -"}}},
		{"reference non-ASCII", mkBody("reference", `"EX-ä"`), []wantErr{{"reference", "may only contain"}}},

		// category and exploitation
		{"category missing", mkBody("category", omitField), []wantErr{{"category", "is required"}}},
		{"category unknown", mkBody("category", `"fraud"`),
			[]wantErr{{"category", "must be one of human_trafficking, child_sexual_abuse, grooming, terrorism, threat_to_life, self_harm, other"}}},
		{"category wrong case", mkBody("category", `"Other"`), []wantErr{{"category", "must be one of"}}},
		{"category array", mkBody("category", `["other"]`), []wantErr{{"category", mustString}}},
		{"exploitation without trafficking", mkBody("exploitation", `"sexual"`), []wantErr{{"exploitation", "is only allowed when category is human_trafficking"}}},
		{"exploitation unknown", mkBody("category", `"human_trafficking"`, "exploitation", `"slavery"`),
			[]wantErr{{"exploitation", "must be one of sexual, labour, criminal_activities, begging, organ_removal, forced_marriage, illegal_adoption, other"}}},
		{"exploitation with a bad category", mkBody("category", `"trafficking"`, "exploitation", `"labour"`), []wantErr{{"category", "must be one of"}}},
		{"exploitation number", mkBody("category", `"human_trafficking"`, "exploitation", `1`), []wantErr{{"exploitation", mustString}}},

		// imminent_threat
		{"imminent_threat missing", mkBody("imminent_threat", omitField), []wantErr{{"imminent_threat", "is required"}}},
		{"imminent_threat null", mkBody("imminent_threat", `null`), []wantErr{{"imminent_threat", "is required"}}},
		{"imminent_threat string", mkBody("imminent_threat", `"true"`), []wantErr{{"imminent_threat", mustBool}}},
		{"imminent_threat number", mkBody("imminent_threat", `1`), []wantErr{{"imminent_threat", mustBool}}},

		// suspicion and urgency_reason
		{"suspicion missing", mkBody("suspicion", omitField), []wantErr{{"suspicion", "is required"}}},
		{"suspicion empty", mkBody("suspicion", `""`), []wantErr{{"suspicion", "must not be empty"}}},
		{"suspicion blank", mkBody("suspicion", quoted(" \n\t\u00a0\u3000")), []wantErr{{"suspicion", "must contain a non-whitespace character"}}},
		{"suspicion too long", mkBody("suspicion", quoted(strings.Repeat("é", 10001))), []wantErr{{"suspicion", "must be at most 10000 characters"}}},
		{"suspicion NUL", mkBody("suspicion", `"a\u0000b"`), []wantErr{{"suspicion", "contains a control character"}}},
		{"suspicion escape", mkBody("suspicion", `"\u001b[31mred"`), []wantErr{{"suspicion", "contains a control character"}}},
		{"suspicion lone surrogate", mkBody("suspicion", `"threat \ud800"`), []wantErr{{"suspicion", `holds \ud800, half of a UTF-16 surrogate pair`}}},
		{"victim name lone surrogate", mkBody("victims", person(`"name": "\uDE00"`)), []wantErr{{"victims[1].name", `holds \uDE00, half`}}},
		{"suspicion object", mkBody("suspicion", `{}`), []wantErr{{"suspicion", mustString}}},
		{"urgency_reason too long", mkBody("urgency_reason", long(3001)), []wantErr{{"urgency_reason", "must be at most 3000 characters"}}},
		{"urgency_reason bool", mkBody("urgency_reason", `true`), []wantErr{{"urgency_reason", mustString}}},
		{"urgency_reason control", mkBody("urgency_reason", `"\u0007"`), []wantErr{{"urgency_reason", "contains a control character"}}},

		// time stamps
		{"occurred_at without offset", mkBody("occurred_at", `"2026-11-20T14:03:00"`), []wantErr{{"occurred_at", "must be an RFC 3339 time stamp with an offset, e.g. 2026-11-20T14:03:00+01:00"}}},
		{"occurred_at date only", mkBody("occurred_at", `"2026-11-20"`), []wantErr{{"occurred_at", "must be an RFC 3339"}}},
		{"occurred_at space", mkBody("occurred_at", `"2026-11-20 14:03:00Z"`), []wantErr{{"occurred_at", "must be an RFC 3339"}}},
		{"occurred_at lower case", mkBody("occurred_at", `"2026-11-20t14:03:00z"`), []wantErr{{"occurred_at", "must be an RFC 3339"}}},
		{"occurred_at comma fraction", mkBody("occurred_at", `"2026-11-20T14:03:00,5Z"`), []wantErr{{"occurred_at", "must be an RFC 3339"}}},
		{"occurred_at 10 fraction digits", mkBody("occurred_at", `"2026-11-20T14:03:00.1234567890Z"`), []wantErr{{"occurred_at", "must be an RFC 3339"}}},
		{"occurred_at month 13", mkBody("occurred_at", `"2026-13-20T14:03:00Z"`), []wantErr{{"occurred_at", "must be an RFC 3339"}}},
		{"occurred_at 30 February", mkBody("occurred_at", `"2026-02-30T14:03:00Z"`), []wantErr{{"occurred_at", "must be an RFC 3339"}}},
		{"occurred_at offset hour 24", mkBody("occurred_at", `"2026-11-20T14:03:00+24:00"`), []wantErr{{"occurred_at", "must be an RFC 3339"}}},
		{"occurred_at short offset", mkBody("occurred_at", `"2026-11-20T14:03:00+0100"`), []wantErr{{"occurred_at", "must be an RFC 3339"}}},
		{"occurred_at Unix time", mkBody("occurred_at", `1763643780`), []wantErr{{"occurred_at", mustString}}},
		{"aware_at bad", mkBody("aware_at", `"yesterday"`), []wantErr{{"aware_at", "must be an RFC 3339"}}},

		// locations
		{"locations object", mkBody("locations", `{"country": "AT"}`), []wantErr{{"locations", mustArray}}},
		{"locations string", mkBody("locations", `"AT"`), []wantErr{{"locations", mustArray}}},
		{"location not an object", mkBody("locations", `[{"country": "AT"}, "AT", null]`),
			[]wantErr{{"locations[1]", mustObject}, {"locations[2]", mustObject}}},
		{"location empty", mkBody("locations", `[{}]`), []wantErr{{"locations[0]", "must have a country or a description"}}},
		{"location empty strings", mkBody("locations", `[{"country": "", "description": null}]`), []wantErr{{"locations[0]", "must have a country or a description"}}},
		{"location unknown country", mkBody("locations", `[{"country": "xx"}]`),
			[]wantErr{{"locations[0].country", `unknown country code "xx"; want ISO 3166-1 alpha-2`}}},
		{"location country name", mkBody("locations", `[{"country": "Austria"}]`), []wantErr{{"locations[0].country", `unknown country code "Austria"`}}},
		{"location country number", mkBody("locations", `[{"country": 40}]`), []wantErr{{"locations[0].country", mustString}}},
		{"location description too long", mkBody("locations", `[{"description": `+quoted(strings.Repeat("ß", 1001))+`}]`),
			[]wantErr{{"locations[0].description", "must be at most 1000 characters"}}},
		{"too many locations", mkBody("locations", "["+strings.Repeat(`{"country":"FR"},`, 100)+`{"country":"FR"}]`),
			[]wantErr{{"locations", "must have at most 100 items"}}},

		// suspects and victims
		{"suspects object", mkBody("suspects", `{"country": "DE"}`), []wantErr{{"suspects", mustArray}}},
		{"suspect not an object", mkBody("suspects", `[["DE"]]`), []wantErr{{"suspects[0]", mustObject}}},
		{"too many victims", mkBody("victims", "["+strings.Repeat(`{"minor":true},`, 100)+`{}]`), []wantErr{{"victims", "must have at most 100 items"}}},
		{"victim country", mkBody("victims", person(`"country": "QQ"`)), []wantErr{{"victims[1].country", `unknown country code "QQ"`}}},
		{"suspect country three letters", mkBody("suspects", person(`"country": "DEU"`)), []wantErr{{"suspects[1].country", `unknown country code "DEU"`}}},
		{"suspect account_id too long", mkBody("suspects", person(`"account_id": `+long(257))), []wantErr{{"suspects[1].account_id", "must be at most 256 characters"}}},
		{"suspect account_id number", mkBody("suspects", person(`"account_id": 991`)), []wantErr{{"suspects[1].account_id", mustString}}},
		{"victim username too long", mkBody("victims", person(`"username": `+long(257))), []wantErr{{"victims[1].username", "must be at most 256 characters"}}},
		{"suspect username control", mkBody("suspects", person(`"username": "a\u0000"`)), []wantErr{{"suspects[1].username", "contains a control character"}}},
		{"profile_url ftp", mkBody("suspects", person(`"profile_url": "ftp://example.net/u"`)), []wantErr{{"suspects[1].profile_url", "must be an absolute http or https URL"}}},
		{"profile_url relative", mkBody("suspects", person(`"profile_url": "/u/991"`)), []wantErr{{"suspects[1].profile_url", "must be an absolute http or https URL"}}},
		{"profile_url no host", mkBody("suspects", person(`"profile_url": "https://"`)), []wantErr{{"suspects[1].profile_url", "must be an absolute http or https URL"}}},
		{"profile_url opaque", mkBody("suspects", person(`"profile_url": "https:example.net"`)), []wantErr{{"suspects[1].profile_url", "must be an absolute http or https URL"}}},
		{"profile_url space", mkBody("victims", person(`"profile_url": "https://example.net/a b"`)), []wantErr{{"victims[1].profile_url", "must be an absolute http or https URL"}}},
		{"profile_url too long", mkBody("suspects", person(`"profile_url": "https://example.net/`+strings.Repeat("a", 2030)+`"`)),
			[]wantErr{{"suspects[1].profile_url", "must be at most 2048 characters"}}},
		{"phone too short", mkBody("suspects", person(`"phone": "12"`)), []wantErr{{"suspects[1].phone", "must be 3 to 32 characters of digits, spaces and + - ( ) . /"}}},
		{"phone too long", mkBody("suspects", person(`"phone": "`+strings.Repeat("1", 33)+`"`)), []wantErr{{"suspects[1].phone", "must be 3 to 32 characters"}}},
		{"phone letters", mkBody("suspects", person(`"phone": "+49 151 CALLME"`)), []wantErr{{"suspects[1].phone", "must be 3 to 32 characters"}}},
		{"phone Arabic-Indic digits", mkBody("suspects", person(`"phone": "١٢٣٤"`)), []wantErr{{"suspects[1].phone", "must be 3 to 32 characters"}}},
		{"phone too few digits", mkBody("victims", person(`"phone": "+(1) -2"`)), []wantErr{{"victims[1].phone", "must contain at least 3 digits"}}},
		{"phone number", mkBody("suspects", person(`"phone": 4915112345678`)), []wantErr{{"suspects[1].phone", mustString}}},
		{"minor string", mkBody("victims", person(`"minor": "yes"`)), []wantErr{{"victims[1].minor", mustBool}}},
		{"ip_addresses object", mkBody("suspects", `[{"ip_addresses": {"ip": "192.0.2.1"}}]`), []wantErr{{"suspects[0].ip_addresses", mustArray}}},
		{"ip_addresses strings", mkBody("suspects", `[{"ip_addresses": ["192.0.2.1"]}]`), []wantErr{{"suspects[0].ip_addresses[0]", mustObject}}},
		{"too many ip_addresses", mkBody("suspects", `[{"ip_addresses": [`+strings.Repeat(`{"ip":"::1"},`, 100)+`{"ip":"::2"}]}]`),
			[]wantErr{{"suspects[0].ip_addresses", "must have at most 100 items"}}},
		{"ip missing", mkBody("suspects", ip(`"port": 1`)), []wantErr{{"suspects[0].ip_addresses[1].ip", "is required"}}},
		{"ip empty", mkBody("victims", ip(`"ip": ""`)), []wantErr{{"victims[0].ip_addresses[1].ip", "must not be empty"}}},
		{"ip bad", mkBody("suspects", ip(`"ip": "203.0.113.256"`)), []wantErr{{"suspects[0].ip_addresses[1].ip", "must be an IPv4 or IPv6 address"}}},
		{"ip leading zero", mkBody("suspects", ip(`"ip": "203.0.113.07"`)), []wantErr{{"suspects[0].ip_addresses[1].ip", "must be an IPv4 or IPv6 address"}}},
		{"ip with port", mkBody("suspects", ip(`"ip": "203.0.113.7:443"`)), []wantErr{{"suspects[0].ip_addresses[1].ip", "must be an IPv4 or IPv6 address"}}},
		{"ip host name", mkBody("suspects", ip(`"ip": "example.net"`)), []wantErr{{"suspects[0].ip_addresses[1].ip", "must be an IPv4 or IPv6 address"}}},
		{"ip zone", mkBody("suspects", ip(`"ip": "fe80::1%eth0"`)), []wantErr{{"suspects[0].ip_addresses[1].ip", "must be an IP address without a zone"}}},
		{"ip number", mkBody("suspects", ip(`"ip": 3405803783`)), []wantErr{{"suspects[0].ip_addresses[1].ip", mustString}}},
		{"port fraction", mkBody("suspects", ip(`"ip": "::1", "port": 1.5`)), []wantErr{{"suspects[0].ip_addresses[1].port", "must be an integer from 0 to 65535"}}},
		{"port exponent", mkBody("suspects", ip(`"ip": "::1", "port": 1e3`)), []wantErr{{"suspects[0].ip_addresses[1].port", "must be an integer from 0 to 65535"}}},
		{"port 443.0", mkBody("suspects", ip(`"ip": "::1", "port": 443.0`)), []wantErr{{"suspects[0].ip_addresses[1].port", "must be an integer from 0 to 65535"}}},
		{"port too big", mkBody("suspects", ip(`"ip": "::1", "port": 65536`)), []wantErr{{"suspects[0].ip_addresses[1].port", "must be an integer from 0 to 65535"}}},
		{"port huge", mkBody("suspects", ip(`"ip": "::1", "port": 123456789012345678901234567890`)), []wantErr{{"suspects[0].ip_addresses[1].port", "must be an integer"}}},
		{"port negative", mkBody("suspects", ip(`"ip": "::1", "port": -1`)), []wantErr{{"suspects[0].ip_addresses[1].port", "must be an integer from 0 to 65535"}}},
		{"port string", mkBody("suspects", ip(`"ip": "::1", "port": "443"`)), []wantErr{{"suspects[0].ip_addresses[1].port", "must be an integer from 0 to 65535"}}},
		{"seen_at bad", mkBody("suspects", ip(`"ip": "::1", "seen_at": "2026-11-20T13:58:11"`)), []wantErr{{"suspects[0].ip_addresses[1].seen_at", "must be an RFC 3339"}}},
		{"possible_proxy string", mkBody("suspects", ip(`"ip": "::1", "possible_proxy": "yes"`)),
			[]wantErr{{"suspects[0].ip_addresses[1].possible_proxy", mustBool}}},
		{"possible_proxy number", mkBody("victims", ip(`"ip": "::1", "possible_proxy": 1`)),
			[]wantErr{{"victims[0].ip_addresses[1].possible_proxy", mustBool}}},
		{"possible_proxy misspelt", mkBody("suspects", ip(`"ip": "::1", "proxy": true`)),
			[]wantErr{{"suspects[0].ip_addresses[1].proxy", "unknown field"}}},
		{"event unknown", mkBody("victims", ip(`"ip": "::1", "event": "logout"`)),
			[]wantErr{{"victims[0].ip_addresses[1].event", "must be one of login, registration, upload, message, purchase, other"}}},

		// content
		{"content object", mkBody("content", `{"url": "https://e.x/"}`), []wantErr{{"content", mustArray}}},
		{"content not an object", mkBody("content", `[true]`), []wantErr{{"content[0]", mustObject}}},
		{"content empty", mkBody("content", `[{"type": "text"}, {}]`), []wantErr{{"content[1]", "must have at least one of url, type, published_at, sha256"}}},
		{"content url", mkBody("content", `[{"url": "javascript:alert(1)"}]`), []wantErr{{"content[0].url", "must be an absolute http or https URL"}}},
		{"content url too long", mkBody("content", `[{"url": "https://e.x/`+strings.Repeat("a", 2040)+`"}]`), []wantErr{{"content[0].url", "must be at most 2048 characters"}}},
		{"content type upper case", mkBody("content", `[{"type": "Text"}]`), []wantErr{{"content[0].type", "must be 1 to 32 characters of a-z, 0-9, _ and -"}}},
		{"content type too long", mkBody("content", `[{"type": "`+strings.Repeat("a", 33)+`"}]`), []wantErr{{"content[0].type", "must be 1 to 32 characters"}}},
		{"content type slash", mkBody("content", `[{"type": "image/png"}]`), []wantErr{{"content[0].type", "must be 1 to 32 characters"}}},
		{"content published_at", mkBody("content", `[{"type": "text", "published_at": "20 Nov 2026"}]`), []wantErr{{"content[0].published_at", "must be an RFC 3339"}}},
		{"content sha256 short", mkBody("content", `[{"sha256": "`+strings.Repeat("a", 63)+`"}]`), []wantErr{{"content[0].sha256", "must be a SHA-256 digest: 64 hexadecimal characters"}}},
		{"content sha256 not hex", mkBody("content", `[{"sha256": "`+strings.Repeat("g", 64)+`"}]`), []wantErr{{"content[0].sha256", "must be a SHA-256 digest"}}},
		{"content sha256 prefixed", mkBody("content", `[{"sha256": "sha256:`+strings.Repeat("a", 64)+`"}]`), []wantErr{{"content[0].sha256", "must be a SHA-256 digest"}}},

		// contact
		{"contact string", mkBody("contact", `"lea@example.net"`), []wantErr{{"contact", mustObject}}},
		{"contact array", mkBody("contact", `[{"email": "lea@example.net"}]`), []wantErr{{"contact", mustObject}}},
		{"contact name too long", mkBody("contact", `{"name": `+long(257)+`}`), []wantErr{{"contact.name", "must be at most 256 characters"}}},
		{"contact email invalid", mkBody("contact", `{"email": "lea at example.net"}`), []wantErr{{"contact.email", "must be an e-mail address, e.g. lea@example.net"}}},
		{"contact email with name", mkBody("contact", `{"email": "Lea <lea@example.net>"}`), []wantErr{{"contact.email", "must be a bare e-mail address"}}},
		{"contact email in brackets", mkBody("contact", `{"email": "<lea@example.net>"}`), []wantErr{{"contact.email", "must be a bare e-mail address"}}},
		{"contact email with comment", mkBody("contact", `{"email": "lea@example.net (desk)"}`), []wantErr{{"contact.email", "must be a bare e-mail address"}}},
		{"contact email too long", mkBody("contact", `{"email": "`+strings.Repeat("a", 64)+"@"+strings.Repeat("b.", 130)+`net"}`),
			[]wantErr{{"contact.email", "must be at most 320 characters"}}},
		{"contact phone", mkBody("contact", `{"phone": "n/a"}`), []wantErr{{"contact.phone", "must be 3 to 32 characters"}}},

		// Many problems at once: every one is listed, unknown fields first, then in field order.
		{"many problems", `{"category": "human_trafficking", "exploitation": "slavery", "imminent_threat": "no",
			"suspicion": "", "occurred_at": "2026-11-20", "locations": [{"country": "Atlantis"}, {}], "extra": 1,
			"suspects": [{"ip_addresses": [{"ip": "1.2.3", "port": 1e3, "event": "x"}], "minor": false}],
			"victims": [{"country": "ro", "minor": "yes", "phone": "1"}],
			"content": [{"sha256": "xyz", "url": "example.net"}],
			"contact": {"email": "Lea <lea@example.net>", "name": 7}}`,
			[]wantErr{
				{"extra", "unknown field"},
				{"reference", "is required"},
				{"exploitation", "must be one of"},
				{"imminent_threat", mustBool},
				{"suspicion", "must not be empty"},
				{"occurred_at", "must be an RFC 3339"},
				{"locations[0].country", `unknown country code "Atlantis"`},
				{"locations[1]", "must have a country or a description"},
				{"suspects[0].minor", "unknown field"},
				{"suspects[0].ip_addresses[0].ip", "must be an IPv4 or IPv6 address"},
				{"suspects[0].ip_addresses[0].port", "must be an integer"},
				{"suspects[0].ip_addresses[0].event", "must be one of"},
				{"victims[0].phone", "must be 3 to 32 characters"},
				{"victims[0].minor", mustBool},
				{"content[0].url", "must be an absolute http or https URL"},
				{"content[0].sha256", "must be a SHA-256 digest"},
				{"contact.name", mustString},
				{"contact.email", "must be a bare e-mail address"},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, errs := Parse([]byte(tc.body))
			if n != nil {
				t.Errorf("Parse returned a notice with errors %v", errs)
			}
			if !errsMatch(errs, tc.want) {
				t.Errorf("Parse errors:\n got %s\nwant %s", showErrs(errs), showWant(tc.want))
			}
		})
	}
}

func errsMatch(got []FieldError, want []wantErr) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].Field != want[i].path || !strings.Contains(got[i].Message, want[i].msg) {
			return false
		}
	}
	return true
}

func showErrs(errs []FieldError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n\t%q: %s", e.Field, e.Message)
	}
	return b.String()
}

func showWant(want []wantErr) string {
	var b strings.Builder
	for _, e := range want {
		fmt.Fprintf(&b, "\n\t%q: ...%s...", e.path, e.msg)
	}
	return b.String()
}

func TestParseErrorCap(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"reference": "R-1", "category": "other", "imminent_threat": false, "suspicion": "s"`)
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, `, "x%d": 0`, i)
	}
	b.WriteString("}")
	n, errs := Parse([]byte(b.String()))
	if n != nil || len(errs) != maxErrors+1 {
		t.Fatalf("got %d errors, want %d", len(errs), maxErrors+1)
	}
	if errs[0] != (FieldError{Field: "x0", Message: "unknown field", Code: CodeUnknownField}) || errs[maxErrors-1].Field != "x999" {
		t.Errorf("first and last errors: %v, %v", errs[0], errs[maxErrors-1])
	}
	if last := errs[maxErrors]; last != (FieldError{Field: "", Message: "too many problems; only the first 1000 are listed", Code: CodeBody}) {
		t.Errorf("last error = %v", last)
	}
}

func TestCanonical(t *testing.T) {
	n, errs := Parse([]byte(fullNotice))
	if errs != nil {
		t.Fatal(errs)
	}
	body, sum := Canonical(n)
	if bytes.HasSuffix(body, []byte("\n")) {
		t.Error("canonical body ends in a newline")
	}
	if !bytes.Contains(body, []byte(`"Trust & Safety duty desk"`)) {
		t.Errorf("canonical body escapes HTML: %s", body)
	}
	if !bytes.HasPrefix(body, []byte(`{"reference":"EX-2026-000123","category":"human_trafficking","exploitation":"sexual","imminent_threat":true,`)) {
		t.Errorf("canonical body not in struct order: %s", body)
	}
	h := sha256.Sum256(body)
	if sum != hex.EncodeToString(h[:]) {
		t.Errorf("sha256 = %s, want %s", sum, hex.EncodeToString(h[:]))
	}

	// The same notice, keys reordered, whitespace removed or added, country
	// codes, digest and IPv6 address in another letter case: the same form.
	variant := `{"contact":{"phone":"+353 (1) 234-5678","email":"lea@example.net","name":"Trust & Safety duty desk"},
	"content":[{"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","published_at":"2026-11-20T13:59:00+01:00","type":"text","url":"https://chat.example.net/m/1"}],
	"victims":[{"minor":true,"country":"RO"},{"minor":false,"username":"anna"}],
	"suspects":[{"phone":"+4915112345678","ip_addresses":[{"event":"login","seen_at":"2026-11-20T13:58:11Z","port":50312,"ip":"203.0.113.7"},
	  {"port":0,"ip":"198.51.100.23","possible_proxy":false},{"possible_proxy":true,"event":"upload","ip":"2001:db8::1"}],
	  "profile_url":"https://chat.example.net/u/991","username":"x","account_id":"u-991","country":"dE"}],
	"locations":[{"description":"meeting point named in chat","country":"At"},{"description":"a hotel near the station","country":null}],
	"aware_at":"2026-11-21T08:15:30.250Z","occurred_at":"2026-11-20T14:03:00+01:00",
	"suspicion":"Why the platform suspects an offence (1 to 10000 characters).",
	"urgency_reason":"The victim says she will be moved abroad tonight.","imminent_threat":true,
	"exploitation":"sexual","category":"human_trafficking","reference":"EX-2026-000123"}`
	n2, errs := Parse([]byte(variant))
	if errs != nil {
		t.Fatal(errs)
	}
	body2, sum2 := Canonical(n2)
	if !bytes.Equal(body, body2) || sum != sum2 {
		t.Errorf("canonical forms differ:\n%s\n%s", body, body2)
	}

	// The canonical form is itself a valid body with the same canonical form.
	n3, errs := Parse(body)
	if errs != nil {
		t.Fatal(errs)
	}
	if body3, _ := Canonical(n3); !bytes.Equal(body, body3) {
		t.Errorf("canonical form is not a fixed point:\n%s\n%s", body, body3)
	}
	// A different notice has a different hash.
	n3.Reference = "EX-2026-000124"
	if _, sum4 := Canonical(n3); sum4 == sum {
		t.Error("a different reference has the same hash")
	}
}

func TestCanonicalMinimal(t *testing.T) {
	n, errs := Parse([]byte(mkBody("victims", `[{"minor": false}]`, "suspects", `[{"ip_addresses": [{"ip": "::ffff:10.0.0.1", "port": 0}]}]`,
		"suspicion", `"<script>\u2028</script>"`)))
	if errs != nil {
		t.Fatal(errs)
	}
	body, _ := Canonical(n)
	want := `{"reference":"R-1","category":"other","imminent_threat":false,"suspicion":"<script>\u2028</script>",` +
		`"suspects":[{"ip_addresses":[{"ip":"10.0.0.1","port":0}]}],"victims":[{"minor":false}]}`
	if string(body) != want {
		t.Errorf("Canonical:\n got %s\nwant %s", body, want)
	}
}

// fuzzSeeds are bodies for FuzzParse, valid and not.
var fuzzSeeds = []string{
	fullNotice,
	mkBody(),
	mkBody("victims", `[{}]`, "contact", `{}`),
	mkBody("suspects", `[{"ip_addresses": [{"ip": "::ffff:1.2.3.4", "port": -0, "event": "other"}]}]`),
	mkBody("suspects", `[{"ip_addresses": [{"ip": "100.64.0.1", "possible_proxy": true}, {"ip": "2a00::1", "possible_proxy": false}]}]`),
	mkBody("victims", `[{"ip_addresses": [{"ip": "2001:db8::7", "possible_proxy": "true"}, {"ip": "::", "possible_proxy": null}]}]`),
	mkBody("suspicion", `"\ud800 lone surrogate \u2028 \u0000"`),
	mkBody("occurred_at", `"2026-11-20T14:03:00.5-00:00"`, "aware_at", `"2026-11-20T14:03:00,5Z"`),
	mkBody("locations", `[{"country": "el"}, {"country": "", "description": ""}]`),
	mkBody("content", `[{"sha256": "ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789"}]`),
	mkBody("category", `"human_trafficking"`, "exploitation", `"labour"`, "contact", `{"email": "\"a b\"@x.y"}`),
	`{"reference":"a","reference":"b","x":{"y":[1,2,{"z":null}]}}`,
	`{}{}`,
	`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	"{\"suspicion\": \"\xff\"}",
	``,
	`null`,
	`{"reference": "R-1", "category": "other", "imminent_threat": false, "suspicion": "s", "suspects": [{"ip_addresses": [{"ip": "fe80::1%eth0", "port": 1e3}]}]}`,
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkParse)
}

// checkParse checks the properties of Parse on any body: it does not panic;
// it returns a notice or errors, never both, never neither; and a notice's
// canonical form parses to the same notice and the same canonical form.
func checkParse(t *testing.T, body []byte) {
	n, errs := Parse(body)
	if n == nil {
		if len(errs) == 0 {
			t.Fatal("no notice and no errors")
		}
		if len(errs) > maxErrors+1 {
			t.Fatalf("%d errors", len(errs))
		}
		for _, e := range errs {
			if e.Message == "" {
				t.Fatalf("error without a message at %q", e.Field)
			}
		}
		return
	}
	if len(errs) != 0 {
		t.Fatalf("a notice and errors %v", errs)
	}
	canon, sum := Canonical(n)
	n2, errs := Parse(canon)
	if errs != nil {
		t.Fatalf("canonical form %s does not parse: %v", canon, errs)
	}
	canon2, sum2 := Canonical(n2)
	if !bytes.Equal(canon, canon2) || sum != sum2 {
		t.Fatalf("canonical form is not a fixed point:\n%s\n%s", canon, canon2)
	}
	if !reflect.DeepEqual(n, n2) {
		t.Fatalf("notices differ after a round trip:\n%#v\n%#v", n, n2)
	}
}

// FuzzParseValues puts fuzzed values into the fields of an otherwise valid
// notice, so that the field rules, rather than the JSON syntax, are what the
// fuzzer explores.
func FuzzParseValues(f *testing.F) {
	f.Add("EX-1", "human_trafficking", "sexual", "why", "de", "203.0.113.7", int64(443), "2026-11-20T14:03:00+01:00",
		"https://example.net/u/1", "+49 151 1234", "lea@example.net", "text", strings.Repeat("A", 64), "login")
	f.Add("", "other", "", " ", "EL", "::ffff:10.1.2.3", int64(-1), "2026-11-20T14:03:00,5Z",
		"http:x", "(0)", "Lea <lea@example.net>", "Text", "00", "logout")
	f.Add("a:b", "grooming", "labour", "\\u0000", "", "fe80::1%eth0", int64(65536), "2026-02-29T00:00:00Z",
		"https://[::1]:80/", "", `"a b"@x.y`, "", "", "")
	f.Fuzz(func(t *testing.T, ref, category, exploitation, suspicion, country, ip string, port int64, ts,
		url, phone, email, ctype, sha, event string) {
		body := fmt.Sprintf(`{"reference": %s, "category": %s, "exploitation": %s, "imminent_threat": true,
			"suspicion": %s, "occurred_at": %s, "locations": [{"country": %s}, {"description": %s}],
			"suspects": [{"country": %s, "profile_url": %s, "phone": %s, "username": %s,
			  "ip_addresses": [{"ip": %s, "port": %d, "seen_at": %s, "event": %s}]}],
			"victims": [{"country": %s, "account_id": %s, "minor": true}],
			"content": [{"url": %s, "type": %s, "published_at": %s, "sha256": %s}],
			"contact": {"name": %s, "email": %s, "phone": %s}}`,
			quoted(ref), quoted(category), quoted(exploitation), quoted(suspicion), quoted(ts), quoted(country), quoted(suspicion),
			quoted(country), quoted(url), quoted(phone), quoted(ref), quoted(ip), port, quoted(ts), quoted(event),
			quoted(country), quoted(ip), quoted(url), quoted(ctype), quoted(ts), quoted(sha), quoted(suspicion), quoted(email), quoted(phone))
		checkParse(t, []byte(body))
	})
}

// benchNotice is a realistic notice of about 2 KB.
var benchNotice = []byte(`{
  "reference": "EX-2026-000123",
  "category": "human_trafficking",
  "exploitation": "sexual",
  "imminent_threat": true,
  "urgency_reason": "The victim wrote that she will be taken across the border tonight and that her passport was taken away.",
  "suspicion": "A user offered a 16-year-old girl for paid sexual services in a group chat of 40 members and shared photos of her. In private messages he negotiated prices with two buyers and named a hotel near the main station as the meeting point. The girl's own account, reported by a friend, says she was brought to the country three weeks ago with a promise of work and that her documents were taken.",
  "occurred_at": "2026-11-20T14:03:00+01:00",
  "aware_at": "2026-11-21T08:15:30Z",
  "locations": [{"country": "at", "description": "hotel near the main station, named in chat"}, {"country": "HU"}],
  "suspects": [{"country": "de", "account_id": "u-991", "username": "night_rider_88", "profile_url": "https://chat.example.net/u/991",
                "ip_addresses": [{"ip": "203.0.113.7", "port": 50312, "seen_at": "2026-11-20T13:58:11Z", "event": "login"},
                                 {"ip": "2001:db8:85a3::8a2e:370:7334", "port": 443, "seen_at": "2026-11-20T14:01:40+01:00", "event": "message"}],
                "phone": "+49 151 12345678"},
               {"account_id": "u-1204", "username": "buyer_two", "ip_addresses": [{"ip": "::ffff:198.51.100.23", "seen_at": "2026-11-20T15:10:00Z", "event": "message"}]}],
  "victims": [{"country": "ro", "account_id": "u-5521", "username": "ana.m", "minor": true}],
  "content": [{"url": "https://chat.example.net/g/77/m/1001", "type": "text", "published_at": "2026-11-20T13:59:00+01:00",
               "sha256": "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"},
              {"url": "https://cdn.example.net/i/5f2a.jpg", "type": "image", "published_at": "2026-11-20T14:00:12+01:00",
               "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}],
  "contact": {"name": "Trust & Safety duty desk", "email": "lea@example.net", "phone": "+353 1 234 5678"}
}`)

func BenchmarkParse(b *testing.B) {
	b.SetBytes(int64(len(benchNotice)))
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := Parse(benchNotice); errs != nil {
			b.Fatal(errs)
		}
	}
}

func BenchmarkCanonical(b *testing.B) {
	n, errs := Parse(benchNotice)
	if errs != nil {
		b.Fatal(errs)
	}
	b.ReportAllocs()
	for b.Loop() {
		Canonical(n)
	}
}

func ExampleParse() {
	body := `{
	  "reference": "EX-2026-000124",
	  "category": "grooming",
	  "exploitation": "sexual",
	  "suspicion": "An adult asked a child for photos.",
	  "victims": [{"country": "Deutschland", "minor": "yes"}],
	  "suspects": [{"username": "x", "minor": false, "ip_addresses": [{"ip": "203.0.113.7", "port": 1.5}]}],
	  "contact": {"emial": "lea@example.net"}
	}`
	n, errs := Parse([]byte(body))
	fmt.Println(n == nil)
	for _, e := range errs {
		fmt.Printf("%s: %s\n", e.Field, e.Message)
	}
	// Output:
	// true
	// exploitation: is only allowed when category is human_trafficking
	// imminent_threat: is required
	// suspects[0].minor: unknown field
	// suspects[0].ip_addresses[0].port: must be an integer from 0 to 65535
	// victims[0].country: unknown country code "Deutschland"; want ISO 3166-1 alpha-2
	// victims[0].minor: must be a boolean
	// contact.emial: unknown field
}

// TestParseMemoryIsBounded is finding 11 of issue 10 for notices: a 1 MiB
// body of tiny values cost about 130 MB and 1.7 s before its 400. Each
// hostile shape, a valid-looking notice with every list full included, is
// over the value budget and must now be refused almost for free: at most
// 256 KiB allocated (it was 3 to 7 MiB each, then 130 MB).
func TestParseMemoryIsBounded(t *testing.T) {
	const mib = 1 << 20
	fill := func(prefix, item, suffix string) string {
		n := (mib - len(prefix) - len(suffix)) / len(item)
		return prefix + strings.Repeat(item, n) + suffix
	}
	ips := `{"ip_addresses": [` + strings.Repeat(`{"ip": "::"},`, 99) + `{"ip": "::"}]}`
	for name, body := range map[string]string{
		"zeros":         fill("[", "0,", "0]"),
		"members":       fill(`{"reference": "R"`, `,"a":0`, "}"),
		"nested arrays": fill(strings.Repeat("[", 30), "[0,0,0,0,0,0,0,0,0,0],", "0"+strings.Repeat("]", 30)),
		"empty objects": fill(`{"reference": "R", "x": [`, `{},`, `{}]}`),
		"every list full": `{"reference": "R-1", "category": "other", "imminent_threat": false, "suspicion": "s", "suspects": [` +
			strings.Repeat(ips+",", 99) + ips + `], "victims": [` + strings.Repeat(ips+",", 99) + ips + `]}`,
		"invalid at end": fill("[[", "0,", "0,]]"),
	} {
		b := []byte(body)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, errs := Parse(b)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d bytes allocated for %d bytes; %d errors, first %v", name, alloc, len(body), len(errs), errs[0])
		if alloc > 256<<10 {
			t.Errorf("%s: %d bytes allocated to refuse a %d-byte body, want at most 256 KiB", name, alloc, len(body))
		}
	}
}
