package portal

import (
	"fmt"
	"strconv"
	"strings"
)

// The form as the template draws it: inputs, lists of items and groups,
// each with the errors the validator gave for its path.

type input struct {
	Name, ID, Label, Hint string
	Kind                  kind
	Value, Zone           string
	Options               []string
	// Zones are the time zones a date-time may be given in.
	Zones               []string
	Required, Autofocus bool
	Errors              []string
}

type group struct {
	Path, ID, Label string
	Errors          []string
	Items           []item
	// Remove is the button value that removes this item of a list, whose
	// items are each a Singular.
	Remove, Singular string
}

type list struct {
	Path, ID, Label, Singular string
	Errors                    []string
	Items                     []*group
	// Add is the button value that adds an item.
	Add string
}

type item struct {
	Input *input
	List  *list
	Group *group
}

// formView is what the form template receives.
type formView struct {
	Items     []item
	Summary   []summaryLine
	Warnings  []summaryLine
	Countries []countryOption
	Zones     []string
	// Confirm is set when the notice is valid but has warnings: sending
	// again sends it anyway.
	Confirm bool
	// Checked is set when a check found no problem.
	Checked bool
	Error   string
}

type summaryLine struct {
	ID, Label, Message string
}

func fieldID(path string) string {
	r := strings.NewReplacer("[", "-", "]", "", ".", "-")
	return "f-" + r.Replace(path)
}

// view draws the draft with errs (by path); focus names the path whose
// first input gets the focus (a list item just added).
func (d *draft) view(errs, warns []fieldError, focus string) *formView {
	byPath := map[string][]string{}
	for _, e := range errs {
		byPath[e.Field] = append(byPath[e.Field], e.Message)
	}
	fv := &formView{Countries: countryList, Zones: zones}
	labels := map[string]string{}
	idOf := map[string]string{} // paths shown at another input than their own
	focused := false
	var build func(specs []spec, prefix, labelPrefix string) []item
	build = func(specs []spec, prefix, labelPrefix string) []item {
		var items []item
		for _, sp := range specs {
			p := prefix + sp.Name
			labels[p] = labelPrefix + sp.Label
			switch {
			case sp.List != nil:
				l := &list{Path: p, ID: fieldID(p), Label: sp.Label, Singular: sp.Singular, Errors: byPath[p], Add: "add:" + p}
				for n, i := range d.indices(p) {
					ip := fmt.Sprintf("%s[%d]", p, i)
					lab := fmt.Sprintf("%s %d", strings.ToUpper(sp.Singular[:1])+sp.Singular[1:], n+1)
					labels[ip] = labelPrefix + lab
					g := &group{Path: ip, ID: fieldID(ip), Label: lab, Errors: byPath[ip], Remove: "remove:" + ip, Singular: sp.Singular}
					g.Items = build(sp.List, ip+".", labelPrefix+lab+", ")
					l.Items = append(l.Items, g)
				}
				items = append(items, item{List: l})
			case sp.Group != nil:
				g := &group{Path: p, ID: fieldID(p), Label: sp.Label, Errors: byPath[p]}
				g.Items = build(sp.Group, p+".", labelPrefix+sp.Label+", ")
				items = append(items, item{Group: g})
			default:
				in := &input{Name: p, ID: fieldID(p), Label: sp.Label, Hint: sp.Hint, Kind: sp.Kind, Value: d.vals.Get(p),
					Options: sp.Options, Required: sp.Required, Errors: byPath[p]}
				if sp.Kind == kRefs {
					// The items' errors ("related_references[1]") are the input's.
					for _, e := range errs {
						if rest, ok := strings.CutPrefix(e.Field, p+"["); ok {
							n, _ := strconv.Atoi(strings.SplitN(rest, "]", 2)[0])
							in.Errors = append(in.Errors, fmt.Sprintf("reference %d: %s", n+1, e.Message))
							labels[e.Field] = labelPrefix + sp.Label
							idOf[e.Field] = in.ID
						}
					}
				}
				if sp.Kind == kDateTime {
					in.Zone, in.Zones = d.vals.Get(p+".zone"), zones
				}
				if !focused && focus != "" && strings.HasPrefix(p, focus) {
					in.Autofocus, focused = true, true
				}
				items = append(items, item{Input: in})
			}
		}
		return items
	}
	fv.Items = build(formSpec, "", "")
	line := func(e fieldError) summaryLine {
		l := summaryLine{ID: fieldID(e.Field), Label: labels[e.Field], Message: e.Message}
		if id, ok := idOf[e.Field]; ok {
			l.ID = id
		}
		if e.Field == "" {
			l.ID, l.Label = "", "The notice"
		} else if l.Label == "" {
			l.ID, l.Label = "", e.Field
		}
		return l
	}
	for _, e := range errs {
		fv.Summary = append(fv.Summary, line(e))
	}
	for _, w := range warns {
		fv.Warnings = append(fv.Warnings, line(w))
	}
	return fv
}
