package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/noticerelay/noticerelay/pkg/cli"
	"github.com/noticerelay/noticerelay/pkg/geo/geotest"
	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
)

// TestExplainFollowUp: with the earlier notices given, explain adds their
// recipients with basis follow_up, through a chain, as routing does; an
// earlier notice not given is named on stderr.
func TestExplainFollowUp(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "geo.mmdb")
	if err := geotest.Write(db, geotest.Database{}, explainDB...); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := write("config.yaml", explainConfig(db))
	one := write("one.json", `{"reference": "C-1", "category": "other", "imminent_threat": false, "suspicion": "s",
		"locations": [{"country": "AT"}]}`)
	two := write("two.json", `{"reference": "C-2", "category": "other", "imminent_threat": false, "suspicion": "s",
		"locations": [{"country": "FR"}], "follow_up_of": "C-1"}`)
	three := write("three.json", `{"reference": "C-3", "category": "other", "imminent_threat": false, "suspicion": "s",
		"locations": [{"country": "NL"}, {"country": "FR"}], "supersedes": "C-2"}`)

	code, out, errOut := runExplain(t, "--config", cfg, "--platform", "examplenet", "--earlier", one, "--earlier", two, three)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var ex cli.Explanation
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatal(err)
	}
	got := recipientsOf(ex.Recipients)
	want := []string{"at-police:follow_up/supersedes", "fr-police:offence/declared,follow_up/supersedes", "nl-police:offence/declared"}
	if !slices.Equal(got, want) {
		t.Errorf("recipients %q, want %q", got, want)
	}
	if errOut != "" || ex.IfEscalated != nil {
		t.Errorf("stderr: %s, if_escalated %v (no escalation configured)", errOut, ex.IfEscalated)
	}

	// de-bka escalates to europol: a follow-up of an urgent notice to
	// de-bka also reaches europol if that notice was escalated, and only
	// then (if_escalated); of a normal one, never.
	escCfg := write("escalation.yaml", strings.Replace(explainConfig(db), "    name: de-bka\n", "    name: de-bka\n    escalation: europol\n", 1))
	fu := []string{"de-bka:follow_up/follow_up_of", "fr-police:offence/declared"}
	for _, tc := range []struct {
		imminent              string
		recipients, escalated []string
	}{
		// eu-desk has a copy of every urgent notice (its rule).
		{"true", append(fu, "eu-desk:follow_up/follow_up_of"), []string{"europol:follow_up/follow_up_of"}},
		{"false", fu, nil},
	} {
		urgent := write("urgent.json", `{"reference": "U-1", "category": "other", "imminent_threat": `+tc.imminent+`, "suspicion": "s",
			"locations": [{"country": "DE"}]}`)
		fu := write("fu.json", `{"reference": "U-2", "category": "other", "imminent_threat": false, "suspicion": "s",
			"locations": [{"country": "FR"}], "follow_up_of": "U-1"}`)
		code, out, errOut := runExplain(t, "--config", escCfg, "--platform", "examplenet", "--earlier", urgent, fu)
		var ex cli.Explanation
		if err := json.Unmarshal([]byte(out), &ex); code != 0 || err != nil {
			t.Fatalf("exit %d: %s %v", code, errOut, err)
		}
		if got := recipientsOf(ex.Recipients); !slices.Equal(got, tc.recipients) {
			t.Errorf("imminent %s: recipients %q, want %q", tc.imminent, got, tc.recipients)
		}
		if got := recipientsOf(ex.IfEscalated); !slices.Equal(got, tc.escalated) {
			t.Errorf("imminent %s: if_escalated %q, want %q", tc.imminent, got, tc.escalated)
		}
	}

	code, out, errOut = runExplain(t, "--config", cfg, "--platform", "examplenet", three)
	if code != 0 || !strings.Contains(errOut, `"C-2" not given`) || !strings.Contains(out, "nl-police") || strings.Contains(out, "follow_up") {
		t.Errorf("without --earlier: exit %d, stderr %s, out %s", code, errOut, out)
	}
	if code, _, errOut := runExplain(t, "--config", cfg, "--platform", "examplenet", "--earlier", filepath.Join(dir, "none.json"), three); code != 2 {
		t.Errorf("missing --earlier file: exit %d, %s", code, errOut)
	}
}

// recipientsOf returns each recipient as "authority:basis/evidence,...".
func recipientsOf(rs []jurisdiction.Recipient) []string {
	var out []string
	for _, r := range rs {
		var gs []string
		for _, g := range r.Grounds {
			gs = append(gs, g.Basis+"/"+g.Evidence)
		}
		out = append(out, r.Authority+":"+strings.Join(gs, ","))
	}
	return out
}
