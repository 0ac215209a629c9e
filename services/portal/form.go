package portal

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	_ "time/tzdata" // the zones of the date-times, wherever the relay runs

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"

	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/notice"
)

// The notice form. Its inputs are named by the JSON paths of the notice
// ("suspects[0].ip_addresses[1].port"), so that each error of the API's
// validator, which names the same path, lands next to its input. Lists
// grow and shrink by submit buttons that draw the form again on the
// server: the form needs no script.

// kind is how a field is entered.
type kind string

const (
	kText     kind = "text"
	kArea     kind = "textarea"
	kChoice   kind = "select"
	kCheck    kind = "checkbox"
	kCountry  kind = "country"
	kDateTime kind = "datetime"
	kEmail    kind = "email"
	kURL      kind = "url"
	kPhone    kind = "tel"
	kPort     kind = "port"
	kYesNo    kind = "yesno"
	// kRefs is a list of references typed in one input.
	kRefs kind = "references"
)

// spec is one field of the form.
type spec struct {
	Name, Label, Hint string
	Kind              kind
	Options           []string
	Required          bool
	// List, when set, makes the field a list of groups of these fields.
	List []spec
	// Group, when set, makes the field one group of these fields.
	Group []spec
	// Singular names one item of a list ("suspect").
	Singular string
}

// singulars name one item of each list of the field table.
var singulars = map[string]string{"locations": "place", "suspects": "suspect", "victims": "victim",
	"content": "content item", "ip_addresses": "IP address", "prior_reports": "prior report"}

// formSpec is every field of a notice, from the field table the parser
// checks (notice.Fields), in the order the form shows them.
var formSpec = specs(notice.Fields())

func specs(fs []notice.Field) []spec {
	out := make([]spec, 0, len(fs))
	for _, f := range fs {
		sp := spec{Name: f.Name, Label: f.Label, Hint: f.Help, Required: f.Required}
		switch f.Kind {
		case notice.KindList:
			sp.List = specs(f.Fields)
			sp.Singular = singulars[f.Name]
			if sp.Singular == "" {
				sp.Singular = strings.ToLower(f.Label)
			}
		case notice.KindObject:
			sp.Group = specs(f.Fields)
		case notice.KindEnum:
			sp.Kind, sp.Options = kChoice, f.Values
		case notice.KindBool:
			// A required flag is a checkbox (unticked is false); an
			// optional one may also be left unstated.
			sp.Kind = kYesNo
			if f.Required {
				sp.Kind = kCheck
			}
		case notice.KindTime:
			sp.Kind = kDateTime
		case notice.KindCountry:
			sp.Kind = kCountry
		case notice.KindURL:
			sp.Kind = kURL
		case notice.KindPhone:
			sp.Kind = kPhone
		case notice.KindEmail:
			sp.Kind = kEmail
		case notice.KindPort:
			sp.Kind = kPort
		case notice.KindReferences:
			sp.Kind = kRefs
			sp.Hint = strings.TrimSpace(sp.Hint + fmt.Sprintf(" Separate them by spaces or commas; up to %d.", f.MaxItems))
		case notice.KindText:
			sp.Kind = kText
			if f.MaxLength >= 3000 {
				sp.Kind = kArea
			}
		default: // reference, token, IP address, SHA-256: typed as text
			sp.Kind = kText
		}
		if f.MaxLength > 0 && sp.Kind != kChoice && sp.Kind != kRefs {
			limit := fmt.Sprintf("up to %d characters", f.MaxLength)
			if f.Required {
				limit = fmt.Sprintf("1 to %d characters", f.MaxLength)
			}
			if sp.Hint == "" {
				sp.Hint = limit
			} else {
				sp.Hint += " " + strings.ToUpper(limit[:1]) + limit[1:] + "."
			}
		}
		if f.Path == "reference" {
			sp.Hint += " Filled in for you: sending this form twice sends one notice."
		}
		if f.OnlyIf != nil {
			sp.Hint = strings.TrimSpace(sp.Hint + fmt.Sprintf(" Only with %s %s.", f.OnlyIf.Field, strings.ReplaceAll(f.OnlyIf.Value, "_", " ")))
		}
		out = append(out, sp)
	}
	return out
}

// zones are the time zones a date-time may be given in.
var zones = []string{"UTC", "Europe/Lisbon", "Europe/Dublin", "Europe/London", "Europe/Paris", "Europe/Berlin",
	"Europe/Amsterdam", "Europe/Brussels", "Europe/Luxembourg", "Europe/Madrid", "Europe/Rome", "Europe/Vienna",
	"Europe/Prague", "Europe/Warsaw", "Europe/Budapest", "Europe/Bratislava", "Europe/Ljubljana", "Europe/Zagreb",
	"Europe/Copenhagen", "Europe/Stockholm", "Europe/Oslo", "Europe/Helsinki", "Europe/Tallinn", "Europe/Riga",
	"Europe/Vilnius", "Europe/Athens", "Europe/Sofia", "Europe/Bucharest", "Asia/Nicosia", "Europe/Malta",
	"Atlantic/Reykjavik", "Europe/Vaduz", "Atlantic/Canary", "America/New_York", "America/Los_Angeles", "Asia/Tokyo"}

// draft is the form as the person filled it in: its values by path.
type draft struct {
	vals url.Values
}

var indexRE = regexp.MustCompile(`^\[(\d+)\]`)

// indices returns the item numbers present for list path, in order.
func (d *draft) indices(path string) []int {
	seen := map[int]bool{}
	for k := range d.vals {
		rest, ok := strings.CutPrefix(k, path)
		if !ok {
			continue
		}
		if m := indexRE.FindStringSubmatch(rest); m != nil {
			if i, err := strconv.Atoi(m[1]); err == nil && i < 1000 {
				seen[i] = true
			}
		}
	}
	out := make([]int, 0, len(seen))
	for i := range seen {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// renumber rewrites the draft so that every list counts 0, 1, 2, ...,
// leaving out the item at path drop ("suspects[1]"), and adding an empty
// item to the list at path add ("suspects[0].ip_addresses").
func (d *draft) renumber(drop, add string) *draft {
	out := &draft{vals: url.Values{}}
	var walk func(specs []spec, from, to string)
	walk = func(specs []spec, from, to string) {
		for _, sp := range specs {
			f, t := from+sp.Name, to+sp.Name
			switch {
			case sp.List != nil:
				n := 0
				for _, i := range d.indices(f) {
					item := fmt.Sprintf("%s[%d]", f, i)
					if item == drop {
						continue
					}
					walk(sp.List, item+".", fmt.Sprintf("%s[%d].", t, n))
					n++
				}
				if f == add {
					walk(sp.List, "\x00", fmt.Sprintf("%s[%d].", t, n))
				}
			case sp.Group != nil:
				walk(sp.Group, f+".", t+".")
			default:
				// An item being added has no values yet, but its inputs
				// must exist for indices to find it.
				out.vals.Set(t, d.vals.Get(f))
				if sp.Kind == kDateTime {
					out.vals.Set(t+".zone", d.vals.Get(f+".zone"))
				}
			}
		}
	}
	walk(formSpec, "", "")
	return out
}

// body builds the notice's JSON object from the draft, as a platform
// would write it: empty inputs are left out, countries given by name
// become codes, date-times get their zone's offset, numbers become
// numbers. Whatever cannot be converted is passed on as typed, for the
// validator to name.
func (d *draft) body() map[string]any {
	var build func(specs []spec, prefix string) map[string]any
	build = func(specs []spec, prefix string) map[string]any {
		obj := map[string]any{}
		for _, sp := range specs {
			p := prefix + sp.Name
			switch {
			case sp.List != nil:
				var items []any
				for _, i := range d.indices(p) {
					items = append(items, build(sp.List, fmt.Sprintf("%s[%d].", p, i)))
				}
				if len(items) > 0 {
					obj[sp.Name] = items
				}
			case sp.Group != nil:
				if g := build(sp.Group, p+"."); len(g) > 0 {
					obj[sp.Name] = g
				}
			default:
				v := d.vals.Get(p)
				switch sp.Kind {
				case kCheck:
					obj[sp.Name] = v != ""
				case kYesNo:
					if v == "yes" || v == "no" {
						obj[sp.Name] = v == "yes"
					}
				case kPort:
					if v == "" {
						continue
					}
					if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
						obj[sp.Name] = n
					} else {
						obj[sp.Name] = v
					}
				case kCountry:
					if v != "" {
						obj[sp.Name] = countryCode(v)
					}
				case kRefs:
					if refs := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }); len(refs) > 0 {
						obj[sp.Name] = refs
					}
				case kDateTime:
					if v != "" {
						obj[sp.Name] = withZone(v, d.vals.Get(p+".zone"))
					}
				default:
					if v != "" {
						obj[sp.Name] = v
					}
				}
			}
		}
		return obj
	}
	return build(formSpec, "")
}

// withZone turns a datetime-local value and a zone into RFC 3339 with the
// zone's offset at that time; anything else stays as typed.
func withZone(local, zone string) string {
	var t time.Time
	var err error
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err = time.Parse(layout, strings.TrimSpace(local)); err == nil {
			break
		}
	}
	if err != nil {
		return local
	}
	if zone == "" {
		zone = "UTC"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil || !slices.Contains(zones, zone) {
		return local
	}
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, loc).Format(time.RFC3339)
}

// countryNames maps lower-case English names of countries to their codes.
var countryNames, countryList = func() (map[string]string, []countryOption) {
	names := map[string]string{}
	var list []countryOption
	for _, c := range country.Codes() {
		name := c
		if r, err := language.ParseRegion(c); err == nil {
			if n := display.English.Regions().Name(r); n != "" && n != "Unknown Region" {
				name = n
			}
		}
		switch c {
		case "EL":
			name = "Greece (EL)"
		case "UK":
			name = "United Kingdom (UK)"
		}
		names[strings.ToLower(name)] = c
		list = append(list, countryOption{Code: c, Name: name})
	}
	slices.SortFunc(list, func(a, b countryOption) int { return strings.Compare(a.Name, b.Name) })
	return names, list
}()

type countryOption struct{ Code, Name string }

// countryCode returns the code of a country given by code or by name;
// anything else as typed.
func countryCode(v string) string {
	t := strings.TrimSpace(v)
	if c, ok := countryNames[strings.ToLower(t)]; ok {
		return c
	}
	// "Germany (DE)", as a datalist may fill in.
	if i := strings.LastIndex(t, "("); i > 0 && strings.HasSuffix(t, ")") {
		if c, ok := country.Normalize(t[i+1 : len(t)-1]); ok {
			return c
		}
	}
	return v
}

// newKey is a fresh reference for a new form: sending the form twice
// sends the same reference, which the relay stores once.
func newKey() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}
