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
	var got []string
	for _, r := range ex.Recipients {
		var gs []string
		for _, g := range r.Grounds {
			gs = append(gs, g.Basis+"/"+g.Evidence)
		}
		got = append(got, r.Authority+":"+strings.Join(gs, ","))
	}
	want := []string{"at-police:follow_up/supersedes", "fr-police:offence/declared,follow_up/supersedes", "nl-police:offence/declared"}
	if !slices.Equal(got, want) {
		t.Errorf("recipients %q, want %q", got, want)
	}
	if errOut != "" {
		t.Errorf("stderr: %s", errOut)
	}

	code, out, errOut = runExplain(t, "--config", cfg, "--platform", "examplenet", three)
	if code != 0 || !strings.Contains(errOut, `"C-2" not given`) || !strings.Contains(out, "nl-police") || strings.Contains(out, "follow_up") {
		t.Errorf("without --earlier: exit %d, stderr %s, out %s", code, errOut, out)
	}
	if code, _, errOut := runExplain(t, "--config", cfg, "--platform", "examplenet", "--earlier", filepath.Join(dir, "none.json"), three); code != 2 {
		t.Errorf("missing --earlier file: exit %d, %s", code, errOut)
	}
}
