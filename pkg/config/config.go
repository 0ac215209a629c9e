// Package config loads and validates the relay's YAML configuration
// (contract section 2). A configuration that loads is complete: every
// default is filled in and every field has been checked, so services never
// re-validate it.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/noticerelay/noticerelay/pkg/country"
)

// Config is the whole relay configuration.
type Config struct {
	NATS         NATS        `yaml:"nats"`
	HTTP         HTTP        `yaml:"http"`
	MemberStates string      `yaml:"member_states"`
	Platforms    []Platform  `yaml:"platforms"`
	Authorities  []Authority `yaml:"authorities"`
	Retention    Retention   `yaml:"retention"`
	Inbox        Inbox       `yaml:"inbox"`
	Limits       Limits      `yaml:"limits"`
	Audit        Audit       `yaml:"audit"`
	Deliveries   Deliveries  `yaml:"deliveries"`
	Auditors     []Auditor   `yaml:"auditors"`
	Geo          Geo         `yaml:"geo"`
}

// Audit configures the tamper-evident log. PseudonymKey is the file of the
// HMAC key that turns notice ids into the pseudonyms the log names notices
// by; it must stay outside the log (auditors must not hold it to read the
// log). `dev` makes the keys under its data dir when they are not set.
type Audit struct {
	Origin       string `yaml:"origin"`
	SigningKey   string `yaml:"signing_key"`
	VerifierKey  string `yaml:"verifier_key"`
	PseudonymKey string `yaml:"pseudonym_key"`
	// RejectionWindow is how long rejected submissions are counted before
	// one event per platform records them (default 1m), so that a flood of
	// invalid submissions costs one leaf per platform and window, not one
	// per submission.
	RejectionWindow Duration `yaml:"rejection_window,omitempty"`
}

// NATS says where the relay's NATS server is.
type NATS struct {
	// URL of the external server or cluster (`serve`); ignored by `dev`.
	URL string `yaml:"url"`
	// Listen is where `dev`'s embedded server also accepts NATS clients;
	// empty means in-process connections only.
	Listen string `yaml:"listen"`
	// Creds is an optional NATS credentials file for `serve`.
	Creds string `yaml:"creds"`
	// Replicas of every stream; 0 means 3 when the server is part of a
	// cluster and 1 otherwise.
	Replicas int `yaml:"replicas"`
	// StoreKeyEnv or StoreKeyFile hold the key that encrypts the embedded
	// server's store at rest (`dev`); see docs/delivery.md.
	StoreKeyEnv  string `yaml:"store_key_env"`
	StoreKeyFile string `yaml:"store_key_file"`
}

// HTTP is the one listener for intake, inbox, status, health and metrics.
type HTTP struct {
	Listen string `yaml:"listen"`
	// StoreTimeout bounds how long a request waits for the store (NATS
	// JetStream) before it answers 503 with Retry-After (default 5 s).
	StoreTimeout Duration `yaml:"store_timeout"`
	// TLS, when set, serves HTTPS on Listen; empty: plain HTTP.
	TLS TLS `yaml:"tls,omitempty"`
	// BodyTimeout is how long a request may take to send its body (default
	// 10 s); a slower one gets 408. Bodies are read before a request takes
	// any shared slot, so a slow sender holds only its own connection.
	BodyTimeout Duration `yaml:"body_timeout,omitempty"`
}

// DefaultStoreTimeout is http.store_timeout when it is not set.
const DefaultStoreTimeout = 5 * time.Second

// Platform is a hosting service that submits notices.
type Platform struct {
	ID                  string   `yaml:"id"`
	Name                string   `yaml:"name"`
	Tokens              []Token  `yaml:"tokens"`
	Establishment       string   `yaml:"establishment"`
	LegalRepresentative string   `yaml:"legal_representative"`
	Fallback            []string `yaml:"fallback"`
	// Notify, when set, receives a signed POST of every message an
	// authority sends the platform (contract section 8).
	Notify *Notify `yaml:"notify"`
	// Users are the people of the platform who sign in to the portal
	// with a password; the platform's tokens sign in too.
	Users []User `yaml:"users"`
}

// User is a person who signs in to the portal for a platform.
type User struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Password is the argon2id hash `noticerelay passwd` prints, never
	// the password itself.
	Password string `yaml:"password"`
}

// Authority is a law-enforcement contact point, or Europol (country EU).
type Authority struct {
	ID      string  `yaml:"id"`
	Country string  `yaml:"country"`
	Name    string  `yaml:"name"`
	Tokens  []Token `yaml:"tokens"`
	// AgeRecipient, when set, encrypts every delivery to the authority's
	// age X25519 key before it enters the queue.
	AgeRecipient string `yaml:"age_recipient"`
	// Delivery says whether the authority pulls or receives pushes.
	Delivery Delivery `yaml:"delivery"`
	// Escalation is the authority re-notified of an urgent delivery left
	// unacknowledged past deliveries.urgent_deadline.
	Escalation string `yaml:"escalation"`
	// Rules make the authority a secondary one of its country, receiving
	// only what they say (rules.go); none: its country's primary one.
	Rules []Rule `yaml:"rules"`
}

// Retention says how long personal data is kept.
type Retention struct {
	// Notices is how long notice bodies and their deliveries are kept
	// (default 30 days). Lifecycle events are kept for good.
	Notices Duration `yaml:"notices"`
}

// Inbox configures the authorities' pull inbox.
type Inbox struct {
	// Lease is how long a delivery handed out stays with its caller before
	// it is handed out again (default 60 s).
	Lease Duration `yaml:"lease"`
}

// Limits bound what the relay stores, so that it pushes back (503) instead
// of losing data.
type Limits struct {
	// NoticeStoreBytes caps the notice store; 0 means no cap but the disk.
	NoticeStoreBytes int64 `yaml:"notice_store_bytes"`
	// MaxInFlight caps concurrent intake requests (default 1024).
	MaxInFlight int `yaml:"max_in_flight"`
	// AttachmentBytes caps one evidence file (default 32 MiB, contract
	// section 7); AttachmentsPerNotice caps the files of one notice
	// (default 20).
	AttachmentBytes      int64 `yaml:"attachment_bytes"`
	AttachmentsPerNotice int   `yaml:"attachments_per_notice"`
	// MaxConnections caps the HTTP listener's open connections (default
	// 4096); MaxConnectionsPerSource caps those of one client IP address
	// (default 256). A connection over either is closed at once.
	MaxConnections          int `yaml:"max_connections"`
	MaxConnectionsPerSource int `yaml:"max_connections_per_source"`
	// PerCaller is each platform's and each authority's share.
	PerCaller PerCaller `yaml:"per_caller"`
}

// PerCaller is the share of the relay one caller (a platform or an
// authority) may take, so that one caller cannot block the rest: a request
// over it gets 429 with Retry-After. A platform's urgent notices have a
// share of the same size of their own, so that its normal traffic never
// refuses one of them.
type PerCaller struct {
	// Rate is the sustained requests per second (default 1000), Burst how
	// many may come at once above it (default twice the rate).
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
	// Concurrency is how many requests of one caller may be in progress at
	// once (default 64).
	Concurrency int `yaml:"concurrency"`
	// LargeBodyRate is how many bodies over 64 KiB one caller may send a
	// second (default 4); they are read one at a time per caller. Real
	// notices are a few KiB; the cap bounds what a flood of 1 MiB bodies
	// costs in memory and CPU.
	LargeBodyRate float64 `yaml:"large_body_rate"`
}

// Default limits of evidence files.
const (
	DefaultAttachmentBytes      = 32 << 20
	DefaultAttachmentsPerNotice = 20
)

// Token is the SHA-256 digest of a bearer token.
type Token [sha256.Size]byte

// Digest returns the Token for a plain bearer token.
func Digest(plain string) Token { return sha256.Sum256([]byte(plain)) }

// String formats t as "sha256:<64 hex>".
func (t Token) String() string { return "sha256:" + hex.EncodeToString(t[:]) }

// Duration is a time.Duration written as "90s", "12h" or "30d".
type Duration time.Duration

// UnmarshalYAML parses a duration with an optional "d" (days) unit.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d as a Go duration ("5s"), which UnmarshalYAML reads
// back; without it a duration would be written as nanoseconds, which Load
// refuses.
func (d Duration) MarshalYAML() (any, error) {
	return time.Duration(d).String(), nil
}

// maxDays is the longest duration in days that a time.Duration holds.
const maxDays = int(math.MaxInt64 / int64(24*time.Hour))

// ParseDuration parses Go durations plus whole days ("30d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err != nil || n <= 0 || fmt.Sprint(n) != days || n > maxDays {
			return 0, fmt.Errorf("%q is not a duration such as 30d, 12h or 90s", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration such as 30d, 12h or 90s", s)
	}
	return v, nil
}

// rawConfig is the YAML as written, before validation.
type rawConfig struct {
	NATS         NATS           `yaml:"nats"`
	HTTP         HTTP           `yaml:"http"`
	MemberStates string         `yaml:"member_states"`
	Retention    Retention      `yaml:"retention"`
	Inbox        Inbox          `yaml:"inbox"`
	Limits       Limits         `yaml:"limits"`
	Audit        Audit          `yaml:"audit"`
	Deliveries   Deliveries     `yaml:"deliveries"`
	Geo          Geo            `yaml:"geo"`
	Platforms    []rawPlatform  `yaml:"platforms"`
	Authorities  []rawAuthority `yaml:"authorities"`
	Auditors     []rawAuditor   `yaml:"auditors"`
}

// rawPlatform is a platform as written.
type rawPlatform struct {
	ID                  string   `yaml:"id"`
	Name                string   `yaml:"name"`
	Tokens              []string `yaml:"tokens"`
	Establishment       *string  `yaml:"establishment"`
	LegalRepresentative *string  `yaml:"legal_representative"`
	Fallback            []string `yaml:"fallback"`
	Notify              *Notify  `yaml:"notify"`
	Users               []User   `yaml:"users"`
}

// rawAuthority is an authority as written.
type rawAuthority struct {
	ID           string   `yaml:"id"`
	Country      string   `yaml:"country"`
	Name         string   `yaml:"name"`
	Tokens       []string `yaml:"tokens"`
	AgeRecipient string   `yaml:"age_recipient"`
	Delivery     Delivery `yaml:"delivery"`
	Escalation   string   `yaml:"escalation"`
	Rules        []Rule   `yaml:"rules"`
}

// rawAuditor is an auditor as written.
type rawAuditor struct {
	ID     string   `yaml:"id"`
	Tokens []string `yaml:"tokens"`
}

// Options say how strict loading is.
type Options struct {
	// AllowPlainTokens accepts plain bearer tokens and digests them; only
	// `dev` allows this.
	AllowPlainTokens bool
}

// Error lists every problem found in a configuration, each naming its field.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// Load reads and validates the configuration file at path.
func Load(path string, opt Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Problems: []string{fmt.Sprintf("reading %s: %v", path, err)}}
	}
	return Parse(data, opt)
}

var idPattern = regexp.MustCompile(`^[a-z0-9-]{2,64}$`)

var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// fill sets defaults and checks the scalar settings.
func (c *Config) fill() error {
	var p problems
	if c.NATS.URL == "" {
		c.NATS.URL = "nats://127.0.0.1:4222"
	}
	if c.NATS.Replicas < 0 || c.NATS.Replicas > 5 {
		p.add("nats.replicas", "must be between 1 and 5 (or 0 for automatic)")
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:8080"
	}
	if c.HTTP.StoreTimeout == 0 {
		c.HTTP.StoreTimeout = Duration(DefaultStoreTimeout)
	}
	if d := time.Duration(c.HTTP.StoreTimeout); d < 100*time.Millisecond || d > 30*time.Second {
		p.add("http.store_timeout", "must be between 100ms and 30s, not %s", d)
	}
	if c.MemberStates == "" {
		c.MemberStates = "EU27"
	}
	if _, ok := country.MemberStates(c.MemberStates); !ok {
		p.add("member_states", "must be EU27 or EEA, not %q", c.MemberStates)
	}
	if c.Retention.Notices == 0 {
		c.Retention.Notices = Duration(30 * 24 * time.Hour)
	}
	if c.Inbox.Lease == 0 {
		c.Inbox.Lease = Duration(60 * time.Second)
	}
	if c.Limits.MaxInFlight == 0 {
		c.Limits.MaxInFlight = 1024
	}
	if c.Limits.MaxInFlight < 0 {
		p.add("limits.max_in_flight", "must be positive")
	}
	c.HTTP.fill(&p)
	c.Limits.fill(&p)
	if c.Audit.RejectionWindow == 0 {
		c.Audit.RejectionWindow = Duration(time.Minute)
	}
	if c.Limits.NoticeStoreBytes < 0 {
		p.add("limits.notice_store_bytes", "must be positive, or 0 for no cap")
	}
	if c.Limits.AttachmentBytes == 0 {
		c.Limits.AttachmentBytes = DefaultAttachmentBytes
	}
	if c.Limits.AttachmentBytes < 0 || c.Limits.AttachmentBytes > 1<<30 {
		p.add("limits.attachment_bytes", "must be between 1 and 1073741824 (1 GiB)")
	}
	if c.Limits.AttachmentsPerNotice == 0 {
		c.Limits.AttachmentsPerNotice = DefaultAttachmentsPerNotice
	}
	if c.Limits.AttachmentsPerNotice < 0 || c.Limits.AttachmentsPerNotice > 1000 {
		p.add("limits.attachments_per_notice", "must be between 1 and 1000")
	}
	c.HTTP.TLS.check(&p)
	c.Deliveries.fill(&p)
	c.Audit.check(&p)
	c.Geo.fill(&p)

	if len(p) > 0 {
		return &Error{Problems: p}
	}
	return nil
}

// fill sets the HTTP defaults.
func (h *HTTP) fill(p *problems) {
	if h.BodyTimeout == 0 {
		h.BodyTimeout = Duration(10 * time.Second)
	}
}

// fill sets the defaults of the connection caps and shares and checks them.
func (l *Limits) fill(p *problems) {
	positive := func(field string, v *int, def int) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			p.add(field, "must be positive, not %d", *v)
		}
	}
	positive("limits.max_connections", &l.MaxConnections, 4096)
	positive("limits.max_connections_per_source", &l.MaxConnectionsPerSource, 256)
	if l.MaxConnectionsPerSource > l.MaxConnections && l.MaxConnections > 0 {
		p.add("limits.max_connections_per_source", "must not exceed limits.max_connections (%d)", l.MaxConnections)
	}
	switch pc := &l.PerCaller; {
	case pc.Rate == 0:
		pc.Rate = 1000
	case pc.Rate < 0 || math.IsNaN(pc.Rate) || math.IsInf(pc.Rate, 0):
		p.add("limits.per_caller.rate", "must be a positive number of requests per second")
	}
	positive("limits.per_caller.burst", &l.PerCaller.Burst, max(1, int(math.Min(2*l.PerCaller.Rate, 1e9))))
	positive("limits.per_caller.concurrency", &l.PerCaller.Concurrency, 64)
	switch pc := &l.PerCaller; {
	case pc.LargeBodyRate == 0:
		pc.LargeBodyRate = 4
	case pc.LargeBodyRate < 0 || math.IsNaN(pc.LargeBodyRate) || math.IsInf(pc.LargeBodyRate, 0):
		p.add("limits.per_caller.large_body_rate", "must be a positive number of bodies per second")
	}
}

type problems []string

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// decodeNode decodes n into v (addressable), the way yaml.v3 would with
// KnownFields, but reports every problem (an unknown or repeated key, a
// value of the wrong type, a bad duration) under its field path instead of
// stopping at the first custom unmarshaler error or naming Go types.
func decodeNode(n *yaml.Node, v reflect.Value, path string, p *problems) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	at := path
	if at == "" {
		at = "(top level)"
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // absent: the zero value (nil for a pointer)
	}
	if v.Addr().Type().Implements(unmarshalerType) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			p.add(at, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		nv := reflect.New(v.Type().Elem())
		decodeNode(n, nv.Elem(), path, p)
		v.Set(nv)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			p.add(at, "must be a list")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			decodeNode(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i), p)
		}
		v.Set(s)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			p.add(at, "must be a mapping of fields")
			return
		}
		fields := map[string]int{}
		var names []string
		for i := range v.NumField() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				fields[name] = i
				names = append(names, name)
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			f := key
			if path != "" {
				f = path + "." + key
			}
			idx, ok := fields[key]
			switch {
			case !ok:
				p.add(f, "unknown field (known: %s)", strings.Join(names, ", "))
			case seen[key]:
				p.add(f, "is set twice")
			default:
				decodeNode(n.Content[i+1], v.Field(idx), f, p)
			}
			seen[key] = true
		}
	default:
		if n.Kind != yaml.ScalarNode {
			p.add(at, "must be a single value, not a list or mapping")
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			switch v.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				p.add(at, "must be a whole number, not %q", n.Value)
			case reflect.Bool:
				p.add(at, "must be true or false, not %q", n.Value)
			default:
				p.add(at, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			}
		}
	}
}

// add records a problem with field, unless field already has one (a value
// that could not be decoded is not also reported as missing or invalid).
func (p *problems) add(field, format string, args ...any) {
	if slices.ContainsFunc(*p, func(s string) bool { return strings.HasPrefix(s, field+": ") }) {
		return
	}
	*p = append(*p, field+": "+fmt.Sprintf(format, args...))
}

// Platform returns the platform with id, or nil.
func (c *Config) Platform(id string) *Platform {
	i := slices.IndexFunc(c.Platforms, func(p Platform) bool { return p.ID == id })
	if i < 0 {
		return nil
	}
	return &c.Platforms[i]
}

// Authority returns the authority with id, or nil.
func (c *Config) Authority(id string) *Authority {
	i := slices.IndexFunc(c.Authorities, func(a Authority) bool { return a.ID == id })
	if i < 0 {
		return nil
	}
	return &c.Authorities[i]
}

// DecodeStrict decodes the YAML document data into v (a pointer to a
// struct) the way Load does, and returns every problem under its field
// path: an unknown or repeated key, a value of the wrong type. Other
// programs' configurations (the station's) use it so that their errors
// read like the relay's.
func DecodeStrict(data []byte, v any) []string {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var p problems
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		decodeNode(doc.Content[0], reflect.ValueOf(v).Elem(), "", &p)
	}
	return p
}
