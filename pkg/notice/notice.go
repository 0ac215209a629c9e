// Package notice is the domain model of a notice a platform submits under
// DSA Article 18: its fields, their rules, and the canonical form the relay
// stores, hashes and forwards.
package notice

// Categories a notice may have.
var Categories = []string{
	"human_trafficking", "child_sexual_abuse", "grooming", "terrorism",
	"threat_to_life", "self_harm", "other",
}

// Exploitations are the forms of exploitation of Directive 2011/36/EU a
// human_trafficking notice may name.
var Exploitations = []string{
	"sexual", "labour", "criminal_activities", "begging", "organ_removal",
	"forced_marriage", "illegal_adoption", "other",
}

// IPEvents are the kinds of event an IP address may have been seen at.
var IPEvents = []string{"login", "registration", "upload", "message", "purchase", "other"}

// Notice is a validated, normalised notice as the platform submitted it.
// Time stamps stay strings so that the offset the platform gave (the time
// zone of publication, Recital 56) is forwarded untouched. Field order is the
// canonical order: the JSON encoding of a Notice is its canonical form.
type Notice struct {
	Reference      string     `json:"reference"`
	Category       string     `json:"category"`
	Exploitation   string     `json:"exploitation,omitempty"`
	ImminentThreat bool       `json:"imminent_threat"`
	UrgencyReason  string     `json:"urgency_reason,omitempty"`
	Suspicion      string     `json:"suspicion"`
	OccurredAt     string     `json:"occurred_at,omitempty"`
	AwareAt        string     `json:"aware_at,omitempty"`
	Locations      []Location `json:"locations,omitempty"`
	Suspects       []Person   `json:"suspects,omitempty"`
	Victims        []Person   `json:"victims,omitempty"`
	Content        []Content  `json:"content,omitempty"`
	Contact        *Contact   `json:"contact,omitempty"`
	// FollowUpOf is the reference of an earlier notice of the same
	// platform that this one adds to; Supersedes, of one it corrects.
	FollowUpOf        string        `json:"follow_up_of,omitempty"`
	Supersedes        string        `json:"supersedes,omitempty"`
	RelatedReferences []string      `json:"related_references,omitempty"`
	PriorReports      []PriorReport `json:"prior_reports,omitempty"`
}

// Location is a place where the offence took, takes or is likely to take place.
type Location struct {
	Country     string `json:"country,omitempty"`
	Description string `json:"description,omitempty"`
}

// Person is a suspect or a victim. Minor is only meaningful for victims.
type Person struct {
	Country     string      `json:"country,omitempty"`
	AccountID   string      `json:"account_id,omitempty"`
	Username    string      `json:"username,omitempty"`
	ProfileURL  string      `json:"profile_url,omitempty"`
	IPAddresses []IPAddress `json:"ip_addresses,omitempty"`
	Phone       string      `json:"phone,omitempty"`
	Minor       *bool       `json:"minor,omitempty"`
}

// IPAddress is an address a person used, with when and how it was seen.
type IPAddress struct {
	IP     string `json:"ip"`
	Port   *int   `json:"port,omitempty"`
	SeenAt string `json:"seen_at,omitempty"`
	Event  string `json:"event,omitempty"`
	// PossibleProxy is the platform's statement that the address may be a
	// proxy, VPN or other relay: it then says nothing about where the
	// person is and never makes a Member State concerned.
	PossibleProxy bool `json:"possible_proxy,omitempty"`
}

// Content is a piece of content the notice is about.
type Content struct {
	URL         string `json:"url,omitempty"`
	Type        string `json:"type,omitempty"`
	PublishedAt string `json:"published_at,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
}

// Contact is whom the police can reach at the platform about this notice.
type Contact struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// PriorReport is a report of the same matter made elsewhere, e.g. to the
// CyberTipline.
type PriorReport struct {
	Recipient string `json:"recipient"`
	ID        string `json:"id"`
}

// Warning is something valid that makes a notice hard to act on. Field is
// a path as in FieldError; warnings never refuse a notice.
type Warning struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// FieldError is one problem with one field of a submitted notice. Field is
// a path such as "victims[0].country"; the empty path is the body itself.
// Code and Rule say what kind of problem it is without its text, so that
// callers can branch on them and record them (they hold no submitted
// value).
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	// Code is the kind of problem.
	Code Code `json:"-"`
	// Rule is, for CodeInvalid, the Path of the field whose rule was
	// broken (e.g. "victims[].country"), or a list's Path and "[]" for
	// a problem with one of its items (e.g. "locations[]").
	Rule string `json:"-"`
}

// Code is the kind of a FieldError.
type Code string

// Codes of field errors.
const (
	// CodeBody: the body as a whole is unusable (too large, not UTF-8, not
	// JSON, too deep, not an object) or the list of problems was cut.
	CodeBody Code = "body"
	// CodeUnknownField: a key that no field of the notice has.
	CodeUnknownField Code = "unknown_field"
	// CodeDuplicateField: a field given twice in one object.
	CodeDuplicateField Code = "duplicate_field"
	// CodeInvalid: a field of the table (Rule) breaks its rule.
	CodeInvalid Code = "invalid"
)

// bodyError is a problem with the body as a whole.
func bodyError(msg string) *FieldError {
	return &FieldError{Field: "", Message: msg, Code: CodeBody}
}

// Priority is how fast a notice must reach its recipients.
type Priority string

// Priorities.
const (
	Urgent Priority = "urgent"
	Normal Priority = "normal"
)

// Priority returns urgent for a notice that declares an imminent threat.
func (n *Notice) Priority() Priority {
	if n.ImminentThreat {
		return Urgent
	}
	return Normal
}
