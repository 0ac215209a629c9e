package notice

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// openAPI is docs/openapi.yaml, decoded.
type openAPI struct {
	t       *testing.T
	schemas map[string]any
}

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	data, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	schemas, _ := doc["components"].(map[string]any)["schemas"].(map[string]any)
	if schemas == nil {
		t.Fatal("docs/openapi.yaml has no components.schemas")
	}
	return &openAPI{t: t, schemas: schemas}
}

// schema returns the schema s, following a $ref (also one inside a oneOf
// that allows null, as contact's does), and the name it referred to.
func (o *openAPI) schema(s map[string]any) (map[string]any, string) {
	if alts, ok := s["oneOf"].([]any); ok {
		for _, a := range alts {
			if m := a.(map[string]any); m["$ref"] != nil {
				return o.schema(m)
			}
		}
	}
	ref, ok := s["$ref"].(string)
	if !ok {
		return s, ""
	}
	name := strings.TrimPrefix(ref, "#/components/schemas/")
	target, ok := o.schemas[name].(map[string]any)
	if !ok {
		o.t.Fatalf("docs/openapi.yaml: $ref %s leads nowhere", ref)
	}
	return target, name
}

func stringsOf(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		out = append(out, v)
	case []any:
		for _, x := range v {
			if x != nil && x != "" {
				out = append(out, fmt.Sprint(x))
			}
		}
	}
	return out
}

// schemaTypes are the JSON Schema types of each kind of field; kinds with a
// schema of their own under components.schemas name it.
var schemaTypes = map[Kind]struct{ typ, ref string }{
	KindReference: {typ: "string"}, KindEnum: {typ: "string"}, KindText: {typ: "string"},
	KindEmail: {typ: "string"}, KindIP: {typ: "string"}, KindToken: {typ: "string"}, KindSHA256: {typ: "string"},
	KindBool: {typ: "boolean"}, KindPort: {typ: "integer"}, KindObject: {typ: "object"}, KindList: {typ: "array"},
	KindReferences: {typ: "array"},
	KindTime:       {typ: "string", ref: "Timestamp"}, KindCountry: {typ: "string", ref: "Country"},
	KindURL: {typ: "string", ref: "HTTPURL"}, KindPhone: {typ: "string", ref: "Phone"},
}

// TestOpenAPIMatchesTable: the request schema of POST /v1/notices in
// docs/openapi.yaml says what the field table says: the same fields, the
// same required ones, types, allowed values and limits.
func TestOpenAPIMatchesTable(t *testing.T) {
	o := loadOpenAPI(t)
	notice, _ := o.schema(map[string]any{"$ref": "#/components/schemas/Notice"})
	o.object(t, "Notice", notice, Fields(), nil)
}

// object checks an object schema against fields.
func (o *openAPI) object(t *testing.T, where string, s map[string]any, fs []Field, needs []string) {
	if s["additionalProperties"] != false {
		t.Errorf("%s: additionalProperties must be false (unknown fields are errors)", where)
	}
	props, _ := s["properties"].(map[string]any)
	var names, required []string
	for _, f := range fs {
		names = append(names, f.Name)
		if f.Required {
			required = append(required, f.Name)
		}
	}
	for name := range props {
		if !slices.Contains(names, name) {
			t.Errorf("%s: property %s is not in the field table", where, name)
		}
	}
	if got := stringsOf(s["required"]); !sameSet(got, required) {
		t.Errorf("%s: required %v, table %v", where, got, required)
	}
	var anyOf []string
	alts, _ := s["anyOf"].([]any)
	for _, alt := range alts {
		anyOf = append(anyOf, stringsOf(alt.(map[string]any)["required"])...)
	}
	if !sameSet(anyOf, needs) {
		t.Errorf("%s: anyOf requires one of %v, table %v", where, anyOf, needs)
	}
	for _, f := range fs {
		p, ok := props[f.Name].(map[string]any)
		if !ok {
			t.Errorf("%s: no property %s", where, f.Name)
			continue
		}
		o.field(t, f, p)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// field checks the schema of one field.
func (o *openAPI) field(t *testing.T, f Field, p map[string]any) {
	s, ref := o.schema(p)
	want := schemaTypes[f.Kind]
	if want.ref != "" && ref != want.ref {
		t.Errorf("%s: schema %q, want $ref %s", f.Path, ref, want.ref)
	}
	types := stringsOf(s["type"])
	if f.Kind == KindObject && ref != "" {
		types = []string{"object"}
	}
	if len(types) == 0 || types[0] != want.typ {
		t.Errorf("%s: type %v, want %s", f.Path, types, want.typ)
	}
	if nullable := slices.Contains(stringsOf(s["type"]), "null") || ref != "" && f.Kind == KindObject; f.Required && nullable {
		t.Errorf("%s: required but the schema allows null", f.Path)
	}
	if got := stringsOf(s["enum"]); !slices.Equal(got, f.Values) {
		t.Errorf("%s: enum %v, table %v", f.Path, got, f.Values)
	}
	limit := func(key string, want int) {
		got, _ := s[key].(int)
		if got != want {
			t.Errorf("%s: %s %v, table %d", f.Path, key, s[key], want)
		}
	}
	switch f.Kind {
	case KindToken:
		if pat, _ := s["pattern"].(string); !strings.Contains(pat, fmt.Sprintf("{1,%d}", f.MaxLength)) {
			t.Errorf("%s: pattern %q does not allow 1 to %d characters", f.Path, pat, f.MaxLength)
		}
	case KindPort:
		limit("minimum", 0)
		limit("maximum", 65535)
	case KindList:
		limit("maxItems", f.MaxItems)
		item, _ := o.schema(s["items"].(map[string]any))
		o.object(t, f.Path+"[]", item, f.Fields, f.NeedsOneOf)
	case KindObject:
		o.object(t, f.Path, s, f.Fields, f.NeedsOneOf)
	case KindReferences:
		limit("maxItems", f.MaxItems)
		item := s["items"].(map[string]any)
		if got, _ := item["maxLength"].(int); got != f.MaxLength || item["type"] != "string" {
			t.Errorf("%s: items %v, want strings of at most %d characters", f.Path, item, f.MaxLength)
		}
	default:
		limit("maxLength", f.MaxLength)
	}
}

// TestOpenAPIListsWarnings: the description of `warnings` in the answer to
// POST /v1/notices (202 and 200) names every warning the validator gives:
// each recommended field of the table by name, a time stamp in the future,
// and no Member State at `locations`.
func TestOpenAPIListsWarnings(t *testing.T) {
	o := loadOpenAPI(t)
	accepted, _ := o.schema(map[string]any{"$ref": "#/components/schemas/Accepted"})
	props, _ := accepted["properties"].(map[string]any)
	w, _ := props["warnings"].(map[string]any)
	desc, _ := w["description"].(string)
	if desc == "" {
		t.Fatal("Accepted.warnings has no description")
	}
	if items, _ := o.schema(w["items"].(map[string]any)); items["required"] == nil {
		t.Error("Accepted.warnings.items: not the Warning schema")
	}
	desc = strings.Join(strings.Fields(desc), " ")
	var walk func(fs []Field)
	times := 0
	walk = func(fs []Field) {
		for _, f := range fs {
			if f.Recommended != "" && !strings.Contains(desc, "`"+f.Name+"`") {
				t.Errorf("warning of %s (%q) not listed in the description of warnings", f.Path, f.Recommended)
			}
			if f.Kind == KindTime {
				times++
			}
			walk(f.Fields)
		}
	}
	walk(Fields())
	if times == 0 || !strings.Contains(desc, "in the future") {
		t.Errorf("the warning of a time stamp in the future (%d time fields) is not listed", times)
	}
	if !strings.Contains(desc, "`locations`") || !strings.Contains(desc, "no Member State") {
		t.Error("the warning at locations (no Member State identified) is not listed")
	}
}
