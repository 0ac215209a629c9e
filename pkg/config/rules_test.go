package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/config"
)

// routingBase has two primary authorities (DE, EU); cases append entries
// and settings.
const routingBase = `platforms:
  - id: examplenet
    name: ExampleNet Ltd
    tokens: ["%s"]
    establishment: IE
authorities:
  - id: de-bka
    country: DE
    name: Bundeskriminalamt
    tokens: ["%s"]
  - id: europol
    country: EU
    name: Europol
    tokens: ["%s"]
`

func routingConfig(extra string) string {
	return fmt.Sprintf(routingBase, sum("p-token"), sum("de-token"), sum("eu-token")) + extra
}

// secondary is an authority entry with rules (YAML list items, indented).
func secondary(id, cc, rules string) string {
	return fmt.Sprintf("  - id: %s\n    country: %s\n    name: %s\n    tokens: [%q]\n    rules:\n%s", id, cc, id, sum("t-"+id), rules)
}

func TestRulesAccepted(t *testing.T) {
	data := routingConfig(
		secondary("de-bka-csa", "DE", "      - name: csa\n        when: {categories: [child_sexual_abuse, grooming]}\n        instead_of: de-bka\n") +
			secondary("de-bka-night", "DE", "      - when: {priority: urgent, categories: [terrorism]}\n        instead_of: de-bka\n"+
				"      - when: {priority: normal}\n        copy_of: de-bka\n") +
			secondary("eu-247", "EU", "      - when: {priority: urgent}\n        copy_of: any\n") +
			"geo:\n  seen_window: 7d\n")
	c, err := config.Parse([]byte(data), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]config.Rule{
		nil, nil,
		{{Name: "csa", When: config.When{Categories: []string{"child_sexual_abuse", "grooming"}}, InsteadOf: "de-bka"}},
		{{Name: "de-bka-night.rules[0]", When: config.When{Priority: "urgent", Categories: []string{"terrorism"}}, InsteadOf: "de-bka"},
			{Name: "de-bka-night.rules[1]", When: config.When{Priority: "normal"}, CopyOf: "de-bka"}},
		{{Name: "eu-247.rules[0]", When: config.When{Priority: "urgent"}, CopyOf: "any"}},
	}
	for i, a := range c.Authorities {
		if !reflect.DeepEqual(a.Rules, want[i]) {
			t.Errorf("authorities[%d].rules = %+v, want %+v", i, a.Rules, want[i])
		}
		if a.Primary() != (want[i] == nil) {
			t.Errorf("authorities[%d].Primary() = %v", i, a.Primary())
		}
	}
	if c.Geo.SeenWindow != config.Duration(7*24*time.Hour) || c.Geo.Database != "" {
		t.Errorf("geo = %+v", c.Geo)
	}
}

func TestRulesRefused(t *testing.T) {
	tests := []struct {
		name, extra, field, msg string
	}{
		{"neither instead_of nor copy_of", secondary("de-x", "DE", "      - when: {priority: urgent}\n"),
			"authorities[2].rules[0]", "exactly one of instead_of"},
		{"both instead_of and copy_of", secondary("de-x", "DE", "      - instead_of: de-bka\n        copy_of: any\n"),
			"authorities[2].rules[0]", "exactly one of instead_of"},
		{"instead_of an unknown authority", secondary("de-x", "DE", "      - instead_of: de-lka\n"),
			"authorities[2].rules[0].instead_of", `no authority has the id "de-lka"`},
		{"instead_of another country's authority", secondary("fr-x", "FR", "      - instead_of: de-bka\n"),
			"authorities[2].rules[0].instead_of", "must be of the same country"},
		{"instead_of itself", secondary("de-x", "DE", "      - instead_of: de-x\n"),
			"authorities[2].rules[0].instead_of", "itself"},
		{"instead_of a secondary authority",
			secondary("de-x", "DE", "      - copy_of: any\n") + secondary("de-y", "DE", "      - instead_of: de-x\n"),
			"authorities[3].rules[0].instead_of", "has rules of its own"},
		{"copy_of an unknown authority", secondary("eu-x", "EU", "      - copy_of: all\n"),
			"authorities[2].rules[0].copy_of", `no authority has the id "all"`},
		{"unknown category", secondary("de-x", "DE", "      - when: {categories: [csam]}\n        instead_of: de-bka\n"),
			"authorities[2].rules[0].when.categories[0]", `not "csam"`},
		{"unknown priority", secondary("de-x", "DE", "      - when: {priority: high}\n        instead_of: de-bka\n"),
			"authorities[2].rules[0].when.priority", "urgent or normal"},
		{"misspelt condition", secondary("de-x", "DE", "      - when: {category: [grooming]}\n        instead_of: de-bka\n"),
			"authorities[2].rules[0].when.category", "unknown field"},
		{"misspelt action", secondary("de-x", "DE", "      - insteadof: de-bka\n"),
			"authorities[2].rules[0].insteadof", "unknown field"},
		{"rule names twice", secondary("de-x", "DE", "      - name: a\n        copy_of: any\n") + secondary("de-y", "DE", "      - name: a\n        copy_of: any\n"),
			"authorities[3].rules[0].name", `"a" is already the name of authorities[2].rules[0]`},
		{"two units replace one authority for the same notices",
			secondary("de-x", "DE", "      - when: {categories: [grooming, terrorism]}\n        instead_of: de-bka\n") +
				secondary("de-y", "DE", "      - when: {categories: [terrorism], priority: urgent}\n        instead_of: de-bka\n"),
			"authorities[3].rules[0].when", "would both replace de-bka"},
		{"a second primary authority", "  - id: de-lka\n    country: DE\n    name: LKA\n    tokens: [\"" + sum("lka") + "\"]\n",
			"authorities[2].country", "unless the other has rules"},
		{"geo database missing", "geo:\n  database: /nonexistent/geo.mmdb\n", "geo.database", "cannot read"},
		{"geo database a directory", "geo:\n  database: " + os.TempDir() + "\n", "geo.database", "not a file"},
		{"geo window not a duration", "geo:\n  seen_window: month\n", "geo.seen_window", `"month"`},
		{"geo misspelt", "geo:\n  databse: x\n", "geo.databse", "unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(routingConfig(tc.extra)), config.Options{})
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("accepted, or not a config error: %v", err)
			}
			// The first problem is the one; a misspelt action also leaves
			// the rule without one, a second problem.
			if len(ce.Problems) > 2 || !strings.HasPrefix(ce.Problems[0], tc.field+": ") || !strings.Contains(ce.Problems[0], tc.msg) {
				t.Errorf("problems %q, want the first at %s containing %q", ce.Problems, tc.field, tc.msg)
			}
		})
	}
}

// Replacements of one authority that never meet the same notice, and
// several rules of one unit, are fine.
func TestRulesDisjointReplacements(t *testing.T) {
	data := routingConfig(
		secondary("de-x", "DE", "      - when: {categories: [grooming]}\n        instead_of: de-bka\n"+
			"      - when: {categories: [terrorism], priority: normal}\n        instead_of: de-bka\n") +
			secondary("de-y", "DE", "      - when: {categories: [terrorism], priority: urgent}\n        instead_of: de-bka\n"))
	if _, err := config.Parse([]byte(data), config.Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestGeoDatabaseAccepted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "geo.mmdb")
	if err := os.WriteFile(path, []byte("whether it is a database is checked on opening"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse([]byte(routingConfig("geo:\n  database: "+path+"\n")), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Geo.Database != path || c.Geo.SeenWindow != config.DefaultSeenWindow {
		t.Errorf("geo = %+v", c.Geo)
	}
}

// Normalize (configurations built in code) checks rules too.
func TestNormalizeChecksRules(t *testing.T) {
	c := &config.Config{Authorities: []config.Authority{
		{ID: "de-bka", Country: "DE"},
		{ID: "de-x", Country: "DE", Rules: []config.Rule{{InsteadOf: "de-lka"}}},
	}}
	if _, err := config.Normalize(c); err == nil || !strings.Contains(err.Error(), "authorities[1].rules[0].instead_of") {
		t.Errorf("Normalize: %v", err)
	}
	c.Authorities[1].Rules[0].InsteadOf = "de-bka"
	n, err := config.Normalize(c)
	if err != nil {
		t.Fatal(err)
	}
	if n.Authorities[1].Rules[0].Name != "de-x.rules[0]" || c.Authorities[1].Rules[0].Name != "" {
		t.Errorf("names: normalised %q, original %q", n.Authorities[1].Rules[0].Name, c.Authorities[1].Rules[0].Name)
	}
}
