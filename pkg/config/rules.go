package config

import (
	"fmt"
	"slices"

	"github.com/noticerelay/noticerelay/pkg/notice"
)

// CopyAny as a rule's copy_of copies whatever any authority receives.
const CopyAny = "any"

// Rule says when an authority that is not its country's primary authority
// receives a notice (docs/jurisdiction.md). Each country has exactly one
// primary authority: the one entry of that country without rules. Other
// entries (a separate unit, a 24/7 desk) receive only what their rules say:
//
//	rules:
//	  - name: de-csa-unit
//	    when: {categories: [child_sexual_abuse, grooming]}
//	    instead_of: de-bka        # receives these instead of de-bka
//	  - when: {priority: urgent}
//	    copy_of: any              # a copy of every urgent notice
type Rule struct {
	// Name names the rule in decisions; default "<authority id>.rules[<i>]".
	Name string `yaml:"name"`
	When When   `yaml:"when"`
	// InsteadOf is the id of a primary authority of the same country that
	// this one replaces when the rule matches.
	InsteadOf string `yaml:"instead_of"`
	// CopyOf is the id of a primary authority whose notices this one
	// receives a copy of when the rule matches, or "any".
	CopyOf string `yaml:"copy_of"`
}

// When is the condition of a rule; every field set must hold, and an
// empty condition always holds.
type When struct {
	// Categories: the notice has one of these categories.
	Categories []string `yaml:"categories"`
	// Priority: the notice is urgent, or normal.
	Priority string `yaml:"priority"`
}

// Primary reports whether a is its country's primary authority: one
// without routing rules.
func (a *Authority) Primary() bool { return len(a.Rules) == 0 }

// checkRules validates the routing rules of every authority and names
// unnamed rules. It runs once the authorities are known.
func checkRules(c *Config, p *problems) {
	primary := map[string]*Authority{}
	for i := range c.Authorities {
		if a := &c.Authorities[i]; a.Primary() {
			primary[a.ID] = a
		}
	}
	names := map[string]string{}
	type replacement struct {
		field, authority string
		when             When
	}
	replacing := map[string][]replacement{} // by the id replaced
	for i := range c.Authorities {
		a := &c.Authorities[i]
		for j := range a.Rules {
			r := &a.Rules[j]
			f := fmt.Sprintf("authorities[%d].rules[%d]", i, j)
			if r.Name == "" {
				r.Name = fmt.Sprintf("%s.rules[%d]", a.ID, j)
			}
			if other, dup := names[r.Name]; dup {
				p.add(f+".name", "%q is already the name of %s", r.Name, other)
			}
			names[r.Name] = f
			for k, cat := range r.When.Categories {
				if !slices.Contains(notice.Categories, cat) {
					p.add(fmt.Sprintf("%s.when.categories[%d]", f, k), "must be one of %v, not %q", notice.Categories, cat)
				}
			}
			switch notice.Priority(r.When.Priority) {
			case "", notice.Urgent, notice.Normal:
			default:
				p.add(f+".when.priority", "must be urgent or normal, not %q", r.When.Priority)
			}
			switch {
			case (r.InsteadOf == "") == (r.CopyOf == ""):
				p.add(f, "set exactly one of instead_of (replace a primary authority) and copy_of (receive a copy)")
			case r.InsteadOf != "":
				t := target(primary, c, r.InsteadOf, a.ID, f+".instead_of", false, p)
				if t == nil {
					break
				}
				if t.Country != a.Country {
					p.add(f+".instead_of", "%s is the authority of %s, and %s is of %s: a replacement must be of the same country",
						t.ID, t.Country, a.ID, a.Country)
				}
				for _, o := range replacing[t.ID] {
					if o.authority != a.ID && overlap(o.when, r.When) {
						p.add(f+".when", "overlaps %s: %s and %s would both replace %s for some notices; narrow the conditions",
							o.field, o.authority, a.ID, t.ID)
					}
				}
				replacing[t.ID] = append(replacing[t.ID], replacement{f, a.ID, r.When})
			default:
				if r.CopyOf != CopyAny {
					target(primary, c, r.CopyOf, a.ID, f+".copy_of", true, p)
				}
			}
		}
	}
}

// target resolves the authority a rule names, reporting why it cannot.
func target(primary map[string]*Authority, c *Config, id, self, field string, copyOf bool, p *problems) *Authority {
	if id == self {
		p.add(field, "names the authority itself")
		return nil
	}
	if t := primary[id]; t != nil {
		return t
	}
	hint := ""
	if copyOf {
		hint = ", or any"
	}
	if c.Authority(id) != nil {
		p.add(field, "%s has rules of its own: name a country's primary authority (one without rules)%s", id, hint)
	} else {
		p.add(field, "no authority has the id %q: name a country's primary authority%s", id, hint)
	}
	return nil
}

// overlap reports whether some notice meets both conditions.
func overlap(a, b When) bool {
	if a.Priority != "" && b.Priority != "" && a.Priority != b.Priority {
		return false
	}
	if len(a.Categories) == 0 || len(b.Categories) == 0 {
		return true
	}
	for _, c := range a.Categories {
		if slices.Contains(b.Categories, c) {
			return true
		}
	}
	return false
}
