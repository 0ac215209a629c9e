package notice

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/jsonbody"
)

// MaxBodyBytes is the largest body intake accepts (1 MiB).
const MaxBodyBytes = 1 << 20

// Parse decodes and validates a submitted notice body. It returns the
// normalised notice, or every problem found (not just the first), each with
// a field path like "victims[0].country", "suspects[1].ip_addresses[0].port",
// "contact.email", or "" for the body itself. On any error the returned
// *Notice is nil.
//
// A body that is too large, not UTF-8, not JSON or nested too deeply yields
// exactly one error, at "". Otherwise every field is checked: unknown and
// duplicate fields (in document order, per object) and then the fields of
// each object in the order of the Notice struct. Optional fields that are
// null, absent or the empty string are absent. Normalisation upper-cases
// country codes, lower-cases SHA-256 digests and writes IP addresses in
// their canonical form (IPv4-mapped IPv6 addresses as IPv4); everything else,
// time stamps included, is kept as submitted.
//
// The list is capped at 1000 problems; a list that reaches the cap ends with
// an error at "" saying so.
func Parse(body []byte) (*Notice, []FieldError) {
	r := Check(body, Options{})
	return r.Notice, r.Errors
}

// Options say what Check measures warnings against.
type Options struct {
	// Now is the relay's time: a time stamp later than that (and a few
	// minutes' slack) gets a warning. Zero: no such warning.
	Now time.Time
	// MemberStates are the Member States the relay serves (nil: EU27):
	// a notice that can identify none of them gets a warning.
	MemberStates country.Set
}

// Result is what Check found in a body.
type Result struct {
	// Notice is the normalised notice; nil when Errors is not empty.
	Notice *Notice
	// Errors are every problem that refuses the body, as Parse returns them.
	Errors []FieldError
	// Warnings are what is valid but makes the notice hard to act on: a
	// recommended field left out (Field.Recommended), a time stamp in the
	// future, no Member State that could be identified. They never refuse
	// a notice; a body with errors may have warnings too.
	Warnings []Warning
}

// Check is Parse with warnings: the one validator of notices, for intake
// and for any page that wants to show both before a notice is sent.
func Check(body []byte, o Options) Result {
	if len(body) > MaxBodyBytes {
		return Result{Errors: []FieldError{*bodyError(fmt.Sprintf("is larger than %d bytes (1 MiB)", MaxBodyBytes))}}
	}
	root, fe := decodeTree(body) // also refuses a body that is not UTF-8
	if fe != nil {
		return Result{Errors: []FieldError{*fe}}
	}
	c := checker{now: o.Now}
	n := c.notice(&root)
	if n != nil && !identifiesMemberState(n, o.MemberStates) {
		c.warn("locations", "no Member State can be identified: no location, suspect or victim names a country of one, "+
			"and no phone number or IP address might; the notice goes to the platform's fallback recipients")
	}
	if len(c.errs) > 0 {
		return Result{Errors: c.errs, Warnings: c.warnings}
	}
	return Result{Notice: n, Warnings: c.warnings}
}

// identifiesMemberState reports whether n names a country of a Member State
// of states (a territory counting as its state), or holds a phone number or
// an IP address not flagged as a possible proxy, from which the relay may
// find one.
func identifiesMemberState(n *Notice, states country.Set) bool {
	if states == nil {
		states, _ = country.MemberStates("EU27")
	}
	member := func(code string) bool {
		st, _ := country.State(code)
		return code != "" && states[st]
	}
	for _, l := range n.Locations {
		if member(l.Country) {
			return true
		}
	}
	for _, p := range slices.Concat(n.Suspects, n.Victims) {
		if member(p.Country) || p.Phone != "" {
			return true
		}
		for _, a := range p.IPAddresses {
			if !a.PossibleProxy {
				return true
			}
		}
	}
	return false
}

// Canonical returns the canonical JSON encoding of n (encoding/json of the
// Notice struct, no HTML escaping, no trailing newline) and its lowercase hex
// SHA-256. Two submissions that differ only in whitespace, key order or letter
// case of country codes have the same canonical form.
func Canonical(n *Notice) (body []byte, sha256hex string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// A Notice holds only strings, bools, ints and slices of them: encoding
	// cannot fail.
	_ = enc.Encode(n)
	body = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	sum := sha256.Sum256(body)
	return body, hex.EncodeToString(sum[:])
}

// notice reads the notice at root, field by field in canonical order.
func (c *checker) notice(root *jsonbody.Value) *Notice {
	if root.Kind != jsonbody.Object {
		c.add(*bodyError("must be a JSON object"))
		return nil
	}
	o, _ := c.object(root, "", "", fieldTable, nil)
	n := &Notice{}
	n.Reference = o.str("reference")
	n.Category = o.str("category")
	n.Exploitation = o.str("exploitation")
	n.ImminentThreat = o.boolean("imminent_threat")
	n.UrgencyReason = o.str("urgency_reason")
	n.Suspicion = o.str("suspicion")
	n.OccurredAt = o.str("occurred_at")
	n.AwareAt = o.str("aware_at")
	for _, item := range o.list("locations") {
		l := Location{Country: item.str("country"), Description: item.str("description")}
		if item.complete() {
			n.Locations = append(n.Locations, l)
		}
	}
	for _, item := range o.list("suspects") {
		n.Suspects = append(n.Suspects, person(item))
	}
	for _, item := range o.list("victims") {
		n.Victims = append(n.Victims, person(item))
	}
	for _, item := range o.list("content") {
		ct := Content{URL: item.str("url"), Type: item.str("type"), PublishedAt: item.str("published_at"),
			SHA256: item.str("sha256")}
		if item.complete() {
			n.Content = append(n.Content, ct)
		}
	}
	if ct := o.object("contact"); ct != nil {
		n.Contact = &Contact{Name: ct.str("name"), Email: ct.str("email"), Phone: ct.str("phone")}
	}
	n.FollowUpOf = earlier(o, "follow_up_of", n.Reference)
	n.Supersedes = earlier(o, "supersedes", n.Reference)
	n.RelatedReferences = o.references("related_references")
	for _, item := range o.list("prior_reports") {
		n.PriorReports = append(n.PriorReports, PriorReport{Recipient: item.str("recipient"), ID: item.str("id")})
	}
	return n
}

// earlier reads a reference to an earlier notice, which cannot be the
// notice's own. Whether the platform ever sent it, only intake can tell.
func earlier(o *object, name, own string) string {
	ref := o.str(name)
	if ref != "" && ref == own {
		f, _, path := o.at(name)
		o.c.invalid(path, f.Path, "must be the reference of an earlier notice, not this notice's own")
		return ""
	}
	return ref
}

// person reads a suspect or a victim (only victims have minor).
func person(o *object) Person {
	p := Person{
		Country:    o.str("country"),
		AccountID:  o.str("account_id"),
		Username:   o.str("username"),
		ProfileURL: o.str("profile_url"),
	}
	for _, item := range o.list("ip_addresses") {
		p.IPAddresses = append(p.IPAddresses, IPAddress{
			IP:            item.str("ip"),
			Port:          item.port("port"),
			SeenAt:        item.str("seen_at"),
			Event:         item.str("event"),
			PossibleProxy: item.boolean("possible_proxy"),
		})
	}
	p.Phone = o.str("phone")
	if o.has("minor") {
		p.Minor = o.flag("minor")
	}
	return p
}
