package notice

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/jsonbody"
)

// MaxBodyBytes is the largest body intake accepts (1 MiB).
const MaxBodyBytes = 1 << 20

// Limits of the parser itself (the field rules have their own).
const (
	// maxDepth is how deeply arrays and objects may nest. A valid notice
	// nests 5 levels deep (notice, suspects, person, ip_addresses, address).
	maxDepth = 32
	// maxErrors bounds the error list, so that a hostile 1 MiB body cannot
	// make an answer many times its own size.
	maxErrors = jsonbody.MaxErrors
	// maxItems is the most items each array of a notice may hold.
	maxItems = 100
	// maxValues is the most JSON values a body may hold. It bounds the
	// memory a parse takes (about 100 bytes a value) whatever the body's
	// shape: a few MiB for a 1 MiB body. A real notice holds a few hundred;
	// 16,384 is room for 2,500 fully described IP addresses.
	maxValues = 1 << 14
)

// Length limits, in Unicode characters.
const (
	maxReference     = 128
	maxSuspicion     = 10000
	maxUrgencyReason = 3000
	maxDescription   = 1000
	maxIdentifier    = 256 // account_id, username, contact name
	maxURL           = 2048
	maxContentType   = 32
	maxEmail         = 320
	minPhone         = 3
	maxPhone         = 32
)

// Messages that occur in several places.
const (
	msgRequired    = "is required"
	msgNotEmpty    = "must not be empty"
	msgString      = "must be a string"
	msgBoolean     = "must be a boolean"
	msgObject      = "must be an object"
	msgArray       = "must be an array of objects"
	msgUnknown     = "unknown field"
	msgDuplicate   = "duplicate field"
	msgTime        = "must be an RFC 3339 time stamp with an offset, e.g. 2026-11-20T14:03:00+01:00"
	msgURL         = "must be an absolute http or https URL"
	msgPort        = "must be an integer from 0 to 65535"
	msgPhone       = "must be 3 to 32 characters of digits, spaces and + - ( ) . /"
	msgPhoneDigits = "must contain at least 3 digits"
)

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
	if len(body) > MaxBodyBytes {
		return nil, []FieldError{{Field: "", Message: fmt.Sprintf("is larger than %d bytes (1 MiB)", MaxBodyBytes)}}
	}
	root, fe := jsonbody.Parse(body, limits)
	if fe != nil {
		return nil, []FieldError{*fe}
	}
	var c fieldChecker
	n := c.notice(&root)
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return n, nil
}

// limits bound the parse: a body over them yields one error, at "" or at
// the array that has too many items.
var limits = jsonbody.Limits{MaxDepth: maxDepth, MaxItems: maxItems, MaxValues: maxValues}

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

// --- Walking the tree against the schema ------------------------------------

type fieldChecker struct {
	errs jsonbody.Errors
}

func (c *fieldChecker) add(path, msg string) { c.errs.Add(path, msg) }

// fields checks that n is an object with only the given fields, each once,
// and returns the value of each field (nil when absent or null). Unknown and
// duplicate fields are reported in document order. ok is false, with an
// error, when n is not an object.
func (c *fieldChecker) fields(n *jsonbody.Value, path string, names []string) (vals []*jsonbody.Value, ok bool) {
	if n.Kind != jsonbody.Object {
		c.add(path, msgObject)
		return nil, false
	}
	vals = make([]*jsonbody.Value, len(names))
	seen := make([]bool, len(names))
	for i := range n.Members {
		m := &n.Members[i]
		j := indexOfString(names, m.Key)
		switch {
		case j < 0:
			c.add(jsonbody.JoinKey(path, m.Key), msgUnknown)
		case seen[j]:
			c.add(jsonbody.JoinPath(path, m.Key), msgDuplicate)
		default:
			seen[j] = true
			if m.Value.Kind != jsonbody.Null {
				vals[j] = &m.Value
			}
		}
	}
	return vals, true
}

func indexOfString(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// str returns the string at path. A required string must be present and not
// empty; an optional one that is absent, null or "" yields ok == false with
// no error. Strings with C0 control characters other than \t, \n and \r are
// refused.
func (c *fieldChecker) str(n *jsonbody.Value, path string, required bool) (s string, ok bool) {
	switch {
	case n == nil:
		if required {
			c.add(path, msgRequired)
		}
		return "", false
	case n.Kind != jsonbody.String:
		c.add(path, msgString)
		return "", false
	case n.Text == "":
		if required {
			c.add(path, msgNotEmpty)
		}
		return "", false
	case jsonbody.TextProblem(n.Text) != "":
		c.add(path, jsonbody.TextProblem(n.Text))
		return "", false
	}
	return n.Text, true
}

// text returns an optional or required free text of at most max characters.
func (c *fieldChecker) text(n *jsonbody.Value, path string, required bool, max int) string {
	s, ok := c.str(n, path, required)
	if !ok {
		return ""
	}
	if utf8.RuneCountInString(s) > max {
		c.add(path, fmt.Sprintf("must be at most %d characters", max))
		return ""
	}
	return s
}

// oneOf returns an optional or required string that must be one of list.
func (c *fieldChecker) oneOf(n *jsonbody.Value, path string, required bool, list []string) string {
	s, ok := c.str(n, path, required)
	if !ok {
		return ""
	}
	if indexOfString(list, s) < 0 {
		c.add(path, "must be one of "+strings.Join(list, ", "))
		return ""
	}
	return s
}

// array returns the items of an optional array of objects.
func (c *fieldChecker) array(n *jsonbody.Value, path string) []jsonbody.Value {
	if n == nil {
		return nil
	}
	if n.Kind != jsonbody.Array {
		c.add(path, msgArray)
		return nil
	}
	if len(n.Items) > maxItems {
		c.add(path, fmt.Sprintf("must have at most %d items", maxItems))
	}
	return n.Items
}

var noticeFields = []string{
	"reference", "category", "exploitation", "imminent_threat", "urgency_reason", "suspicion",
	"occurred_at", "aware_at", "locations", "suspects", "victims", "content", "contact",
}

func (c *fieldChecker) notice(root *jsonbody.Value) *Notice {
	if root.Kind != jsonbody.Object {
		c.add("", "must be a JSON object")
		return nil
	}
	f, _ := c.fields(root, "", noticeFields)
	n := &Notice{}
	n.Reference = c.reference(f[0], "reference")
	n.Category = c.oneOf(f[1], "category", true, Categories)
	n.Exploitation = c.exploitation(f[2], "exploitation", f[1])
	n.ImminentThreat = c.boolean(f[3], "imminent_threat", true)
	n.UrgencyReason = c.text(f[4], "urgency_reason", false, maxUrgencyReason)
	n.Suspicion = c.suspicion(f[5], "suspicion")
	n.OccurredAt = c.timestamp(f[6], "occurred_at")
	n.AwareAt = c.timestamp(f[7], "aware_at")
	for i, item := range c.array(f[8], "locations") {
		if l, ok := c.location(&item, jsonbody.Index("locations", i)); ok {
			n.Locations = append(n.Locations, l)
		}
	}
	for i, item := range c.array(f[9], "suspects") {
		if p, ok := c.person(&item, jsonbody.Index("suspects", i), suspectFields); ok {
			n.Suspects = append(n.Suspects, p)
		}
	}
	for i, item := range c.array(f[10], "victims") {
		if p, ok := c.person(&item, jsonbody.Index("victims", i), victimFields); ok {
			n.Victims = append(n.Victims, p)
		}
	}
	for i, item := range c.array(f[11], "content") {
		if ct, ok := c.content(&item, jsonbody.Index("content", i)); ok {
			n.Content = append(n.Content, ct)
		}
	}
	if f[12] != nil {
		n.Contact = c.contact(f[12], "contact")
	}
	return n
}

func (c *fieldChecker) reference(n *jsonbody.Value, path string) string {
	s, ok := c.str(n, path, true)
	if !ok {
		return ""
	}
	if utf8.RuneCountInString(s) > maxReference {
		c.add(path, fmt.Sprintf("must be at most %d characters", maxReference))
		return ""
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '_' || b == ':' || b == '-') {
			c.add(path, "may only contain letters A-Z and a-z, digits and . _ : -")
			return ""
		}
	}
	return s
}

func (c *fieldChecker) exploitation(n *jsonbody.Value, path string, category *jsonbody.Value) string {
	s, ok := c.str(n, path, false)
	if !ok {
		return ""
	}
	// Only when the category is itself valid can it rule exploitation out.
	if category != nil && category.Kind == jsonbody.String && indexOfString(Categories, category.Text) >= 0 &&
		category.Text != "human_trafficking" {
		c.add(path, "is only allowed when category is human_trafficking")
		return ""
	}
	if indexOfString(Exploitations, s) < 0 {
		c.add(path, "must be one of "+strings.Join(Exploitations, ", "))
		return ""
	}
	return s
}

func (c *fieldChecker) boolean(n *jsonbody.Value, path string, required bool) bool {
	switch {
	case n == nil:
		if required {
			c.add(path, msgRequired)
		}
	case n.Kind != jsonbody.Bool:
		c.add(path, msgBoolean)
	default:
		return n.Bool
	}
	return false
}

func (c *fieldChecker) suspicion(n *jsonbody.Value, path string) string {
	s := c.text(n, path, true, maxSuspicion)
	if s == "" {
		return ""
	}
	if strings.TrimFunc(s, unicode.IsSpace) == "" {
		c.add(path, "must contain a non-whitespace character")
		return ""
	}
	return s
}

// timestamp returns an optional RFC 3339 time stamp, unchanged.
func (c *fieldChecker) timestamp(n *jsonbody.Value, path string) string {
	s, ok := c.str(n, path, false)
	if !ok {
		return ""
	}
	if !validTime(s) {
		c.add(path, msgTime)
		return ""
	}
	return s
}

// validTime reports whether s is an RFC 3339 date-time with an upper-case T
// and an offset (Z or ±hh:mm) and at most 9 digits of fractional seconds,
// that time.Parse accepts as well. time.Parse alone is more lenient (it takes
// a comma before the fraction, for one).
func validTime(s string) bool {
	const shape = "dddd-dd-ddTdd:dd:dd"
	if len(s) < len(shape)+1 {
		return false
	}
	for i := 0; i < len(shape); i++ {
		if shape[i] == 'd' {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		} else if s[i] != shape[i] {
			return false
		}
	}
	rest := s[len(shape):]
	if rest[0] == '.' {
		i := 1
		for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
			i++
		}
		if i == 1 || i > 10 {
			return false
		}
		rest = rest[i:]
	}
	switch {
	case rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
		'0' <= rest[1] && rest[1] <= '2' && '0' <= rest[2] && rest[2] <= '9' &&
		'0' <= rest[4] && rest[4] <= '5' && '0' <= rest[5] && rest[5] <= '9' &&
		(rest[1] < '2' || rest[2] <= '3'):
	default:
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// countryCode returns an optional country code, upper-cased.
func (c *fieldChecker) countryCode(n *jsonbody.Value, path string) string {
	s, ok := c.str(n, path, false)
	if !ok {
		return ""
	}
	code, known := country.Normalize(s)
	if !known {
		c.add(path, fmt.Sprintf("unknown country code %q; want ISO 3166-1 alpha-2", jsonbody.Shorten(s, 16)))
		return ""
	}
	return code
}

// httpURL returns an optional absolute http or https URL, unchanged.
func (c *fieldChecker) httpURL(n *jsonbody.Value, path string) string {
	s, ok := c.str(n, path, false)
	if !ok {
		return ""
	}
	if utf8.RuneCountInString(s) > maxURL {
		c.add(path, fmt.Sprintf("must be at most %d characters", maxURL))
		return ""
	}
	if !validHTTPURL(s) {
		c.add(path, msgURL)
		return ""
	}
	return s
}

func validHTTPURL(s string) bool {
	if strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	return (u.Scheme == "http" || u.Scheme == "https") && u.Opaque == "" && u.Hostname() != ""
}

// phone returns an optional phone number, unchanged.
func (c *fieldChecker) phone(n *jsonbody.Value, path string) string {
	s, ok := c.str(n, path, false)
	if !ok {
		return ""
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case '0' <= b && b <= '9':
			digits++
		case b == ' ' || b == '+' || b == '-' || b == '(' || b == ')' || b == '.' || b == '/':
		default:
			c.add(path, msgPhone)
			return ""
		}
	}
	// Every character is ASCII by now: bytes are characters.
	if len(s) < minPhone || len(s) > maxPhone {
		c.add(path, msgPhone)
		return ""
	}
	if digits < 3 {
		c.add(path, msgPhoneDigits)
		return ""
	}
	return s
}

var locationFields = []string{"country", "description"}

func (c *fieldChecker) location(n *jsonbody.Value, path string) (Location, bool) {
	f, ok := c.fields(n, path, locationFields)
	if !ok {
		return Location{}, false
	}
	l := Location{
		Country:     c.countryCode(f[0], jsonbody.JoinPath(path, "country")),
		Description: c.text(f[1], jsonbody.JoinPath(path, "description"), false, maxDescription),
	}
	if isEmptyString(f[0]) && isEmptyString(f[1]) {
		c.add(path, "must have a country or a description")
		return Location{}, false
	}
	return l, true
}

// isEmptyString reports whether an optional value counts as absent.
func isEmptyString(n *jsonbody.Value) bool {
	return n == nil || n.Kind == jsonbody.String && n.Text == ""
}

var (
	suspectFields = []string{"country", "account_id", "username", "profile_url", "ip_addresses", "phone"}
	victimFields  = []string{"country", "account_id", "username", "profile_url", "ip_addresses", "phone", "minor"}
)

func (c *fieldChecker) person(n *jsonbody.Value, path string, names []string) (Person, bool) {
	f, ok := c.fields(n, path, names)
	if !ok {
		return Person{}, false
	}
	p := Person{
		Country:    c.countryCode(f[0], jsonbody.JoinPath(path, "country")),
		AccountID:  c.text(f[1], jsonbody.JoinPath(path, "account_id"), false, maxIdentifier),
		Username:   c.text(f[2], jsonbody.JoinPath(path, "username"), false, maxIdentifier),
		ProfileURL: c.httpURL(f[3], jsonbody.JoinPath(path, "profile_url")),
	}
	ipPath := jsonbody.JoinPath(path, "ip_addresses")
	for i, item := range c.array(f[4], ipPath) {
		if a, ok := c.ipAddress(&item, jsonbody.Index(ipPath, i)); ok {
			p.IPAddresses = append(p.IPAddresses, a)
		}
	}
	p.Phone = c.phone(f[5], jsonbody.JoinPath(path, "phone"))
	if len(f) > 6 && f[6] != nil {
		if m := f[6]; m.Kind == jsonbody.Bool {
			minor := m.Bool
			p.Minor = &minor
		} else {
			c.add(jsonbody.JoinPath(path, "minor"), msgBoolean)
		}
	}
	return p, true
}

var ipFields = []string{"ip", "port", "seen_at", "event", "possible_proxy"}

func (c *fieldChecker) ipAddress(n *jsonbody.Value, path string) (IPAddress, bool) {
	f, ok := c.fields(n, path, ipFields)
	if !ok {
		return IPAddress{}, false
	}
	var a IPAddress
	ipPath := jsonbody.JoinPath(path, "ip")
	if s, ok := c.str(f[0], ipPath, true); ok {
		addr, err := netip.ParseAddr(s)
		switch {
		case err != nil:
			c.add(ipPath, "must be an IPv4 or IPv6 address")
		case addr.Zone() != "":
			c.add(ipPath, "must be an IP address without a zone")
		default:
			a.IP = addr.Unmap().String()
		}
	}
	a.Port = c.port(f[1], jsonbody.JoinPath(path, "port"))
	a.SeenAt = c.timestamp(f[2], jsonbody.JoinPath(path, "seen_at"))
	a.Event = c.oneOf(f[3], jsonbody.JoinPath(path, "event"), false, IPEvents)
	a.PossibleProxy = c.boolean(f[4], jsonbody.JoinPath(path, "possible_proxy"), false)
	return a, true
}

// port returns an optional port: a plain JSON integer from 0 to 65535
// (not 1.5, not 1e3, not "80").
func (c *fieldChecker) port(n *jsonbody.Value, path string) *int {
	if n == nil {
		return nil
	}
	if n.Kind != jsonbody.Number || strings.ContainsAny(n.Text, ".eE") {
		c.add(path, msgPort)
		return nil
	}
	p, err := strconv.Atoi(n.Text)
	if err != nil || p < 0 || p > 65535 {
		c.add(path, msgPort)
		return nil
	}
	return &p
}

var contentFields = []string{"url", "type", "published_at", "sha256"}

func (c *fieldChecker) content(n *jsonbody.Value, path string) (Content, bool) {
	f, ok := c.fields(n, path, contentFields)
	if !ok {
		return Content{}, false
	}
	ct := Content{
		URL:         c.httpURL(f[0], jsonbody.JoinPath(path, "url")),
		Type:        c.contentType(f[1], jsonbody.JoinPath(path, "type")),
		PublishedAt: c.timestamp(f[2], jsonbody.JoinPath(path, "published_at")),
		SHA256:      c.sha256(f[3], jsonbody.JoinPath(path, "sha256")),
	}
	empty := true
	for _, v := range f {
		if !isEmptyString(v) {
			empty = false
		}
	}
	if empty {
		c.add(path, "must have at least one of url, type, published_at, sha256")
		return Content{}, false
	}
	return ct, true
}

func (c *fieldChecker) contentType(n *jsonbody.Value, path string) string {
	s, ok := c.str(n, path, false)
	if !ok {
		return ""
	}
	valid := len(s) <= maxContentType
	for i := 0; valid && i < len(s); i++ {
		b := s[i]
		valid = 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '_' || b == '-'
	}
	if !valid {
		c.add(path, "must be 1 to 32 characters of a-z, 0-9, _ and -")
		return ""
	}
	return s
}

func (c *fieldChecker) sha256(n *jsonbody.Value, path string) string {
	s, ok := c.str(n, path, false)
	if !ok {
		return ""
	}
	valid := len(s) == 64
	for i := 0; valid && i < len(s); i++ {
		b := s[i]
		valid = '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
	}
	if !valid {
		c.add(path, "must be a SHA-256 digest: 64 hexadecimal characters")
		return ""
	}
	return strings.ToLower(s)
}

var contactFields = []string{"name", "email", "phone"}

func (c *fieldChecker) contact(n *jsonbody.Value, path string) *Contact {
	f, ok := c.fields(n, path, contactFields)
	if !ok {
		return nil
	}
	return &Contact{
		Name:  c.text(f[0], jsonbody.JoinPath(path, "name"), false, maxIdentifier),
		Email: c.email(f[1], jsonbody.JoinPath(path, "email")),
		Phone: c.phone(f[2], jsonbody.JoinPath(path, "phone")),
	}
}

func (c *fieldChecker) email(n *jsonbody.Value, path string) string {
	s, ok := c.str(n, path, false)
	if !ok {
		return ""
	}
	if utf8.RuneCountInString(s) > maxEmail {
		c.add(path, fmt.Sprintf("must be at most %d characters", maxEmail))
		return ""
	}
	addr, err := mail.ParseAddress(s)
	if err != nil {
		c.add(path, "must be an e-mail address, e.g. lea@example.net")
		return ""
	}
	// Address is the address without quotes; String quotes the local part
	// where that is needed and adds angle brackets.
	if addr.Name != "" || addr.Address != s && addr.String() != "<"+s+">" {
		c.add(path, "must be a bare e-mail address, e.g. lea@example.net, without a name, comment or angle brackets")
		return ""
	}
	return s
}
