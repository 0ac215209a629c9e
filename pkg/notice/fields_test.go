package notice

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// sampleValue is a valid value of a field of kind k.
func sampleValue(f Field) any {
	switch f.Kind {
	case KindReference:
		if f.Name == "reference" {
			return "R-1"
		}
		return "R-0" // an earlier notice
	case KindReferences:
		return []any{"R-0", "R-00"}
	case KindEnum:
		return f.Values[0]
	case KindBool:
		return true
	case KindText:
		return "some text"
	case KindTime:
		return "2026-11-20T14:03:00+01:00"
	case KindCountry:
		return "DE"
	case KindURL:
		return "https://example.net/x"
	case KindPhone:
		return "+49 151 1234"
	case KindEmail:
		return "lea@example.net"
	case KindIP:
		return "192.0.2.1"
	case KindPort:
		return 443
	case KindToken:
		return "text"
	case KindSHA256:
		return strings.Repeat("a", 64)
	case KindObject:
		return sampleObject(f.Fields)
	case KindList:
		return []any{sampleObject(f.Fields)}
	}
	panic("no sample of kind " + f.Kind)
}

func sampleObject(fs []Field) map[string]any {
	m := map[string]any{}
	for _, f := range fs {
		m[f.Name] = sampleValue(f)
	}
	return m
}

// badValue is a value no field of kind k accepts.
func badValue(k Kind) any {
	if k == KindBool {
		return "yes"
	}
	return true
}

// leaves calls fn with every field of fs and below, depth first.
func leaves(fs []Field, fn func(Field)) {
	for _, f := range fs {
		fn(f)
		leaves(f.Fields, fn)
	}
}

// setAt replaces the value at a table path in a sample notice, taking the
// first item of each list on the way.
func setAt(m map[string]any, path string, v any) {
	name, rest, more := strings.Cut(path, ".")
	list := strings.HasSuffix(name, "[]")
	name = strings.TrimSuffix(name, "[]")
	if !more {
		m[name] = v
		return
	}
	inner := m[name]
	if list {
		inner = inner.([]any)[0]
	}
	setAt(inner.(map[string]any), rest, v)
}

// concrete is the path of a table path's first occurrence in a sample.
func concrete(path string) string { return strings.ReplaceAll(path, "[]", "[0]") }

// TestTableSampleKeepsEveryField: a notice with every field of the table
// set parses, and its canonical form holds every field: the parser reads
// every field the table lists.
func TestTableSampleKeepsEveryField(t *testing.T) {
	body, _ := json.Marshal(sampleObject(Fields()))
	n, errs := Parse(body)
	if errs != nil {
		t.Fatalf("Parse(%s): %v", body, errs)
	}
	canon, _ := Canonical(n)
	var back map[string]any
	if err := json.Unmarshal(canon, &back); err != nil {
		t.Fatal(err)
	}
	leaves(Fields(), func(f Field) {
		m, path := any(back), f.Path
		for part := range strings.SplitSeq(path, ".") {
			name := strings.TrimSuffix(part, "[]")
			v, ok := m.(map[string]any)[name]
			if !ok {
				t.Errorf("%s is dropped by the parser: canonical form %s", f.Path, canon)
				return
			}
			if part != name {
				v = v.([]any)[0]
			}
			m = v
		}
	})
}

// TestEveryFieldReportsItsRule: a bad value in any field of the table is
// one problem, at that field, whose Rule is the field's Path. Reason codes
// ("invalid:<Rule>") can therefore never fall back to "malformed" for a
// field the parser knows (as suspects[].ip_addresses[].possible_proxy once
// did).
func TestEveryFieldReportsItsRule(t *testing.T) {
	n := 0
	leaves(Fields(), func(f Field) {
		n++
		m := sampleObject(Fields())
		setAt(m, f.Path, badValue(f.Kind))
		body, _ := json.Marshal(m)
		_, errs := Parse(body)
		want := FieldError{Field: concrete(f.Path), Code: CodeInvalid, Rule: f.Path}
		if len(errs) != 1 || errs[0].Field != want.Field || errs[0].Code != want.Code || errs[0].Rule != want.Rule {
			t.Errorf("bad %s: errors %+v, want one %+v", f.Path, errs, want)
		}
	})
	if n < 40 {
		t.Errorf("only %d fields in the table", n)
	}
}

// TestItemRules: a problem with a list item names the list's Path and "[]".
func TestItemRules(t *testing.T) {
	for _, tc := range []struct{ body, field, rule string }{
		{mkBody("locations", `[{}]`), "locations[0]", "locations[]"},
		{mkBody("content", `[7]`), "content[0]", "content[]"},
		{mkBody("suspects", `[{"ip_addresses": ["::1"]}]`), "suspects[0].ip_addresses[0]", "suspects[].ip_addresses[]"},
		{mkBody("victims", "["+strings.Repeat("{},", 100)+"{}]"), "victims", "victims"},
	} {
		_, errs := Parse([]byte(tc.body))
		if len(errs) != 1 || errs[0].Field != tc.field || errs[0].Code != CodeInvalid || errs[0].Rule != tc.rule {
			t.Errorf("%s: errors %+v, want one at %s with rule %s", tc.body, errs, tc.field, tc.rule)
		}
	}
}

// TestTableMatchesStruct: the table and the Notice struct name the same
// fields in the same (canonical) order.
func TestTableMatchesStruct(t *testing.T) {
	var check func(path string, fs []Field, typ reflect.Type)
	check = func(path string, fs []Field, typ reflect.Type) {
		var tags []string
		for i := range typ.NumField() {
			tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			tags = append(tags, tag)
		}
		var names []string
		for _, f := range fs {
			names = append(names, f.Name)
		}
		// Person serves suspects and victims; only victims have minor.
		if typ == reflect.TypeFor[Person]() && !slices.Contains(names, "minor") {
			names = append(names, "minor")
		}
		if !slices.Equal(tags, names) {
			t.Errorf("%s: struct %s has %v, table %v", path, typ.Name(), tags, names)
		}
		for _, f := range fs {
			sf, _ := typ.FieldByNameFunc(func(s string) bool {
				ff, _ := typ.FieldByName(s)
				tag, _, _ := strings.Cut(ff.Tag.Get("json"), ",")
				return tag == f.Name
			})
			et := sf.Type
			for et.Kind() == reflect.Pointer || et.Kind() == reflect.Slice {
				et = et.Elem()
			}
			if len(f.Fields) > 0 {
				check(f.Path, f.Fields, et)
			}
		}
	}
	check("", Fields(), reflect.TypeFor[Notice]())
}

func TestLookup(t *testing.T) {
	leaves(Fields(), func(f Field) {
		got, ok := Lookup(f.Path)
		if !ok || !reflect.DeepEqual(got, f) {
			t.Errorf("Lookup(%q) = %+v, %v", f.Path, got, ok)
		}
	})
	for _, p := range []string{"", "x", "suspects", "suspects.ip_addresses", "suspects[]", "contact[].name",
		"victims[].minor", "suspects[].minor", "reference.x"} {
		if _, ok := Lookup(p); ok != (p == "suspects" || p == "victims[].minor") {
			t.Errorf("Lookup(%q) ok = %v", p, ok)
		}
	}
	f, _ := Lookup("suspects[].ip_addresses[].possible_proxy")
	if f.Kind != KindBool || f.Required || f.Label == "" {
		t.Errorf("possible_proxy: %+v", f)
	}
	// Callers get copies: changing one changes nothing in the table.
	fs := Fields()
	fs[1].Values[0] = "changed"
	fs[9].Fields[0].Name = "changed"
	if c, _ := Lookup("category"); c.Values[0] != Categories[0] {
		t.Error("Fields shares Values with the table")
	}
	if _, ok := Lookup("suspects[].country"); !ok {
		t.Error("Fields shares Fields with the table")
	}
}

func ExampleLookup() {
	f, _ := Lookup("suspects[].ip_addresses[].event")
	fmt.Println(f.Label, f.Kind, f.Required, f.Values)
	// Output: Event enum false [login registration upload message purchase other]
}

func ExampleFields() {
	for _, f := range Fields()[:4] {
		fmt.Printf("%s (%s) required=%v\n", f.Path, f.Kind, f.Required)
	}
	// Output:
	// reference (reference) required=true
	// category (enum) required=true
	// exploitation (enum) required=false
	// imminent_threat (bool) required=true
}
