package jsonbody

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

var testLimits = Limits{MaxDepth: 32, MaxItems: 100, MaxValues: 1 << 14}

func TestParseLimits(t *testing.T) {
	for _, tc := range []struct {
		name, body, field, msg string
	}{
		{"array over its items", `{"a": {"b c": [` + strings.Repeat("0,", 100) + `0]}}`, `a["b c"]`, "must have at most 100 items"},
		{"items of a nested array", `[[], [` + strings.Repeat("{},", 100) + `{}]]`, "[1]", "must have at most 100 items"},
		{"too deep", strings.Repeat("[", 33) + strings.Repeat("]", 33), "", "is nested more than 32 levels deep (at byte 33)"},
		{"too many values", `{"x": [` + strings.Repeat("["+strings.Repeat("0,", 99)+"0],", 99) + `[]]` +
			`, "y": [` + strings.Repeat("["+strings.Repeat("0,", 99)+"0],", 99) + `[]]` + `}`, "", "holds more than 16384 JSON values"},
		{"empty", " \n", "", "is empty"},
		{"not UTF-8", "\"caf\xe9\"", "", "is not valid UTF-8 (at byte 4)"},
		{"trailing data", `{} x`, "", "unexpected data after the top-level value (at byte 3)"},
		{"truncated", `{"a": [1, 2`, "", "is not valid JSON: unexpected end of input (at byte 11)"},
		{"trailing comma", `{"a": 1,}`, "", "is not valid JSON: invalid character '}' looking for beginning of object key string (at byte 8)"},
		{"bad escape", `{"a": "\x"}`, "", "is not valid JSON: invalid character 'x' in string escape code"},
		{"leading zero", `[01]`, "", "is not valid JSON"},
		{"raw control in string", "[\"a\x01\"]", "", "is not valid JSON"},
		{"lone high surrogate", `{"s": [1, "a\ud800b"]}`, "s[1]", `holds \ud800, half of a UTF-16 surrogate pair`},
		{"lone low surrogate", `{"s": "\uDC00"}`, "s", `holds \uDC00, half`},
		{"high surrogate at the end", `{"s": "x\ud83d"}`, "s", `holds \ud83d, half`},
		{"two high surrogates", `{"s": "\ud83d\ud83d\ude00"}`, "s", `holds \ud83d, half`},
		// The first problem is the one reported, though the checking
		// pass would meet a later one of another kind.
		{"surrogate before too many items", `{"s": "\udc00", "t": [` + strings.Repeat("0,", 100) + `0]}`, "s", `holds \udc00, half`},
		{"too many items before a surrogate", `{"t": [` + strings.Repeat("0,", 100) + `0], "s": "\udc00"}`, "t", "must have at most 100 items"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, fe := Parse([]byte(tc.body), testLimits)
			if fe == nil || fe.Field != tc.field || !strings.Contains(fe.Message, tc.msg) {
				t.Errorf("Parse: %+v, want %q: ...%s...", fe, tc.field, tc.msg)
			}
		})
	}
}

// A surrogate pair escapes one character; an escaped backslash before a
// "u" is no escape of a surrogate.
func TestParseSurrogatePairs(t *testing.T) {
	for body, want := range map[string]string{
		`"\ud83d\ude00"`:          "\U0001F600",
		`"a\\ud800"`:              `a\ud800`,
		`"\\\ud83d\uDE00 \u00e9"`: "\\\U0001F600 \u00e9",
	} {
		v, fe := Parse([]byte(body), testLimits)
		if fe != nil || v.Text != want {
			t.Errorf("Parse(%s) = %q, %+v; want %q", body, v.Text, fe, want)
		}
	}
}

func TestParseValues(t *testing.T) {
	v, fe := Parse([]byte(` {"s": "a\u00e9\"", "n": -1.5e+3, "t": true, "f": false, "z": null, "a": [{}, []], "s": ""} `), testLimits)
	if fe != nil {
		t.Fatal(fe)
	}
	want := []struct {
		key  string
		kind Kind
		text string
	}{{"s", String, "aé\""}, {"n", Number, "-1.5e+3"}, {"t", Bool, ""}, {"f", Bool, ""}, {"z", Null, ""}, {"a", Array, ""}, {"s", String, ""}}
	if len(v.Members) != len(want) {
		t.Fatalf("%d members", len(v.Members))
	}
	for i, w := range want {
		m := v.Members[i]
		if m.Key != w.key || m.Value.Kind != w.kind || m.Value.Text != w.text {
			t.Errorf("member %d = %q %v %q, want %+v", i, m.Key, m.Value.Kind, m.Value.Text, w)
		}
	}
	if !v.Members[2].Value.Bool || v.Members[3].Value.Bool || len(v.Members[5].Value.Items) != 2 {
		t.Errorf("values: %+v", v)
	}
}

// TestParseMemoryIsBounded is finding 11 of issue 10: a 1 MiB body of tiny
// values cost about 130 MB as a generic tree. Each hostile shape must now
// cost at most a small multiple of the body, and one that is refused
// (over a limit) almost nothing: the parser checks a body before it builds
// anything, so that a flood of refused 1 MiB bodies makes no garbage (it
// made 5 MiB each, and the collector's pauses, before).
func TestParseMemoryIsBounded(t *testing.T) {
	const mib = 1 << 20
	fill := func(prefix, item, suffix string) string {
		n := (mib - len(prefix) - len(suffix)) / len(item)
		return prefix + strings.Repeat(item, n) + suffix
	}
	for name, body := range map[string]string{
		"zeros":          fill("[", "0,", "0]"),
		"members":        fill(`{"a":0`, `,"a":0`, "}"),
		"nested arrays":  fill(strings.Repeat("[", 20), "[0,0,0,0,0,0,0,0,0,0],", "0"+strings.Repeat("]", 20)),
		"empty objects":  fill(`{"x":[[`, "{},", "{}]]}"),
		"strings":        fill(`{"x":"`, `\u0000`, `"}`),
		"invalid at end": fill("[[", "0,", "0,]]"),
		"wide objects":   fill(`{"x":[`, `{"a":0,"b":1},`, `{}]}`),
	} {
		b := []byte(body)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, fe := Parse(b, testLimits)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d bytes allocated for %d bytes: %v", name, alloc, len(body), fe)
		switch {
		case fe == nil && alloc > 3*mib:
			t.Errorf("%s: %d bytes allocated for a %d-byte body, want at most 3 MiB", name, alloc, len(body))
		case fe != nil && alloc > 256<<10:
			t.Errorf("%s: %d bytes allocated to refuse a %d-byte body, want at most 256 KiB", name, alloc, len(body))
		}
	}
}

func TestTextProblem(t *testing.T) {
	for s, want := range map[string]string{
		"plain\ttext\r\n": "",
		"مرحبا\u200f":     "", // a right-to-left mark is text, not an override
		"a\x00b":          MsgControl,
		"a\x1bb":          MsgControl,
		"evil\u202etxt":   "U+202E",
		"x\u2066y":        "U+2066",
		"x\u202ay":        "U+202A",
		"x\u2069":         "U+2069",
		"\u2065\u202f":    "",
	} {
		got := TextProblem(s)
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("TextProblem(%q) = %q, want %q", s, got, want)
		}
	}
}

type inner struct {
	Name string `json:"name"`
}

type request struct {
	IDs    []string `json:"ids"`
	Reason string   `json:"reason"`
	Count  int      `json:"count"`
	Flag   bool     `json:"flag"`
	Inner  *inner   `json:"inner"`
}

func TestDecode(t *testing.T) {
	var r request
	if errs := Decode([]byte(`{"ids": ["a", "b"], "reason": "r", "count": 3, "flag": true, "inner": {"name": "n"}}`), &r, Small); errs != nil {
		t.Fatal(errs)
	}
	if len(r.IDs) != 2 || r.Reason != "r" || r.Count != 3 || !r.Flag || r.Inner.Name != "n" {
		t.Errorf("decoded %+v", r)
	}
	for _, tc := range []struct {
		name, body string
		want       []FieldError
	}{
		{"duplicate key", `{"reason": "a", "reason": "b"}`, []FieldError{{"reason", "duplicate field"}}},
		{"unknown fields", `{"Reason": "a", "inner": {"nom": 1}}`, []FieldError{{"Reason", "unknown field"}, {"inner.nom", "unknown field"}}},
		{"NUL", `{"reason": "a\u0000"}`, []FieldError{{"reason", MsgControl}}},
		{"bidi in a list", `{"ids": ["ok", "\u202e"]}`, []FieldError{{"ids[1]", "contains a bidirectional control character (U+202E); send the text without it"}}},
		{"types", `{"ids": "x", "reason": 1, "count": 1.5, "flag": "yes"}`, []FieldError{{"ids", "must be an array"}, {"reason", "must be a string"},
			{"count", "must be an integer"}, {"flag", "must be a boolean"}}},
		{"not an object", `["reason"]`, []FieldError{{"", "must be a JSON object"}}},
		{"invalid UTF-8", "{\"reason\": \"\xff\"}", []FieldError{{"", "is not valid UTF-8 (at byte 12)"}}},
		{"too many ids", `{"ids": [` + strings.Repeat(`"a",`, 100) + `"a"]}`, []FieldError{{"ids", "must have at most 100 items"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r request
			errs := Decode([]byte(tc.body), &r, Small)
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want %v", errs, tc.want)
			}
			for i := range errs {
				if errs[i] != tc.want[i] {
					t.Errorf("error %d = %v, want %v", i, errs[i], tc.want[i])
				}
			}
		})
	}
}

// FuzzParse checks that the parser accepts exactly the JSON that
// encoding/json accepts (within the limits; but for half surrogate pairs),
// and that every plain value
// comes out as encoding/json reads it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a": [1, -0.5e-3, "x\n\u00e9", true, null, {}]}`, `[01]`, `"\ud800"`, `{"a" 1}`, `[1,]`, `1e`, ` "x" `, `{"a":"\/"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, fe := Parse(body, Limits{MaxDepth: 10000, MaxItems: 1 << 30, MaxValues: 1 << 30})
		if !utf8.Valid(body) {
			// encoding/json replaces invalid UTF-8; this parser refuses it.
			if fe == nil || !strings.Contains(fe.Message, "UTF-8") {
				t.Fatalf("Parse(%q) = %v, want a UTF-8 error", body, fe)
			}
			return
		}
		var want any
		err := json.Unmarshal(body, &want)
		if fe != nil && strings.Contains(fe.Message, "surrogate") {
			// encoding/json puts U+FFFD for half a surrogate pair; this
			// parser refuses it.
			if !bytes.Contains(bytes.ToLower(body), []byte(`\ud`)) {
				t.Fatalf("Parse(%q) = %v without a surrogate escape", body, fe)
			}
			return
		}
		// Syntax, not Unmarshal's error: 1E700 is JSON, but no float64.
		if (fe == nil) != json.Valid(body) {
			t.Fatalf("Parse(%q): %v; encoding/json: %v", body, fe, err)
		}
		if fe == nil {
			if s, ok := want.(string); ok && (v.Kind != String || v.Text != s) {
				t.Fatalf("Parse(%q) = %q, want %q", body, v.Text, s)
			}
		}
	})
}
