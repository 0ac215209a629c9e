package config

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/web"
)

// Parse decodes and validates a YAML configuration. Every problem is
// reported, each prefixed with its field path.
func Parse(data []byte, opt Options) (*Config, error) {
	var raw rawConfig
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{Problems: []string{strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	v := validator{opt: opt, tokens: map[Token]string{}, ids: map[string]string{}, byCountry: map[string]string{}}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		decodeNode(doc.Content[0], reflect.ValueOf(&raw).Elem(), "", &v.p)
	}
	c := Config{NATS: raw.NATS, HTTP: raw.HTTP, MemberStates: raw.MemberStates,
		Retention: raw.Retention, Inbox: raw.Inbox, Limits: raw.Limits, Audit: raw.Audit,
		Deliveries: raw.Deliveries, Geo: raw.Geo}
	if err := c.fill(); err != nil {
		v.p = append(v.p, err.(*Error).Problems...)
	}
	v.scope = c.MemberStates
	if v.states, _ = country.MemberStates(c.MemberStates); v.states == nil {
		v.states, _ = country.MemberStates("EU27")
	}

	if len(raw.Platforms) == 0 {
		v.p.add("platforms", "at least one platform is required")
	}
	for i, rp := range raw.Platforms {
		c.Platforms = append(c.Platforms, v.platform(fmt.Sprintf("platforms[%d]", i), rp))
	}
	if len(raw.Authorities) == 0 {
		v.p.add("authorities", "at least one authority is required")
	}
	for i, ra := range raw.Authorities {
		c.Authorities = append(c.Authorities, v.authority(fmt.Sprintf("authorities[%d]", i), ra))
	}
	checkDelivery(&c, &v.p)
	checkRules(&c, &v.p)
	for i, ra := range raw.Auditors {
		f := fmt.Sprintf("auditors[%d]", i)
		v.id(f+".id", ra.ID)
		c.Auditors = append(c.Auditors, Auditor{ID: ra.ID, Tokens: v.tokenList(f+".tokens", ra.Tokens)})
	}

	if len(v.p) > 0 {
		return nil, &Error{Problems: v.p}
	}
	return &c, nil
}

// validator checks the parts of a configuration that must agree with each
// other: ids and tokens unique across it, Member States of its scope, one
// authority per country.
type validator struct {
	opt       Options
	p         problems
	scope     string      // member_states as written
	states    country.Set // the Member States of scope
	tokens    map[Token]string
	ids       map[string]string
	byCountry map[string]string // country -> field of its primary authority
}

// tokenList checks a list of token digests (or, where allowed, plain
// tokens) and returns the tokens.
func (v *validator) tokenList(field string, in []string) []Token {
	if len(in) == 0 {
		v.p.add(field, "at least one token digest is required")
	}
	var out []Token
	for i, s := range in {
		if t, ok := v.token(fmt.Sprintf("%s[%d]", field, i), s); ok {
			out = append(out, t)
		}
	}
	return out
}

func (v *validator) token(f, s string) (Token, bool) {
	var t Token
	switch {
	case digestPattern.MatchString(s):
		b, _ := hex.DecodeString(s[len("sha256:"):])
		copy(t[:], b)
	case strings.HasPrefix(strings.ToLower(s), "sha256:"):
		v.p.add(f, "malformed digest: want \"sha256:\" followed by 64 lower-case hex digits")
		return t, false
	case v.opt.AllowPlainTokens:
		if len(s) < 16 {
			v.p.add(f, "plain token too short: use at least 16 characters")
			return t, false
		}
		t = Digest(s)
	default:
		v.p.add(f, "plain tokens are not allowed outside `dev`: store only the digest (`noticerelay token` makes a token and its digest)")
		return t, false
	}
	if other, dup := v.tokens[t]; dup {
		v.p.add(f, "the same token is already used by %s", other)
		return t, false
	}
	v.tokens[t] = f
	return t, true
}

// id checks an id of a platform, authority or auditor: well formed and
// used once.
func (v *validator) id(field, id string) {
	if !idPattern.MatchString(id) {
		v.p.add(field, "must match [a-z0-9-]{2,64}, not %q", id)
		return
	}
	if other, dup := v.ids[id]; dup {
		v.p.add(field, "id %q is already used by %s", id, other)
	}
	v.ids[id] = field
}

// memberState returns an optional Member State, normalised.
func (v *validator) memberState(field string, s *string) string {
	if s == nil || *s == "" {
		return ""
	}
	cc, ok := country.Normalize(*s)
	if ok {
		cc, _ = country.State(cc)
	}
	if !ok || !v.states[cc] {
		v.p.add(field, "%q is not a Member State of %s", *s, v.scope)
		return ""
	}
	return cc
}

func (v *validator) platform(f string, rp rawPlatform) Platform {
	v.id(f+".id", rp.ID)
	pl := Platform{
		ID:                  rp.ID,
		Name:                rp.Name,
		Tokens:              v.tokenList(f+".tokens", rp.Tokens),
		Establishment:       v.memberState(f+".establishment", rp.Establishment),
		LegalRepresentative: v.memberState(f+".legal_representative", rp.LegalRepresentative),
		Fallback:            rp.Fallback,
		Notify:              rp.Notify,
	}
	if pl.Name == "" {
		v.p.add(f+".name", "is required")
	}
	pl.Users = v.users(f+".users", rp.Users)
	seen := map[string]bool{}
	for j, fb := range rp.Fallback {
		ff := fmt.Sprintf("%s.fallback[%d]", f, j)
		switch fb {
		case "establishment", "legal_representative", "europol":
		default:
			v.p.add(ff, "must be one of establishment, legal_representative, europol, not %q", fb)
		}
		if seen[fb] {
			v.p.add(ff, "%q is listed twice", fb)
		}
		seen[fb] = true
	}
	return pl
}

// users checks a platform's portal users: ids unique within the
// platform, names given, passwords stored only as argon2id hashes.
func (v *validator) users(field string, users []User) []User {
	seen := map[string]bool{}
	for i, u := range users {
		f := fmt.Sprintf("%s[%d]", field, i)
		if !idPattern.MatchString(u.ID) {
			v.p.add(f+".id", "must match [a-z0-9-]{2,64}, not %q", u.ID)
		} else if seen[u.ID] {
			v.p.add(f+".id", "%q is listed twice", u.ID)
		}
		seen[u.ID] = true
		if strings.TrimSpace(u.Name) == "" {
			v.p.add(f+".name", "is required")
		}
		if err := web.CheckPasswordHash(u.Password); err != nil {
			v.p.add(f+".password", "%v", err)
		}
	}
	return users
}

func (v *validator) authority(f string, ra rawAuthority) Authority {
	v.id(f+".id", ra.ID)
	if ra.ID == "platform" {
		// A message's "from" and "to" name the platform so.
		v.p.add(f+".id", "%q is reserved: messages name the platform so", ra.ID)
	}
	a := Authority{ID: ra.ID, Name: ra.Name, Tokens: v.tokenList(f+".tokens", ra.Tokens),
		AgeRecipient: ra.AgeRecipient, Delivery: ra.Delivery, Escalation: ra.Escalation, Rules: ra.Rules}
	if a.Name == "" {
		v.p.add(f+".name", "is required")
	}
	cc := strings.ToUpper(ra.Country)
	if cc == "EL" {
		cc = "GR"
	}
	switch other, dup := v.byCountry[cc]; {
	case cc != country.Europol && !v.states[cc]:
		v.p.add(f+".country", "%q is not a Member State of %s (or EU for Europol)", ra.Country, v.scope)
	case len(ra.Rules) > 0:
		// A secondary authority: its rules say when it receives.
	case dup:
		v.p.add(f+".country", "%s already has an authority (%s): at most one per country, "+
			"unless the other has rules saying when it receives", cc, other)
	default:
		v.byCountry[cc] = f
	}
	a.Country = cc
	return a
}
