package notice

import (
	"strings"

	"github.com/noticerelay/noticerelay/pkg/jsonbody"
)

// Kind is what a field of a notice holds. It decides the field's rule in
// the parser and how a form shows the field.
type Kind string

// Kinds of fields.
const (
	// KindReference is a platform's reference: 1 to MaxLength characters of
	// A-Z a-z 0-9 . _ : -.
	KindReference Kind = "reference"
	// KindEnum is one of Values.
	KindEnum Kind = "enum"
	// KindBool is true or false.
	KindBool Kind = "bool"
	// KindText is free text of at most MaxLength characters; a required
	// one must contain a non-whitespace character.
	KindText Kind = "text"
	// KindTime is an RFC 3339 time stamp with an offset, kept as written.
	KindTime Kind = "time"
	// KindCountry is an ISO 3166-1 alpha-2 code in any letter case, stored
	// upper-cased.
	KindCountry Kind = "country"
	// KindURL is an absolute http or https URL of at most MaxLength
	// characters.
	KindURL Kind = "url"
	// KindPhone is 3 to 32 characters of digits, spaces and + - ( ) . /,
	// at least 3 of them digits.
	KindPhone Kind = "phone"
	// KindEmail is a bare e-mail address of at most MaxLength characters.
	KindEmail Kind = "email"
	// KindIP is an IPv4 or IPv6 address without a zone, stored in
	// canonical form.
	KindIP Kind = "ip"
	// KindPort is a JSON integer from 0 to 65535.
	KindPort Kind = "port"
	// KindToken is 1 to MaxLength characters of a-z 0-9 _ - (the type of
	// a piece of content).
	KindToken Kind = "token"
	// KindSHA256 is 64 hexadecimal characters, stored lower-cased.
	KindSHA256 Kind = "sha256"
	// KindObject is a JSON object with the given Fields.
	KindObject Kind = "object"
	// KindList is an array of at most MaxItems objects, each with the
	// given Fields.
	KindList Kind = "list"
	// KindReferences is an array of at most MaxItems references, each of
	// at most MaxLength characters.
	KindReferences Kind = "references"
)

// Field describes one field of a notice: its place, its rule and how a
// person would name it. The parser, intake's reason codes, the OpenAPI
// schema's test and the portal's form all read the same table, Fields.
type Field struct {
	// Name is the JSON key, e.g. "port".
	Name string
	// Path is the field's place in a notice with list indices left out,
	// e.g. "suspects[].ip_addresses[].port". A problem with one item of a
	// list is reported under the list's Path with "[]" appended.
	Path string
	// Kind is what the field holds.
	Kind Kind
	// Label names the field for a person, e.g. on a form.
	Label string
	// Help is one sentence a form may show under the field; may be empty.
	Help string
	// Required fields must be present and, for strings, not empty.
	// Optional fields that are null, absent or "" count as absent.
	Required bool
	// Values are the allowed values of a KindEnum field.
	Values []string
	// MaxLength is the most characters a string may have; 0: no limit of
	// its own (KindTime, KindPhone and the like have fixed shapes).
	MaxLength int
	// MaxItems is the most items a KindList may hold.
	MaxItems int
	// Fields are the fields of a KindObject, or of each item of a KindList.
	Fields []Field
	// NeedsOneOf, on a KindObject or KindList, names the fields of which
	// an object (each item) must have at least one that is not empty.
	NeedsOneOf []string
	// OnlyIf, when set, allows the field only when the field OnlyIf.Field
	// of the same object has the value OnlyIf.Value.
	OnlyIf *Condition
	// Recommended, when set, is the warning a notice gets when the field
	// is absent (an object: absent or with no field given), and
	// RecommendedIf, if set, holds: the notice is valid, but harder to
	// act on.
	Recommended   string
	RecommendedIf *Condition
}

// Condition is a rule that holds when a sibling field has a value: a
// string as written, a boolean as "true" or "false".
type Condition struct {
	Field string // a sibling field's Name
	Value string
}

// Limits of fields, in Unicode characters or items.
const (
	maxReference     = 128
	maxSuspicion     = 10000
	maxUrgencyReason = 3000
	maxDescription   = 1000
	maxIdentifier    = 256 // account_id, username, contact name
	maxURL           = 2048
	maxContentType   = 32
	maxEmail         = 320
	// maxItems is the most items each list of a notice may hold.
	maxItems = 100
	// maxLinks is the most related references and prior reports.
	maxLinks = 20
)

// personFields are the fields of a suspect or (with minor) a victim.
func personFields(victim bool) []Field {
	fs := []Field{
		{Name: "country", Kind: KindCountry, Label: "Country", Help: "Where the person resides or is located."},
		{Name: "account_id", Kind: KindText, Label: "Account id", MaxLength: maxIdentifier},
		{Name: "username", Kind: KindText, Label: "User name", MaxLength: maxIdentifier},
		{Name: "profile_url", Kind: KindURL, Label: "Profile URL", MaxLength: maxURL},
		{Name: "ip_addresses", Kind: KindList, Label: "IP addresses", MaxItems: maxItems, Fields: []Field{
			{Name: "ip", Kind: KindIP, Label: "IP address", Required: true},
			{Name: "port", Kind: KindPort, Label: "Port",
				Help:        "The source port: behind carrier-grade NAT the address alone names many subscribers.",
				Recommended: "without the source port, an address shared by many subscribers (carrier-grade NAT) may not lead to the person"},
			{Name: "seen_at", Kind: KindTime, Label: "Seen at",
				Recommended: "without the time it was used, an IP address cannot be traced to a subscriber"},
			{Name: "event", Kind: KindEnum, Label: "Event", Values: IPEvents},
			{Name: "possible_proxy", Kind: KindBool, Label: "May be a proxy or VPN",
				Help: "Then the address says nothing about where the person is."},
		}},
		{Name: "phone", Kind: KindPhone, Label: "Phone number"},
	}
	if victim {
		fs = append(fs, Field{Name: "minor", Kind: KindBool, Label: "Minor"})
	}
	return fs
}

// fieldTable is the notice's fields in canonical order (the order of the
// Notice struct). It is never changed after start-up; Fields hands out
// copies.
var fieldTable = withPaths("", []Field{
	{Name: "reference", Kind: KindReference, Label: "Reference", Required: true, MaxLength: maxReference,
		Help: "Your own id of this notice, unique for your platform."},
	{Name: "category", Kind: KindEnum, Label: "Category", Required: true, Values: Categories},
	{Name: "exploitation", Kind: KindEnum, Label: "Form of exploitation", Values: Exploitations,
		OnlyIf: &Condition{Field: "category", Value: "human_trafficking"}},
	{Name: "imminent_threat", Kind: KindBool, Label: "Imminent threat to life or safety", Required: true,
		Help: "Makes the notice urgent."},
	{Name: "urgency_reason", Kind: KindText, Label: "Why the threat is imminent", MaxLength: maxUrgencyReason,
		Recommended:   "an imminent threat without a reason is hard to assess: say why the threat is imminent",
		RecommendedIf: &Condition{Field: "imminent_threat", Value: "true"}},
	{Name: "suspicion", Kind: KindText, Label: "Why you suspect an offence", Required: true, MaxLength: maxSuspicion},
	{Name: "occurred_at", Kind: KindTime, Label: "When it happened"},
	{Name: "aware_at", Kind: KindTime, Label: "When you became aware of it"},
	{Name: "locations", Kind: KindList, Label: "Places of the offence", MaxItems: maxItems,
		NeedsOneOf: []string{"country", "description"}, Fields: []Field{
			{Name: "country", Kind: KindCountry, Label: "Country"},
			{Name: "description", Kind: KindText, Label: "Description", MaxLength: maxDescription},
		}},
	{Name: "suspects", Kind: KindList, Label: "Suspects", MaxItems: maxItems, Fields: personFields(false)},
	{Name: "victims", Kind: KindList, Label: "Victims", MaxItems: maxItems, Fields: personFields(true)},
	{Name: "content", Kind: KindList, Label: "Content", MaxItems: maxItems,
		NeedsOneOf: []string{"url", "type", "published_at", "sha256"}, Fields: []Field{
			{Name: "url", Kind: KindURL, Label: "URL", MaxLength: maxURL},
			{Name: "type", Kind: KindToken, Label: "Type", MaxLength: maxContentType, Help: "e.g. text, image, video"},
			{Name: "published_at", Kind: KindTime, Label: "Published at"},
			{Name: "sha256", Kind: KindSHA256, Label: "SHA-256"},
		}},
	{Name: "contact", Kind: KindObject, Label: "Contact at your platform",
		Recommended: "no contact: the police cannot reach anyone at the platform about this notice", Fields: []Field{
			{Name: "name", Kind: KindText, Label: "Name", MaxLength: maxIdentifier},
			{Name: "email", Kind: KindEmail, Label: "E-mail", MaxLength: maxEmail},
			{Name: "phone", Kind: KindPhone, Label: "Phone number"},
		}},
	{Name: "follow_up_of", Kind: KindReference, Label: "Follow-up of", MaxLength: maxReference,
		Help: "The reference of an earlier notice of yours on the same case: this one adds to it."},
	{Name: "supersedes", Kind: KindReference, Label: "Supersedes", MaxLength: maxReference,
		Help: "The reference of an earlier notice of yours that this one corrects."},
	{Name: "related_references", Kind: KindReferences, Label: "Related notices", MaxItems: maxLinks, MaxLength: maxReference,
		Help: "References of other notices of yours that are related."},
	{Name: "prior_reports", Kind: KindList, Label: "Reports made elsewhere", MaxItems: maxLinks,
		Help: "Where else this was reported, e.g. a CyberTipline report number.", Fields: []Field{
			{Name: "recipient", Kind: KindText, Label: "Reported to", Required: true, MaxLength: maxIdentifier},
			{Name: "id", Kind: KindText, Label: "Report id", Required: true, MaxLength: maxIdentifier},
		}},
})

// withPaths sets the Path of every field below prefix.
func withPaths(prefix string, fs []Field) []Field {
	for i := range fs {
		f := &fs[i]
		f.Path = jsonbody.JoinPath(prefix, f.Name)
		inner := f.Path
		if f.Kind == KindList {
			inner += "[]"
		}
		f.Fields = withPaths(inner, f.Fields)
	}
	return fs
}

// Fields returns the fields of a notice, in canonical order, each with the
// fields inside it. The slices are the caller's own.
func Fields() []Field { return copyFields(fieldTable) }

func copyFields(fs []Field) []Field {
	if fs == nil {
		return nil
	}
	out := make([]Field, len(fs))
	for i, f := range fs {
		f.Values = append([]string(nil), f.Values...)
		f.NeedsOneOf = append([]string(nil), f.NeedsOneOf...)
		f.OnlyIf = copyCondition(f.OnlyIf)
		f.RecommendedIf = copyCondition(f.RecommendedIf)
		f.Fields = copyFields(f.Fields)
		out[i] = f
	}
	return out
}

func copyCondition(c *Condition) *Condition {
	if c == nil {
		return nil
	}
	cc := *c
	return &cc
}

// Lookup returns the field at path, e.g. "suspects[].ip_addresses[].port".
func Lookup(path string) (Field, bool) {
	fs := fieldTable
	for {
		name, rest, more := strings.Cut(path, ".")
		list := strings.HasSuffix(name, "[]")
		name = strings.TrimSuffix(name, "[]")
		i := fieldIndex(fs, name)
		if i < 0 || list != (more && fs[i].Kind == KindList) {
			return Field{}, false
		}
		if !more {
			return copyFields(fs[i : i+1])[0], true
		}
		fs, path = fs[i].Fields, rest
	}
}

// fieldIndex returns the index of the field called name in fs, or -1.
func fieldIndex(fs []Field, name string) int {
	for i := range fs {
		if fs[i].Name == name {
			return i
		}
	}
	return -1
}
