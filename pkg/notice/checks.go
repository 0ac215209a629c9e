package notice

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/noticerelay/noticerelay/pkg/jsonbody"
)

// Limits of the walk itself (the fields have their own, in the table).
const (
	// maxErrors bounds the error list, so that a hostile 1 MiB body cannot
	// make an answer many times its own size.
	maxErrors = 1000
)

// Messages that occur in several places.
const (
	msgRequired  = "is required"
	msgNotEmpty  = "must not be empty"
	msgString    = "must be a string"
	msgBoolean   = "must be a boolean"
	msgObject    = "must be an object"
	msgArray     = "must be an array of objects"
	msgUnknown   = "unknown field"
	msgDuplicate = "duplicate field"
	msgPort      = "must be an integer from 0 to 65535"
	msgTooMany   = "too many problems; only the first 1000 are listed"
)

// checker walks a decoded body against the field table and collects every
// problem and every warning.
type checker struct {
	errs     []FieldError
	warnings []Warning
	// now is when time stamps start to be in the future; zero: never.
	now time.Time
}

// futureSlack is how far ahead of the relay's clock a time stamp may be
// before it is said to be in the future: the platform's clock may be ahead.
const futureSlack = 5 * time.Minute

func (c *checker) warn(path, msg string) {
	if len(c.warnings) < maxErrors {
		c.warnings = append(c.warnings, Warning{Field: path, Message: msg})
	}
}

func (c *checker) add(fe FieldError) {
	switch {
	case len(c.errs) < maxErrors:
		c.errs = append(c.errs, fe)
	case len(c.errs) == maxErrors:
		c.errs = append(c.errs, *bodyError(msgTooMany))
	}
}

// invalid records that the value at path breaks the rule of the table's
// field (or list item) rule.
func (c *checker) invalid(path, rule, msg string) {
	c.add(FieldError{Field: path, Message: msg, Code: CodeInvalid, Rule: rule})
}

// object is one JSON object of a notice, checked against its fields in the
// table. Its accessors take a field's Name, check the value by the field's
// rule and record any problem; they panic on a name the object's fields
// lack, which is a mistake in this package that any test of the field finds.
type object struct {
	c     *checker
	path  string            // where the object is, e.g. "suspects[0]"
	rule  string            // its place in the table, e.g. "suspects[]"
	spec  []Field           // its fields
	needs []string          // NeedsOneOf of the object
	vals  []*jsonbody.Value // by index of spec; nil when absent or null
}

// object checks that n is an object with only the fields of spec, each
// once, reporting unknown and duplicate keys in document order. ok is false,
// with an error, when n is not an object.
func (c *checker) object(n *jsonbody.Value, path, rule string, spec []Field, needs []string) (o *object, ok bool) {
	if n.Kind != jsonbody.Object {
		c.invalid(path, rule, msgObject)
		return nil, false
	}
	o = &object{c: c, path: path, rule: rule, spec: spec, needs: needs, vals: make([]*jsonbody.Value, len(spec))}
	seen := make([]bool, len(spec))
	for i := range n.Members {
		m := &n.Members[i]
		j := fieldIndex(spec, m.Key)
		switch {
		case j < 0:
			c.add(FieldError{Field: jsonbody.JoinKey(path, m.Key), Message: msgUnknown, Code: CodeUnknownField})
		case seen[j]:
			c.add(FieldError{Field: jsonbody.JoinPath(path, m.Key), Message: msgDuplicate, Code: CodeDuplicateField})
		default:
			seen[j] = true
			if m.Value.Kind != jsonbody.Null {
				o.vals[j] = &m.Value
			}
		}
	}
	o.recommend()
	return o, true
}

// recommend warns of each recommended field the object lacks.
func (o *object) recommend() {
	for i := range o.spec {
		f := &o.spec[i]
		if f.Recommended == "" || !absent(f, o.vals[i]) {
			continue
		}
		if cond := f.RecommendedIf; cond != nil {
			if _, n, _ := o.at(cond.Field); n == nil || literal(n) != cond.Value {
				continue
			}
		}
		o.c.warn(jsonbody.JoinPath(o.path, f.Name), f.Recommended)
	}
}

// absent reports whether the value n of field f counts as not given: an
// object counts so when none of its members is given either.
func absent(f *Field, n *jsonbody.Value) bool {
	if f.Kind == KindObject && n != nil && n.Kind == jsonbody.Object {
		for i := range n.Members {
			if v := &n.Members[i].Value; v.Kind != jsonbody.Null && !isEmptyString(v) {
				return false
			}
		}
		return true
	}
	return isEmptyString(n)
}

// literal is a string or boolean value as a Condition names it.
func literal(n *jsonbody.Value) string {
	switch n.Kind {
	case jsonbody.String:
		return n.Text
	case jsonbody.Bool:
		return strconv.FormatBool(n.Bool)
	}
	return ""
}

// at returns the field called name, its value and its path.
func (o *object) at(name string) (*Field, *jsonbody.Value, string) {
	i := fieldIndex(o.spec, name)
	if i < 0 {
		panic("notice: the table has no field " + name + " in " + o.rule)
	}
	return &o.spec[i], o.vals[i], jsonbody.JoinPath(o.path, name)
}

// has reports whether the object's fields include name.
func (o *object) has(name string) bool { return fieldIndex(o.spec, name) >= 0 }

// given reports whether field name has a value that is not empty.
func (o *object) given(name string) bool {
	_, n, _ := o.at(name)
	return !isEmptyString(n)
}

// str returns a string field, checked by its kind and normalised, or ""
// when it is absent or invalid.
func (o *object) str(name string) string {
	f, n, path := o.at(name)
	s, ok := o.c.str(f, n, path)
	if !ok {
		return ""
	}
	if f.OnlyIf != nil && !o.allows(f.OnlyIf) {
		o.c.invalid(path, f.Path, fmt.Sprintf("is only allowed when %s is %s", f.OnlyIf.Field, f.OnlyIf.Value))
		return ""
	}
	return o.c.rule(f, s, path)
}

// rule checks the non-empty string s at path by the rule of f's kind and
// returns it normalised, or "" when it breaks the rule.
func (c *checker) rule(f *Field, s, path string) string {
	v, msg := checkString(f, s)
	if msg != "" {
		c.invalid(path, f.Path, msg)
		return ""
	}
	if f.Kind == KindTime && !c.now.IsZero() {
		if t, _ := time.Parse(time.RFC3339Nano, v); t.After(c.now.Add(futureSlack)) {
			c.warn(path, "is in the future: check the time and its offset")
		}
	}
	return v
}

// allows reports whether cond does not rule its field out. Only a sibling
// that is itself valid can rule it out.
func (o *object) allows(cond *Condition) bool {
	f, n, _ := o.at(cond.Field)
	if n == nil || n.Kind != jsonbody.String || f.Kind == KindEnum && !slices.Contains(f.Values, n.Text) {
		return true
	}
	return n.Text == cond.Value
}

// str returns the string at path. A required string must be present and not
// empty; an optional one that is absent, null or "" yields ok == false with
// no error. Strings with C0 control characters other than \t, \n and \r are
// refused.
func (c *checker) str(f *Field, n *jsonbody.Value, path string) (s string, ok bool) {
	switch {
	case n == nil:
		if f.Required {
			c.invalid(path, f.Path, msgRequired)
		}
		return "", false
	case n.Kind != jsonbody.String:
		c.invalid(path, f.Path, msgString)
		return "", false
	case n.Text == "":
		if f.Required {
			c.invalid(path, f.Path, msgNotEmpty)
		}
		return "", false
	case jsonbody.TextProblem(n.Text) != "":
		// C0 controls but tab, LF and CR, and bidirectional controls:
		// every body's rule (jsonbody.TextProblem).
		c.invalid(path, f.Path, jsonbody.TextProblem(n.Text))
		return "", false
	}
	return n.Text, true
}

// flag returns a boolean field, or nil when it is absent or invalid.
func (o *object) flag(name string) *bool {
	f, n, path := o.at(name)
	switch {
	case n == nil:
		if f.Required {
			o.c.invalid(path, f.Path, msgRequired)
		}
	case n.Kind != jsonbody.Bool:
		o.c.invalid(path, f.Path, msgBoolean)
	default:
		b := n.Bool
		return &b
	}
	return nil
}

// boolean returns a boolean field, false when it is absent or invalid.
func (o *object) boolean(name string) bool {
	b := o.flag(name)
	return b != nil && *b
}

// port returns a port field: a plain JSON integer from 0 to 65535 (not
// 1.5, not 1e3, not "80"); nil when it is absent or invalid.
func (o *object) port(name string) *int {
	f, n, path := o.at(name)
	if n == nil {
		return nil
	}
	if n.Kind != jsonbody.Number || strings.ContainsAny(n.Text, ".eE") {
		o.c.invalid(path, f.Path, msgPort)
		return nil
	}
	p, err := strconv.Atoi(n.Text)
	if err != nil || p < 0 || p > 65535 {
		o.c.invalid(path, f.Path, msgPort)
		return nil
	}
	return &p
}

// list returns the items of a list field that are objects; an item that
// is not is reported and left out.
func (o *object) list(name string) []*object {
	f, n, path := o.at(name)
	if n == nil {
		return nil
	}
	if n.Kind != jsonbody.Array {
		o.c.invalid(path, f.Path, msgArray)
		return nil
	}
	if len(n.Items) > f.MaxItems {
		o.c.invalid(path, f.Path, fmt.Sprintf("must have at most %d items", f.MaxItems))
	}
	var out []*object
	for i := range n.Items {
		if item, ok := o.c.object(&n.Items[i], jsonbody.Index(path, i), f.Path+"[]", f.Fields, f.NeedsOneOf); ok {
			out = append(out, item)
		}
	}
	return out
}

// references returns a field that is an array of references.
func (o *object) references(name string) []string {
	f, n, path := o.at(name)
	if n == nil {
		return nil
	}
	if n.Kind != jsonbody.Array {
		o.c.invalid(path, f.Path, "must be an array of references")
		return nil
	}
	if len(n.Items) > f.MaxItems {
		o.c.invalid(path, f.Path, fmt.Sprintf("must have at most %d items", f.MaxItems))
	}
	item := Field{Path: f.Path + "[]", Kind: KindReference, Required: true, MaxLength: f.MaxLength}
	var out []string
	for i := range n.Items {
		itemPath := jsonbody.Index(path, i)
		if s, ok := o.c.str(&item, &n.Items[i], itemPath); ok {
			if v := o.c.rule(&item, s, itemPath); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// object returns an object field, or nil when it is absent or not an object.
func (o *object) object(name string) *object {
	f, n, path := o.at(name)
	if n == nil {
		return nil
	}
	inner, _ := o.c.object(n, path, f.Path, f.Fields, f.NeedsOneOf)
	return inner
}

// complete reports whether the object has one of the fields it needs, and
// records a problem when it has none.
func (o *object) complete() bool {
	if len(o.needs) == 0 || slices.ContainsFunc(o.needs, o.given) {
		return true
	}
	msg := "must have at least one of " + strings.Join(o.needs, ", ")
	if len(o.needs) == 2 {
		msg = fmt.Sprintf("must have a %s or a %s", o.needs[0], o.needs[1])
	}
	o.c.invalid(o.path, o.rule, msg)
	return false
}

// isEmptyString reports whether an optional value counts as absent.
func isEmptyString(n *jsonbody.Value) bool {
	return n == nil || n.Kind == jsonbody.String && n.Text == ""
}
