package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/cli"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/geo/geotest"
	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

const explainWait = 20 * time.Second

// explainDB is the geolocation database of these tests.
var explainDB = []geotest.Network{
	geotest.Country("85.214.0.0/16", "DE"),
	geotest.Country("2a01:4f8::/32", "DE"),
	geotest.Country("62.0.0.0/16", "AT"),
	geotest.Country("2a02:8388::/32", "AT"),
	geotest.AnonymousProxy("185.220.100.0/22", "DE"),
	geotest.Country("10.0.0.0/8", "DE"), // a special range: never counts whatever the database says
}

// explainConfig is the relaytest configuration as YAML (same tokens), with
// a geolocation database, a German CSA unit and an urgent desk.
func explainConfig(db string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "member_states: EU27\ngeo:\n  database: %s\nplatforms:\n", db)
	for _, p := range relaytest.Platforms {
		fmt.Fprintf(&b, "  - id: %s\n    name: %s\n    tokens: [%q]\n    establishment: IE\n    fallback: [establishment]\n",
			p, p, config.Digest("platform-token-"+p))
	}
	b.WriteString("authorities:\n")
	for cc, id := range relaytest.Authorities {
		fmt.Fprintf(&b, "  - id: %s\n    country: %s\n    name: %s\n    tokens: [%q]\n", id, cc, id, config.Digest("authority-token-"+id))
	}
	fmt.Fprintf(&b, `  - id: de-csa
    country: DE
    name: BKA child sexual abuse unit
    tokens: [%q]
    rules:
      - name: de-csa-unit
        when: {categories: [child_sexual_abuse]}
        instead_of: de-bka
  - id: eu-desk
    country: EU
    name: 24/7 desk
    tokens: [%q]
    rules:
      - name: urgent-desk
        when: {priority: urgent}
        copy_of: any
`, config.Digest("authority-token-de-csa"), config.Digest("authority-token-eu-desk"))
	return b.String()
}

func runExplain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	code := cli.Main(context.Background(), append([]string{"explain"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// ipNotice is a notice whose only clue is one address of a suspect.
func ipNotice(ref, ip string, proxy bool) map[string]any {
	n := relaytest.Notice(ref, false, "", "", "")
	addr := map[string]any{"ip": ip, "port": 50312, "seen_at": "2026-11-20T13:58:11Z", "event": "login"}
	if proxy {
		addr["possible_proxy"] = true
	}
	n["suspects"] = []map[string]any{{"account_id": "u-1", "ip_addresses": []any{addr}}}
	return n
}

type recipientView struct {
	Authority string                `json:"authority"`
	Country   string                `json:"country"`
	Grounds   []jurisdiction.Ground `json:"grounds"`
}

// TestExplainAgreesWithRelay submits the same notices to a running relay
// and to explain: the recipients and their grounds are the same in
// explain's output, the platform's status, every inbox, and the decided
// event, which equals explain's decision byte for byte.
//
// It includes the "done means" of the jurisdiction issue: a suspect's IP
// address in a Member State reaches that State with evidence ip; the same
// address marked as a proxy goes to the platform's fallback; explain says
// why in both cases.
func TestExplainAgreesWithRelay(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "geo.mmdb")
	if err := geotest.Write(db, geotest.Database{BuildEpoch: 1795000000}, explainDB...); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(explainConfig(db)), 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := config.Load(cfgPath, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) { *c = *loaded }})
	r.Tokens["authority:de-csa"] = "authority-token-de-csa"
	r.Tokens["authority:eu-desk"] = "authority-token-eu-desk"

	multi := relaytest.Notice("EXPLAIN-MULTI", true, "", "DE", "RO")
	multi["suspects"] = []map[string]any{{"country": "DE", "phone": "+43 660 1234567",
		"ip_addresses": []any{map[string]any{"ip": "2a02:8388:1::5", "seen_at": "2026-11-21T09:00:00Z"}}}}
	csa := relaytest.Notice("EXPLAIN-CSA", false, "", "", "")
	csa["category"] = "child_sexual_abuse"
	delete(csa, "exploitation")
	csa["victims"] = []map[string]any{{"phone": "0151 12345678", "country": "de", "minor": true}}
	stale := ipNotice("EXPLAIN-STALE", "85.214.132.117", false)
	stale["suspects"].([]map[string]any)[0]["ip_addresses"].([]any)[0].(map[string]any)["seen_at"] = "2026-06-01T00:00:00Z"

	ipGround := []jurisdiction.Ground{{Basis: "suspect", Evidence: "ip"}}
	fallback := []jurisdiction.Ground{{Basis: "establishment", Evidence: "configured"}}
	cases := []struct {
		notice map[string]any
		want   []recipientView
		// clue that must not count, and why
		ignored, reason string
	}{
		{notice: ipNotice("EXPLAIN-IP", "85.214.132.117", false),
			want: []recipientView{{"de-bka", "DE", ipGround}}},
		{notice: ipNotice("EXPLAIN-PROXY", "85.214.132.117", true),
			want:    []recipientView{{"ie-garda", "IE", fallback}},
			ignored: "suspects[0].ip_addresses[0]", reason: "possible_proxy"},
		{notice: ipNotice("EXPLAIN-IPV6", "2a01:4f8:c17:1::1", false),
			want: []recipientView{{"de-bka", "DE", ipGround}}},
		{notice: ipNotice("EXPLAIN-ANON", "185.220.101.4", false),
			want:    []recipientView{{"ie-garda", "IE", fallback}},
			ignored: "suspects[0].ip_addresses[0]", reason: "anonymiser"},
		{notice: ipNotice("EXPLAIN-PRIVATE", "10.20.30.40", false),
			want:    []recipientView{{"ie-garda", "IE", fallback}},
			ignored: "suspects[0].ip_addresses[0]", reason: "special_address"},
		{notice: stale,
			want:    []recipientView{{"ie-garda", "IE", fallback}},
			ignored: "suspects[0].ip_addresses[0]", reason: "outside_window"},
		{notice: multi, want: []recipientView{
			{"at-police", "AT", []jurisdiction.Ground{{Basis: "suspect", Evidence: "phone"}, {Basis: "suspect", Evidence: "ip"}}},
			{"de-bka", "DE", []jurisdiction.Ground{{Basis: "suspect", Evidence: "declared"}}},
			{"ro-police", "RO", []jurisdiction.Ground{{Basis: "victim", Evidence: "declared"}}},
			{"eu-desk", "EU", []jurisdiction.Ground{{Basis: "suspect", Evidence: "declared"}, {Basis: "victim", Evidence: "declared"},
				{Basis: "suspect", Evidence: "phone"}, {Basis: "suspect", Evidence: "ip"}}},
		}},
		{notice: csa, want: []recipientView{
			{"de-csa", "DE", []jurisdiction.Ground{{Basis: "victim", Evidence: "declared"}, {Basis: "victim", Evidence: "phone"}}},
		}},
	}

	decisions := map[string]cli.Explanation{} // by reference
	ids := map[string]string{}                // reference by notice id
	wantInbox := map[string]map[string][]jurisdiction.Ground{}
	for _, tc := range cases {
		ref := tc.notice["reference"].(string)
		body, _ := json.Marshal(tc.notice)
		file := filepath.Join(dir, ref+".json")
		if err := os.WriteFile(file, body, 0o644); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runExplain(t, "--config", cfgPath, "--platform", "examplenet", file)
		if code != 0 {
			t.Fatalf("%s: explain exit %d: %s", ref, code, stderr)
		}
		var ex cli.Explanation
		if err := json.Unmarshal([]byte(stdout), &ex); err != nil {
			t.Fatalf("%s: explain output %s: %v", ref, stdout, err)
		}
		decisions[ref] = ex
		if got := views(ex.Recipients); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: explain recipients %+v, want %+v", ref, got, tc.want)
		}
		if ex.GeoDatabase == nil || ex.GeoDatabase.BuiltAt != "2026-11-18T11:06:40Z" || ex.GeoDatabase.Type != "GeoLite2-Country" {
			t.Errorf("%s: geo_database %+v", ref, ex.GeoDatabase)
		}
		if tc.ignored != "" {
			why := ""
			for _, c := range ex.Clues {
				if c.Field == tc.ignored {
					why = c.Ignored
				}
			}
			if why != tc.reason || !ex.Fallback {
				t.Errorf("%s: explain says %s ignored for %q (fallback %v), want %q:\n%s", ref, tc.ignored, why, ex.Fallback, tc.reason, stdout)
			}
		}
		id := r.Submit("examplenet", tc.notice)
		ids[id] = ref
		for _, w := range tc.want {
			if wantInbox[w.Authority] == nil {
				wantInbox[w.Authority] = map[string][]jurisdiction.Ground{}
			}
			wantInbox[w.Authority][id] = w.Grounds
		}
	}

	// The platform's status.
	for id, ref := range ids {
		var st struct {
			Recipients []recipientView `json:"recipients"`
		}
		relaytest.Eventually(t, explainWait, ref+" routed", func() bool {
			return r.Do("GET", "/v1/notices/"+id, "platform:examplenet", nil).JSON(&st) == nil && len(st.Recipients) > 0
		})
		if want := views(decisions[ref].Recipients); !reflect.DeepEqual(st.Recipients, want) {
			t.Errorf("%s: status recipients %+v, explain %+v", ref, st.Recipients, want)
		}
	}

	// Every inbox.
	for auth, want := range wantInbox {
		got := map[string][]jurisdiction.Ground{}
		for _, d := range r.InboxUntil(auth, len(want), explainWait) {
			b, _ := json.Marshal(d.Notice["grounds"])
			var gs []jurisdiction.Ground
			if err := json.Unmarshal(b, &gs); err != nil {
				t.Fatal(err)
			}
			got[d.NoticeID] = gs
			r.Ack(auth, d.ID)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("inbox of %s: grounds %v, want %v", auth, got, want)
		}
	}
	for _, other := range []string{"fr-police", "nl-police", "europol"} {
		if ds := r.Inbox(other, 100); len(ds) != 0 {
			t.Errorf("%s received %d deliveries", other, len(ds))
		}
	}

	// The decided events hold explain's decisions, and no address.
	byBody := map[string]cli.Explanation{}
	for _, tc := range cases {
		body, _ := json.Marshal(tc.notice)
		n, errs := notice.Parse(body)
		if errs != nil {
			t.Fatal(errs)
		}
		_, sum := notice.Canonical(n)
		byBody[sum] = decisions[tc.notice["reference"].(string)]
	}
	for _, e := range decidedEvents(t, r, len(cases)) {
		want, ok := byBody[e.BodySHA256]
		if !ok {
			t.Errorf("decided event of an unknown notice %s", e.BodySHA256)
			continue
		}
		got, _ := json.Marshal(e.Decision)
		exp, _ := json.Marshal(want.Decision)
		if string(got) != string(exp) {
			t.Errorf("decided event\n %s\nexplain\n %s", got, exp)
		}
		for _, secret := range []string{"85.214", "2a01:4f8", "2a02:8388", "185.220", "10.20.30.40", "1234567", "12345678"} {
			if strings.Contains(string(got), secret) {
				t.Errorf("decided event holds %q: %s", secret, got)
			}
		}
	}

	// The database replaced while the relay runs: the same address now
	// locates in NL, for the relay and for explain.
	if err := geotest.Replace(db, geotest.Database{BuildEpoch: 1795100000}, geotest.Country("85.214.0.0/16", "NL")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "reload.json")
	body, _ := json.Marshal(ipNotice("EXPLAIN-RELOAD", "85.214.132.117", false))
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runExplain(t, "--platform", "examplenet", file, "--config", cfgPath)
	if code != 0 || !strings.Contains(stdout, `"authority": "nl-police"`) || !strings.Contains(stdout, `"built_at": "2026-11-19T14:53:20Z"`) {
		t.Fatalf("explain after the reload: %d %s %s", code, stdout, stderr)
	}
	// The relay checks the file at most once a second; each attempt is a
	// new notice until one is routed with the new database.
	for i := 0; ; i++ {
		id := r.Submit("examplenet", ipNotice(fmt.Sprintf("EXPLAIN-RELOAD-%d", i), "85.214.132.117", false))
		var st struct {
			Recipients []recipientView `json:"recipients"`
		}
		relaytest.Eventually(t, explainWait, "routed", func() bool {
			return r.Do("GET", "/v1/notices/"+id, "platform:examplenet", nil).JSON(&st) == nil && len(st.Recipients) > 0
		})
		if st.Recipients[0].Authority == "nl-police" {
			break
		}
		if st.Recipients[0].Authority != "de-bka" || i > 100 {
			t.Fatalf("after the reload: %+v", st.Recipients)
		}
		time.Sleep(100 * time.Millisecond) // a new notice, not a poll: the old database may answer a few
	}
}

func views(rs []jurisdiction.Recipient) []recipientView {
	out := make([]recipientView, len(rs))
	for i, r := range rs {
		out[i] = recipientView{r.Authority, r.Country, r.Grounds}
	}
	return out
}

// decidedEvents reads the events stream until it holds n decided events.
func decidedEvents(t *testing.T, r *relaytest.Relay, n int) []*event.Event {
	t.Helper()
	js, err := jetstream.New(r.Conn())
	if err != nil {
		t.Fatal(err)
	}
	var out []*event.Event
	relaytest.Eventually(t, explainWait, fmt.Sprintf("%d decided events", n), func() bool {
		out = nil
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cons, err := js.OrderedConsumer(ctx, stream.Events, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{stream.EventSubject("*", string(event.Decided))}})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := cons.FetchNoWait(500)
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			e, err := event.Decode(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		return len(out) >= n
	})
	return out
}

func TestExplainExitStatus(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "geo.mmdb")
	if err := geotest.Write(db, geotest.Database{}, explainDB...); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(explainConfig(db)), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"reference": "R-1", "category": "other", "imminent_threat": false, "suspicion": "s",
		"suspects": [{"ip_addresses": [{"ip": "85.214.0.1"}]}]}`)
	bad := write("bad.json", `{"reference": "R 1", "category": "other", "suspicion": "s",
		"suspects": [{"ip_addresses": [{"ip": "85.214.0.1", "possible_proxy": "yes"}]}]}`)
	badConfig := write("bad.yaml", "platforms: []\n")
	noDB := write("nodb.yaml", strings.Replace(explainConfig(db), db, filepath.Join(dir, "missing.mmdb"), 1))
	notDB := write("notdb.yaml", strings.Replace(explainConfig(db), db, bad, 1))
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{"good", []string{"--config", cfgPath, "--platform", "othernet", good}, 0, `"authority": "de-bka"`, nil},
		{"flags after the file", []string{good, "--config", cfgPath, "--platform", "othernet"}, 0, `"evidence": "ip"`, nil},
		{"invalid notice", []string{"--config", cfgPath, "--platform", "examplenet", bad}, 1, "",
			[]string{"3 problem(s)", "reference: ", "imminent_threat: is required", "suspects[0].ip_addresses[0].possible_proxy: must be a boolean"}},
		{"not JSON", []string{"--config", cfgPath, "--platform", "examplenet", badConfig}, 1, "", []string{"(body): is not valid JSON"}},
		{"unknown platform", []string{"--config", cfgPath, "--platform", "nonet", good}, 2, "", []string{`no platform "nonet"`, "examplenet, othernet"}},
		{"missing platform", []string{"--config", cfgPath, good}, 2, "", []string{"--platform are required"}},
		{"missing config", []string{"--platform", "examplenet", good}, 2, "", []string{"--config and"}},
		{"bad config", []string{"--config", badConfig, "--platform", "examplenet", good}, 2, "", []string{"platforms: at least one platform"}},
		{"missing database", []string{"--config", noDB, "--platform", "examplenet", good}, 2, "", []string{"geo.database: cannot read"}},
		{"database not a database", []string{"--config", notDB, "--platform", "examplenet", good}, 1, "", []string{"not a usable MaxMind DB"}},
		{"no notice file argument", []string{"--config", cfgPath, "--platform", "examplenet"}, 2, "", []string{"want one NOTICE.json"}},
		{"two files", []string{"--config", cfgPath, "--platform", "examplenet", good, good}, 2, "", []string{"unexpected argument"}},
		{"missing file", []string{"--config", cfgPath, "--platform", "examplenet", filepath.Join(dir, "nope.json")}, 2, "", []string{"reading the notice"}},
		{"unknown flag", []string{"--cfg", cfgPath, good}, 2, "", nil},
		{"help", []string{"-h"}, 0, "", []string{"usage: noticerelay explain"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runExplain(t, tc.args...)
			if code != tc.code || !strings.Contains(stdout, tc.stdout) {
				t.Errorf("exit %d, want %d; stdout %s; stderr %s", code, tc.code, stdout, stderr)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
		})
	}
}
