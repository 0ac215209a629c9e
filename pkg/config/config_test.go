package config_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/web"
)

// The plain tokens behind the digests in testdata/example.yaml.
const (
	platformPlain  = "examplenet-token-0000000001"
	platformDigest = "sha256:194c6519b5f2dd27c07513789703f118f9785430333ed9d6e8f7b48a8d8b801d"
	authorityPlain = "de-bka-token-000000000001"
	authDigest     = "sha256:ae58bcd6ef8096f5cd5c0290de7b069b9a8fd0a4625d81ee9ef0154b5568e8a2"
)

// sum is the "sha256:<hex>" digest of plain, computed independently of
// config.Digest.
// testHash is an argon2id hash of "correct horse", as `noticerelay passwd` prints.
var testHash = func() string {
	h, err := web.HashPassword("correct horse")
	if err != nil {
		panic(err)
	}
	return h
}()

func sum(plain string) string {
	s := sha256.Sum256([]byte(plain))
	return "sha256:" + hex.EncodeToString(s[:])
}

func example(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// edit replaces old, which must occur exactly once, by new.
type edit struct{ old, new string }

func apply(t *testing.T, base string, edits []edit, extra string) string {
	t.Helper()
	for _, e := range edits {
		if n := strings.Count(base, e.old); n != 1 {
			t.Fatalf("edit %q: found %d times in the base configuration, want once", e.old, n)
		}
		base = strings.Replace(base, e.old, e.new, 1)
	}
	return base + extra
}

// authority is a YAML list item for authorities:, with a fresh token.
func authority(id, cc string) string {
	return fmt.Sprintf("  - id: %s\n    country: %s\n    name: Authority %s\n    tokens: [%q]\n", id, cc, id, sum("token-of-"+id))
}

func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *config.Error", err, err)
	}
	return ce.Problems
}

func TestExampleLoads(t *testing.T) {
	c, err := config.Load(filepath.Join("testdata", "example.yaml"), config.Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.NATS.URL != "nats://127.0.0.1:4222" || c.NATS.Listen != "127.0.0.1:4222" {
		t.Errorf("nats = %+v", c.NATS)
	}
	if c.HTTP.Listen != "127.0.0.1:8080" || c.MemberStates != "EU27" {
		t.Errorf("http.listen = %q, member_states = %q", c.HTTP.Listen, c.MemberStates)
	}
	if len(c.Platforms) != 1 || len(c.Authorities) != 1 {
		t.Fatalf("%d platforms, %d authorities, want 1 and 1", len(c.Platforms), len(c.Authorities))
	}
	p := c.Platform("examplenet")
	if p == nil {
		t.Fatal(`Platform("examplenet") = nil`)
	}
	if p.Name != "ExampleNet Ltd" || p.Establishment != "IE" || p.LegalRepresentative != "" ||
		!slices.Equal(p.Fallback, []string{"establishment"}) {
		t.Errorf("platform = %+v", *p)
	}
	if len(p.Tokens) != 1 || p.Tokens[0].String() != platformDigest || p.Tokens[0] != config.Digest(platformPlain) {
		t.Errorf("platform tokens = %v, want [%s]", p.Tokens, platformDigest)
	}
	a := c.Authority("de-bka")
	if a == nil {
		t.Fatal(`Authority("de-bka") = nil`)
	}
	if a.Country != "DE" || a.Name != "Bundeskriminalamt" {
		t.Errorf("authority = %+v", *a)
	}
	if len(a.Tokens) != 1 || a.Tokens[0].String() != authDigest || a.Tokens[0] != config.Digest(authorityPlain) {
		t.Errorf("authority tokens = %v, want [%s]", a.Tokens, authDigest)
	}
	if c.Platform("de-bka") != nil || c.Authority("examplenet") != nil || c.Platform("nope") != nil {
		t.Error("lookups by the wrong kind of id or an unknown id must return nil")
	}
	// Defaults the example leaves out.
	if time.Duration(c.Retention.Notices) != 30*24*time.Hour || time.Duration(c.Inbox.Lease) != 60*time.Second {
		t.Errorf("retention.notices = %v, inbox.lease = %v", time.Duration(c.Retention.Notices), time.Duration(c.Inbox.Lease))
	}
}

func TestDefaults(t *testing.T) {
	minimal := "platforms:\n  - id: examplenet\n    name: ExampleNet Ltd\n    tokens: [\"" + platformDigest + "\"]\n" +
		"authorities:\n" + authority("de-bka", "DE")
	tests := []struct {
		name  string
		extra string
		check func(*config.Config) error
	}{
		{"defaults", "", func(c *config.Config) error {
			want := config.Config{
				NATS:         config.NATS{URL: "nats://127.0.0.1:4222"},
				HTTP:         config.HTTP{Listen: "127.0.0.1:8080", StoreTimeout: config.Duration(5 * time.Second), BodyTimeout: config.Duration(10 * time.Second)},
				MemberStates: "EU27",
				Retention:    config.Retention{Notices: config.Duration(720 * time.Hour)},
				Inbox:        config.Inbox{Lease: config.Duration(60 * time.Second)},
				Limits: config.Limits{MaxInFlight: 1024, MaxConnections: 4096, MaxConnectionsPerSource: 256,
					PerCaller:       config.PerCaller{Rate: 1000, Burst: 2000, Concurrency: 64, LargeBodyRate: 4},
					AttachmentBytes: config.DefaultAttachmentBytes, AttachmentsPerNotice: config.DefaultAttachmentsPerNotice},
				Deliveries: config.Deliveries{UrgentDeadline: config.Duration(15 * time.Minute), PoisonAttempts: 5,
					Webhook: config.WebhookSettings{Timeout: config.Duration(10 * time.Second), MaxAttempts: 12,
						Backoff: config.Duration(time.Second), MaxBackoff: config.Duration(10 * time.Minute)}},
				Geo:   config.Geo{SeenWindow: config.DefaultSeenWindow},
				Audit: config.Audit{RejectionWindow: config.Duration(time.Minute)},
			}
			got := *c
			got.Platforms, got.Authorities = nil, nil
			if !reflect.DeepEqual(got, want) {
				return fmt.Errorf("got %+v\nwant %+v", got, want)
			}
			p := c.Platforms[0]
			if p.Establishment != "" || p.LegalRepresentative != "" || p.Fallback != nil {
				return fmt.Errorf("platform = %+v", p)
			}
			return nil
		}},
		{"explicit values win", "http:\n  listen: 0.0.0.0:9000\n  store_timeout: 2s\nmember_states: EEA\nretention:\n  notices: 7d\ninbox:\n  lease: 90s\nlimits:\n  max_in_flight: 10\n  notice_store_bytes: 1000\n  max_connections: 50\n  max_connections_per_source: 5\n  per_caller:\n    rate: 2.5\n    concurrency: 3\nnats:\n  replicas: 3\n",
			func(c *config.Config) error {
				if c.HTTP.Listen != "0.0.0.0:9000" || time.Duration(c.HTTP.StoreTimeout) != 2*time.Second || c.MemberStates != "EEA" || time.Duration(c.Retention.Notices) != 7*24*time.Hour ||
					time.Duration(c.Inbox.Lease) != 90*time.Second || c.Limits.MaxInFlight != 10 || c.Limits.NoticeStoreBytes != 1000 ||
					c.Limits.MaxConnections != 50 || c.Limits.MaxConnectionsPerSource != 5 ||
					c.Limits.PerCaller != (config.PerCaller{Rate: 2.5, Burst: 5, Concurrency: 3, LargeBodyRate: 4}) || c.NATS.Replicas != 3 {
					return fmt.Errorf("got %+v", *c)
				}
				return nil
			}},
		{"30d is 720h", "retention:\n  notices: 30d\n", func(c *config.Config) error {
			if got := time.Duration(c.Retention.Notices); got != 720*time.Hour {
				return fmt.Errorf("retention.notices = %v, want 720h", got)
			}
			return nil
		}},
		{"explicit nulls are absent", "http: null\nretention:\n  notices: null\n", func(c *config.Config) error {
			if c.HTTP.Listen != "127.0.0.1:8080" || time.Duration(c.Retention.Notices) != 720*time.Hour {
				return fmt.Errorf("got %+v", *c)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(minimal+tt.extra), config.Options{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := tt.check(c); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestRefused: each configuration is refused with exactly one problem,
// which names the field.
func TestRefused(t *testing.T) {
	base := example(t)
	tests := []struct {
		name  string
		edits []edit
		extra string
		opt   config.Options
		field string // the problem must start with field + ": "
		msg   string // and contain msg
	}{
		// Unknown fields.
		{name: "misspelt top-level key", edits: []edit{{"http:\n", "htpp:\n"}}, field: "htpp", msg: "unknown field"},
		{name: "misspelt nats key", edits: []edit{{"  listen: 127.0.0.1:4222", "  lsiten: 127.0.0.1:4222"}}, field: "nats.lsiten", msg: "unknown field"},
		{name: "misspelt platform key", edits: []edit{{"    establishment: IE", "    establishmnet: IE"}}, field: "platforms[0].establishmnet", msg: "unknown field"},
		{name: "misspelt authority key", edits: []edit{{"    country: DE", "    country: DE\n    contry: DE"}}, field: "authorities[0].contry", msg: "unknown field"},
		{name: "unknown key under retention", extra: "retention:\n  notice: 30d\n", field: "retention.notice", msg: "unknown field"},
		{name: "key set twice", edits: []edit{{"    name: ExampleNet Ltd", "    name: ExampleNet Ltd\n    name: Other"}}, field: "platforms[0].name", msg: "twice"},
		{name: "wrong type", extra: "limits:\n  max_in_flight: many\n", field: "limits.max_in_flight", msg: "whole number"},
		{name: "list where a value belongs", edits: []edit{{"    country: DE", "    country: [DE]"}}, field: "authorities[0].country"},
		{name: "value where a list belongs", edits: []edit{{"fallback: [establishment]", "fallback: establishment"}}, field: "platforms[0].fallback", msg: "list"},

		// Portal users.
		{name: "portal user with a plain password", edits: []edit{{"    establishment: IE", "    establishment: IE\n    users: [{id: alice, name: Alice, password: hunter2}]"}},
			field: "platforms[0].users[0].password", msg: "argon2id"},
		{name: "portal user without a name", edits: []edit{{"    establishment: IE", "    establishment: IE\n    users: [{id: alice, password: '" + testHash + "'}]"}},
			field: "platforms[0].users[0].name", msg: "required"},
		{name: "portal user listed twice", edits: []edit{{"    establishment: IE", "    establishment: IE\n    users: [{id: alice, name: A, password: '" + testHash + "'}, {id: alice, name: B, password: '" + testHash + "'}]"}},
			field: "platforms[0].users[1].id", msg: "twice"},
		{name: "portal user with a bad id", edits: []edit{{"    establishment: IE", "    establishment: IE\n    users: [{id: Alice/1, name: A, password: '" + testHash + "'}]"}},
			field: "platforms[0].users[0].id", msg: "[a-z0-9-]"},

		// member_states.
		{name: "member_states EU28", edits: []edit{{"member_states: EU27", "member_states: EU28"}}, field: "member_states", msg: "EU27 or EEA"},
		{name: "member_states lower case", edits: []edit{{"member_states: EU27", "member_states: eea"}}, field: "member_states"},

		// Authority countries.
		{name: "unknown country", edits: []edit{{"country: DE", "country: XX"}}, field: "authorities[0].country", msg: `"XX"`},
		{name: "country outside EU27", edits: []edit{{"country: DE", "country: NO"}}, field: "authorities[0].country", msg: "EU27"},
		{name: "territory is not a Member State", edits: []edit{{"country: DE", "country: GP"}}, field: "authorities[0].country"},
		{name: "empty country", edits: []edit{{"country: DE", "country: ''"}}, field: "authorities[0].country"},
		{name: "two authorities for one country", extra: authority("de-lka", "DE"), field: "authorities[1].country", msg: "at most one per country"},
		{name: "country case does not make it another", extra: authority("de-lka", "de"), field: "authorities[1].country", msg: "at most one per country"},
		{name: "EL and GR are one country", extra: authority("el-police", "EL") + authority("gr-police", "GR"), field: "authorities[2].country", msg: "GR already has an authority"},
		{name: "GR and EL are one country", extra: authority("gr-police", "GR") + authority("el-police", "EL"), field: "authorities[2].country", msg: "GR already has an authority"},
		{name: "two Europols", extra: authority("europol", "EU") + authority("europol-2", "EU"), field: "authorities[2].country", msg: "at most one per country"},

		// Ids.
		{name: "authority id of a platform", edits: []edit{{"id: de-bka", "id: examplenet"}}, field: "authorities[0].id", msg: "already used by platforms[0].id"},
		{name: "authority ids twice", extra: authority("de-bka", "FR"), field: "authorities[1].id", msg: "already used by authorities[0].id"},
		{name: "id with upper case", edits: []edit{{"id: examplenet", "id: ExampleNet"}}, field: "platforms[0].id", msg: "[a-z0-9-]{2,64}"},
		{name: "id with underscore", edits: []edit{{"id: de-bka", "id: de_bka"}}, field: "authorities[0].id", msg: "[a-z0-9-]{2,64}"},
		{name: "id too short", edits: []edit{{"id: examplenet", "id: e"}}, field: "platforms[0].id"},
		{name: "id too long", edits: []edit{{"id: examplenet", "id: " + strings.Repeat("e", 65)}}, field: "platforms[0].id"},
		{name: "authority id platform", edits: []edit{{"id: de-bka", "id: platform"}}, field: "authorities[0].id", msg: "reserved"},
		{name: "notify without url", edits: []edit{{"    establishment: IE", "    establishment: IE\n    notify: {secret_env: PATH}"}}, field: "platforms[0].notify.url", msg: "required"},
		{name: "notify url not https", edits: []edit{{"    establishment: IE", "    establishment: IE\n    notify: {url: 'http://lea.example.net/hook', secret_env: PATH}"}}, field: "platforms[0].notify.url", msg: "https://"},
		{name: "notify without secret", edits: []edit{{"    establishment: IE", "    establishment: IE\n    notify: {url: 'https://lea.example.net/hook'}"}}, field: "platforms[0].notify.secret_env", msg: "required"},
		{name: "notify misspelt", edits: []edit{{"    establishment: IE", "    establishment: IE\n    notify: {url: 'https://lea.example.net/hook', secret_env: PATH, secret: X}"}}, field: "platforms[0].notify.secret", msg: "unknown field"},
		{name: "id missing", edits: []edit{{"  - id: examplenet                # [a-z0-9-]{2,64}\n    name", "  - name"}}, field: "platforms[0].id"},

		// Token digests.
		{name: "digest too short", edits: []edit{{platformDigest, platformDigest[:len(platformDigest)-1]}}, field: "platforms[0].tokens[0]", msg: "malformed digest"},
		{name: "digest too long", edits: []edit{{platformDigest, platformDigest + "0"}}, field: "platforms[0].tokens[0]", msg: "malformed digest"},
		{name: "digest in upper-case hex", edits: []edit{{authDigest, strings.ToUpper(authDigest[:7]) + strings.ToUpper(authDigest[7:])}}, field: "authorities[0].tokens[0]", msg: "malformed digest"},
		{name: "digest hex upper-case", edits: []edit{{authDigest, "sha256:" + strings.ToUpper(authDigest[7:])}}, field: "authorities[0].tokens[0]", msg: "malformed digest"},
		{name: "sha256: with junk", edits: []edit{{authDigest, "sha256:junk"}}, field: "authorities[0].tokens[0]", msg: "malformed digest"},
		{name: "sha256: with junk in dev", edits: []edit{{authDigest, "sha256:" + strings.Repeat("z", 64)}}, opt: config.Options{AllowPlainTokens: true}, field: "authorities[0].tokens[0]", msg: "malformed digest"},
		{name: "no tokens", edits: []edit{{`tokens: ["` + authDigest + `"]`, "tokens: []"}}, field: "authorities[0].tokens", msg: "at least one"},
		{name: "plain token outside dev", edits: []edit{{platformDigest, platformPlain}}, field: "platforms[0].tokens[0]", msg: "plain tokens are not allowed"},
		{name: "short plain token in dev", edits: []edit{{platformDigest, "short"}}, opt: config.Options{AllowPlainTokens: true}, field: "platforms[0].tokens[0]", msg: "too short"},
		{name: "token of a platform used by an authority", edits: []edit{{authDigest, platformDigest}}, field: "authorities[0].tokens[0]", msg: "already used by platforms[0].tokens[0]"},
		{name: "token twice in one list", edits: []edit{{`["` + authDigest + `"]`, `["` + authDigest + `", "` + authDigest + `"]`}}, field: "authorities[0].tokens[1]", msg: "already used by authorities[0].tokens[0]"},
		{name: "plain token in dev equal to another's digest", edits: []edit{{authDigest, platformPlain}}, opt: config.Options{AllowPlainTokens: true}, field: "authorities[0].tokens[0]", msg: "already used by platforms[0].tokens[0]"},

		// Platforms.
		{name: "bad fallback", edits: []edit{{"fallback: [establishment]", "fallback: [establishment, police]"}}, field: "platforms[0].fallback[1]", msg: "establishment, legal_representative, europol"},
		{name: "fallback twice", edits: []edit{{"fallback: [establishment]", "fallback: [europol, europol]"}}, field: "platforms[0].fallback[1]", msg: "twice"},
		{name: "establishment outside the EU", edits: []edit{{"establishment: IE", "establishment: US"}}, field: "platforms[0].establishment", msg: "not a Member State of EU27"},
		{name: "establishment outside the default scope", edits: []edit{{"member_states: EU27               # EU27 (default) or EEA (adds IS, LI, NO)\n", ""}, {"establishment: IE", "establishment: US"}},
			field: "platforms[0].establishment", msg: `"US" is not a Member State of EU27`},
		{name: "establishment NO under EU27", edits: []edit{{"establishment: IE", "establishment: NO"}}, field: "platforms[0].establishment", msg: "not a Member State of EU27"},
		{name: "establishment EU", edits: []edit{{"establishment: IE", "establishment: EU"}}, field: "platforms[0].establishment"},
		{name: "establishment unknown code", edits: []edit{{"establishment: IE", "establishment: Ireland"}}, field: "platforms[0].establishment"},
		{name: "legal representative outside the EU", edits: []edit{{"legal_representative: null", "legal_representative: CH"}}, field: "platforms[0].legal_representative"},
		{name: "platform without name", edits: []edit{{"    name: ExampleNet Ltd\n", ""}}, field: "platforms[0].name", msg: "required"},

		// Durations and limits.
		{name: "duration 30x", extra: "retention:\n  notices: 30x\n", field: "retention.notices", msg: `"30x"`},
		{name: "duration -1s", extra: "inbox:\n  lease: -1s\n", field: "inbox.lease", msg: `"-1s"`},
		{name: "duration 0s", extra: "inbox:\n  lease: 0s\n", field: "inbox.lease"},
		{name: "duration 0d", extra: "retention:\n  notices: 0d\n", field: "retention.notices"},
		{name: "duration 1.5d", extra: "retention:\n  notices: 1.5d\n", field: "retention.notices"},
		{name: "duration without unit", extra: "retention:\n  notices: 30\n", field: "retention.notices"},
		{name: "duration overflowing", extra: "retention:\n  notices: 999999999d\n", field: "retention.notices"},
		{name: "replicas", edits: []edit{{"nats:\n", "nats:\n  replicas: 7\n"}}, field: "nats.replicas", msg: "between 1 and 5"},
		{name: "retention twice", extra: "retention:\n  notices: 30d\nretention:\n  notices: 7d\n", field: "retention", msg: "twice"},
		{name: "no authorities", edits: []edit{{base[strings.Index(base, "authorities:"):], "authorities: []\n"}}, field: "authorities", msg: "at least one"},
		{name: "no platforms", edits: []edit{{base[strings.Index(base, "platforms:"):strings.Index(base, "authorities:")], ""}}, field: "platforms", msg: "at least one"},
		{name: "negative max_in_flight", extra: "limits:\n  max_in_flight: -1\n", field: "limits.max_in_flight"},
		{name: "store_timeout too short", edits: []edit{{"  store_timeout: 5s ", "  store_timeout: 10ms "}}, field: "http.store_timeout", msg: "between 100ms and 30s"},
		{name: "store_timeout too long", edits: []edit{{"  store_timeout: 5s ", "  store_timeout: 1m "}}, field: "http.store_timeout", msg: "between 100ms and 30s"},
		{name: "store_timeout negative", edits: []edit{{"  store_timeout: 5s ", "  store_timeout: -1s "}}, field: "http.store_timeout"},
		{name: "negative notice_store_bytes", extra: "limits:\n  notice_store_bytes: -1\n", field: "limits.notice_store_bytes"},

		// Notices and tokens leave only over TLS (contract section 10).
		{name: "webhook over http to another host", edits: []edit{{"    country: DE", "    country: DE\n    delivery: {mode: webhook, url: 'http://intake.example.de/hook', secret_env: NR_TEST_SECRET}"}},
			field: "authorities[0].delivery.url", msg: "must be an https:// URL"},
		{name: "webhook over http to 0.0.0.0", edits: []edit{{"    country: DE", "    country: DE\n    delivery: {mode: webhook, url: 'http://0.0.0.0:9000/hook', secret_env: NR_TEST_SECRET}"}},
			field: "authorities[0].delivery.url", msg: "loopback"},
		{name: "webhook URL relative", edits: []edit{{"    country: DE", "    country: DE\n    delivery: {mode: webhook, url: '/hook', secret_env: NR_TEST_SECRET}"}},
			field: "authorities[0].delivery.url", msg: "must be an https:// URL"},
		{name: "negative max_connections", extra: "limits:\n  max_connections: -5\n", field: "limits.max_connections", msg: "must be positive"},
		{name: "per source above the total", extra: "limits:\n  max_connections: 100\n  max_connections_per_source: 200\n",
			field: "limits.max_connections_per_source", msg: "must not exceed limits.max_connections"},
		{name: "negative per_caller rate", extra: "limits:\n  per_caller:\n    rate: -1\n", field: "limits.per_caller.rate", msg: "positive"},
		{name: "per_caller rate not a number", extra: "limits:\n  per_caller:\n    rate: fast\n", field: "limits.per_caller.rate"},
		{name: "zero-less per_caller concurrency", extra: "limits:\n  per_caller:\n    concurrency: -3\n", field: "limits.per_caller.concurrency", msg: "must be positive"},
		{name: "negative large_body_rate", extra: "limits:\n  per_caller:\n    large_body_rate: -2\n", field: "limits.per_caller.large_body_rate", msg: "positive"},
		{name: "unknown per_caller field", extra: "limits:\n  per_caller:\n    rps: 5\n", field: "limits.per_caller.rps", msg: "unknown field"},
		{name: "bad body_timeout", edits: []edit{{"http:\n", "http:\n  body_timeout: soon\n"}}, field: "http.body_timeout"},
	}
	t.Setenv("NR_TEST_SECRET", "a-webhook-secret-of-32-characters")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := apply(t, base, tt.edits, tt.extra)
			c, err := config.Parse([]byte(data), tt.opt)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if c != nil {
				t.Errorf("a refused configuration comes with a non-nil *Config")
			}
			ps := problemsOf(t, err)
			if len(ps) != 1 {
				t.Errorf("%d problems, want 1:\n  %s", len(ps), strings.Join(ps, "\n  "))
			}
			if !strings.HasPrefix(ps[0], tt.field+": ") || !strings.Contains(ps[0], tt.msg) {
				t.Errorf("problem %q, want it to start with %q and contain %q", ps[0], tt.field+": ", tt.msg)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %s", err, tt.field)
			}
		})
	}
}

// TestAccepted: variations of the example that are valid.
func TestAccepted(t *testing.T) {
	tests := []struct {
		name  string
		edits []edit
		extra string
		opt   config.Options
		check func(*config.Config) error
	}{
		{name: "NO under EEA", edits: []edit{{"member_states: EU27", "member_states: EEA"}, {"establishment: IE", "establishment: NO"}},
			extra: authority("no-kripos", "NO") + authority("is-police", "IS") + authority("li-police", "LI"),
			check: func(c *config.Config) error {
				if c.Platforms[0].Establishment != "NO" || c.Authority("no-kripos").Country != "NO" {
					return fmt.Errorf("got %+v", *c)
				}
				return nil
			}},
		{name: "EL is GR", extra: authority("el-police", "el"), check: func(c *config.Config) error {
			if got := c.Authority("el-police").Country; got != "GR" {
				return fmt.Errorf("country = %q, want GR", got)
			}
			return nil
		}},
		{name: "country in lower case", edits: []edit{{"country: DE", "country: de"}}, check: func(c *config.Config) error {
			if got := c.Authority("de-bka").Country; got != "DE" {
				return fmt.Errorf("country = %q, want DE", got)
			}
			return nil
		}},
		{name: "Europol", extra: authority("europol", "EU"), check: func(c *config.Config) error {
			if got := c.Authority("europol").Country; got != country.Europol {
				return fmt.Errorf("country = %q, want EU", got)
			}
			return nil
		}},
		{name: "establishment in lower case, legal representative, every fallback",
			edits: []edit{{"establishment: IE", "establishment: ie"}, {"legal_representative: null", "legal_representative: NL"},
				{"fallback: [establishment]", "fallback: [legal_representative, establishment, europol]"}},
			check: func(c *config.Config) error {
				p := c.Platforms[0]
				if p.Establishment != "IE" || p.LegalRepresentative != "NL" ||
					!slices.Equal(p.Fallback, []string{"legal_representative", "establishment", "europol"}) {
					return fmt.Errorf("platform = %+v", p)
				}
				return nil
			}},
		{name: "no establishment", edits: []edit{{"establishment: IE", "establishment: null"}, {"fallback: [establishment]", "fallback: [europol]"}},
			check: func(c *config.Config) error {
				if c.Platforms[0].Establishment != "" {
					return fmt.Errorf("establishment = %q", c.Platforms[0].Establishment)
				}
				return nil
			}},
		{name: "plain tokens in dev are digested", edits: []edit{{platformDigest, platformPlain}, {authDigest, authorityPlain}},
			opt: config.Options{AllowPlainTokens: true},
			check: func(c *config.Config) error {
				if got := c.Platforms[0].Tokens[0].String(); got != sum(platformPlain) || got != platformDigest {
					return fmt.Errorf("platform token = %s, want %s", got, platformDigest)
				}
				if got := c.Authorities[0].Tokens[0].String(); got != sum(authorityPlain) || got != authDigest {
					return fmt.Errorf("authority token = %s, want %s", got, authDigest)
				}
				return nil
			}},
		{name: "digests in dev stay digests", opt: config.Options{AllowPlainTokens: true}, check: func(c *config.Config) error {
			if got := c.Platforms[0].Tokens[0].String(); got != platformDigest {
				return fmt.Errorf("platform token = %s, want %s", got, platformDigest)
			}
			return nil
		}},
		{name: "several tokens", edits: []edit{{`["` + authDigest + `"]`, `["` + authDigest + `", "` + sum("rotated") + `"]`}},
			check: func(c *config.Config) error {
				if got := c.Authorities[0].Tokens; len(got) != 2 || got[1].String() != sum("rotated") {
					return fmt.Errorf("tokens = %v", got)
				}
				return nil
			}},
		{name: "one authority per Member State plus Europol", extra: func() string {
			var b strings.Builder
			for _, cc := range append(slices.Clone(country.EU27), country.Europol) {
				if cc != "DE" {
					b.WriteString(authority(strings.ToLower(cc)+"-police", cc))
				}
			}
			return b.String()
		}(), check: func(c *config.Config) error {
			if len(c.Authorities) != 28 {
				return fmt.Errorf("%d authorities, want 28", len(c.Authorities))
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(apply(t, example(t), tt.edits, tt.extra)), tt.opt)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := tt.check(c); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestAllProblems: every problem in a file is reported at once, one line
// each.
func TestAllProblems(t *testing.T) {
	tests := []struct {
		name   string
		edits  []edit
		extra  string
		fields []string
	}{
		{name: "three problems", edits: []edit{{"member_states: EU27", "member_states: EU28"}, {"country: DE", "country: XX"}},
			extra: "retention:\n  notices: 30x\n", fields: []string{"member_states", "authorities[0].country", "retention.notices"}},
		{name: "decoding and validation problems together",
			edits:  []edit{{"http:\n", "htpp:\n"}, {"fallback: [establishment]", "fallback: [police]"}, {platformDigest, "sha256:00"}},
			extra:  "inbox:\n  lease: -1s\n",
			fields: []string{"htpp", "inbox.lease", "platforms[0].tokens[0]", "platforms[0].fallback[0]"}},
		{name: "one problem per authority", extra: authority("x", "FR") + authority("fr-police", "FR") + authority("de-lka", "DE"),
			fields: []string{"authorities[1].id", "authorities[2].country", "authorities[3].country"}},
		{name: "empty configuration", edits: []edit{{example(t), ""}}, fields: []string{"platforms", "authorities"}},
		{name: "not a mapping", edits: []edit{{example(t), "- a\n- b\n"}}, fields: []string{"(top level)", "platforms", "authorities"}},
		{name: "platforms not a list", edits: []edit{{example(t), "platforms: examplenet\n"}}, fields: []string{"platforms", "authorities"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(apply(t, example(t), tt.edits, tt.extra)), config.Options{})
			if err == nil {
				t.Fatal("accepted")
			}
			ps := problemsOf(t, err)
			if len(ps) != len(tt.fields) {
				t.Errorf("%d problems, want %d:\n  %s", len(ps), len(tt.fields), strings.Join(ps, "\n  "))
			}
			for _, f := range tt.fields {
				if !slices.ContainsFunc(ps, func(p string) bool { return strings.HasPrefix(p, f+": ") }) {
					t.Errorf("no problem names %s:\n  %s", f, strings.Join(ps, "\n  "))
				}
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 1+len(tt.fields) || lines[0] != "invalid configuration:" {
				t.Errorf("error has %d lines, want a heading and %d problems:\n%s", len(lines), len(tt.fields), err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := config.Load(path, config.Options{})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load(%s) = %v, want an error naming the file", path, err)
	}
	problemsOf(t, err)
}

func TestYAMLSyntaxError(t *testing.T) {
	_, err := config.Parse([]byte("platforms: [\n"), config.Options{})
	if err == nil || !strings.Contains(err.Error(), "line") {
		t.Fatalf("Parse = %v, want a syntax error with its line", err)
	}
	problemsOf(t, err)
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration // 0: an error
	}{
		{"30d", 720 * time.Hour},
		{"1d", 24 * time.Hour},
		{"12h", 12 * time.Hour},
		{"90s", 90 * time.Second},
		{"1h30m", 90 * time.Minute},
		{"106751d", 106751 * 24 * time.Hour},
		{"30x", 0},
		{"-1s", 0},
		{"0s", 0},
		{"0", 0},
		{"0d", 0},
		{"-1d", 0},
		{"+3d", 0},
		{"1.5d", 0},
		{"d", 0},
		{"30 d", 0},
		{"", 0},
		{"106752d", 0}, // overflows time.Duration
		{"999999999d", 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := config.ParseDuration(tt.in)
			if tt.want == 0 {
				if err == nil {
					t.Fatalf("ParseDuration(%q) = %v, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.in)) {
					t.Errorf("error %q does not quote the input", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	for _, plain := range []string{platformPlain, authorityPlain, config.NewToken()} {
		if got, want := config.Digest(plain).String(), sum(plain); got != want {
			t.Errorf("Digest(%q) = %s, want %s", plain, got, want)
		}
	}
	a, b := config.NewToken(), config.NewToken()
	if a == b || len(a) < 32 || !strings.HasPrefix(a, "nr_") {
		t.Errorf("NewToken() = %q, %q: want distinct, long, nr_ tokens", a, b)
	}
}
