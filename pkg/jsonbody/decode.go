package jsonbody

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Small are the limits for the small bodies beside notices (withdrawals,
// acknowledgements): a few fields, lists of at most a hundred ids.
var Small = Limits{MaxDepth: 8, MaxItems: 100, MaxValues: 1024}

// MaxErrors bounds the error list, so that a hostile body cannot make an
// answer many times its own size.
const MaxErrors = 1000

// MsgTooMany ends an error list that reached MaxErrors.
const MsgTooMany = "too many problems; only the first 1000 are listed"

// Decode parses body into the struct v points to, strictly: the body must be
// a JSON object; a key that is not one of the struct's json field names, or
// that comes twice, is an error; every value must have its field's type
// (string, bool, integer, a struct, or a slice of them); every string must be
// fit text (TextProblem). Fields absent or null keep their zero value: the
// caller checks what is required. It returns every problem found, not just
// the first, each at its field's path; v is only fully set when there are
// none.
func Decode(body []byte, v any, lim Limits) []FieldError {
	root, fe := Parse(body, lim)
	if fe != nil {
		return []FieldError{*fe}
	}
	var d decoder
	rv := reflect.ValueOf(v).Elem()
	if root.Kind != Object {
		return []FieldError{{"", "must be a JSON object"}}
	}
	d.value(&root, rv, "")
	return d.errs
}

// Errors is a list of problems capped at MaxErrors; a list that reaches the
// cap ends with an error at "" saying so.
type Errors []FieldError

// Add records a problem at path, unless the list is full.
func (e *Errors) Add(path, msg string) {
	switch {
	case len(*e) < MaxErrors:
		*e = append(*e, FieldError{path, msg})
	case len(*e) == MaxErrors:
		*e = append(*e, FieldError{"", MsgTooMany})
	}
}

type decoder struct{ errs Errors }

func (d *decoder) add(path, msg string) { d.errs.Add(path, msg) }

func (d *decoder) value(n *Value, v reflect.Value, path string) {
	if n.Kind == Null {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		nv := reflect.New(v.Type().Elem())
		d.value(n, nv.Elem(), path)
		v.Set(nv)
	case reflect.String:
		if n.Kind != String {
			d.add(path, "must be a string")
			return
		}
		if msg := TextProblem(n.Text); msg != "" {
			d.add(path, msg)
			return
		}
		v.SetString(n.Text)
	case reflect.Bool:
		if n.Kind != Bool {
			d.add(path, "must be a boolean")
			return
		}
		v.SetBool(n.Bool)
	case reflect.Int, reflect.Int64, reflect.Int32:
		i, err := strconv.ParseInt(n.Text, 10, 64)
		if n.Kind != Number || err != nil || v.OverflowInt(i) {
			d.add(path, "must be an integer")
			return
		}
		v.SetInt(i)
	case reflect.Slice:
		if n.Kind != Array {
			d.add(path, "must be an array")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Items), len(n.Items))
		for i := range n.Items {
			d.value(&n.Items[i], s.Index(i), Index(path, i))
		}
		v.Set(s)
	case reflect.Struct:
		d.object(n, v, path)
	default:
		// A programming error: the request type has a field this decoder
		// does not handle.
		panic(fmt.Sprintf("jsonbody: cannot decode into %s", v.Type()))
	}
}

func (d *decoder) object(n *Value, v reflect.Value, path string) {
	if n.Kind != Object {
		d.add(path, "must be an object")
		return
	}
	t := v.Type()
	fields := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" && t.Field(i).IsExported() {
			fields[name] = i
		}
	}
	seen := map[string]bool{}
	for i := range n.Members {
		m := &n.Members[i]
		j, known := fields[m.Key]
		switch {
		case !known:
			d.add(JoinKey(path, m.Key), "unknown field")
		case seen[m.Key]:
			d.add(JoinPath(path, m.Key), "duplicate field")
		default:
			seen[m.Key] = true
			d.value(&m.Value, v.Field(j), JoinPath(path, m.Key))
		}
	}
}
