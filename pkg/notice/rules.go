package notice

import (
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/jsonbody"
)

// Messages of the rules of string kinds.
const (
	msgTime        = "must be an RFC 3339 time stamp with an offset, e.g. 2026-11-20T14:03:00+01:00"
	msgURL         = "must be an absolute http or https URL"
	msgPhone       = "must be 3 to 32 characters of digits, spaces and + - ( ) . /"
	msgPhoneDigits = "must contain at least 3 digits"
)

// Limits of phone numbers, in characters.
const (
	minPhone = 3
	maxPhone = 32
)

// stringRules are the rules of the kinds of string fields: each returns
// the normalised value, or a message saying what is wrong.
var stringRules = map[Kind]func(f *Field, s string) (string, string){
	KindReference: checkReference,
	KindEnum:      checkEnum,
	KindText:      checkText,
	KindTime:      checkTime,
	KindCountry:   checkCountry,
	KindURL:       checkURL,
	KindPhone:     checkPhone,
	KindEmail:     checkEmail,
	KindIP:        checkIP,
	KindToken:     checkToken,
	KindSHA256:    checkSHA256,
}

// checkString checks a non-empty string s by the rule of f's kind.
func checkString(f *Field, s string) (string, string) {
	rule, ok := stringRules[f.Kind]
	if !ok {
		panic("notice: field " + f.Path + " of kind " + string(f.Kind) + " is not a string")
	}
	return rule(f, s)
}

// tooLong says so when s has more characters than f allows.
func tooLong(f *Field, s string) string {
	if f.MaxLength > 0 && utf8.RuneCountInString(s) > f.MaxLength {
		return fmt.Sprintf("must be at most %d characters", f.MaxLength)
	}
	return ""
}

func checkReference(f *Field, s string) (string, string) {
	if msg := tooLong(f, s); msg != "" {
		return "", msg
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '_' || b == ':' || b == '-') {
			return "", "may only contain letters A-Z and a-z, digits and . _ : -"
		}
	}
	return s, ""
}

func checkEnum(f *Field, s string) (string, string) {
	if !slices.Contains(f.Values, s) {
		return "", "must be one of " + strings.Join(f.Values, ", ")
	}
	return s, ""
}

// checkText checks free text; a required one must not be blank.
func checkText(f *Field, s string) (string, string) {
	if msg := tooLong(f, s); msg != "" {
		return "", msg
	}
	if f.Required && strings.TrimFunc(s, unicode.IsSpace) == "" {
		return "", "must contain a non-whitespace character"
	}
	return s, ""
}

// checkTime keeps a valid time stamp as written.
func checkTime(_ *Field, s string) (string, string) {
	if !validTime(s) {
		return "", msgTime
	}
	return s, ""
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

// checkCountry upper-cases a country code.
func checkCountry(_ *Field, s string) (string, string) {
	code, known := country.Normalize(s)
	if !known {
		return "", fmt.Sprintf("unknown country code %q; want ISO 3166-1 alpha-2", jsonbody.Shorten(s, 16))
	}
	return code, ""
}

// checkURL keeps an absolute http or https URL as written.
func checkURL(f *Field, s string) (string, string) {
	if msg := tooLong(f, s); msg != "" {
		return "", msg
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return "", msgURL
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Opaque != "" || u.Hostname() == "" {
		return "", msgURL
	}
	return s, ""
}

// checkPhone keeps a phone number as written.
func checkPhone(_ *Field, s string) (string, string) {
	digits := 0
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case '0' <= b && b <= '9':
			digits++
		case b == ' ' || b == '+' || b == '-' || b == '(' || b == ')' || b == '.' || b == '/':
		default:
			return "", msgPhone
		}
	}
	// Every character is ASCII by now: bytes are characters.
	if len(s) < minPhone || len(s) > maxPhone {
		return "", msgPhone
	}
	if digits < 3 {
		return "", msgPhoneDigits
	}
	return s, ""
}

// checkEmail keeps a bare e-mail address as written.
func checkEmail(f *Field, s string) (string, string) {
	if msg := tooLong(f, s); msg != "" {
		return "", msg
	}
	addr, err := mail.ParseAddress(s)
	if err != nil {
		return "", "must be an e-mail address, e.g. lea@example.net"
	}
	// Address is the address without quotes; String quotes the local part
	// where that is needed and adds angle brackets.
	if addr.Name != "" || addr.Address != s && addr.String() != "<"+s+">" {
		return "", "must be a bare e-mail address, e.g. lea@example.net, without a name, comment or angle brackets"
	}
	return s, ""
}

// checkIP writes an IP address in canonical form, IPv4-mapped IPv6
// addresses as IPv4.
func checkIP(_ *Field, s string) (string, string) {
	addr, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return "", "must be an IPv4 or IPv6 address"
	case addr.Zone() != "":
		return "", "must be an IP address without a zone"
	}
	return addr.Unmap().String(), ""
}

// checkToken checks a short lower-case word such as a content type.
func checkToken(f *Field, s string) (string, string) {
	valid := len(s) <= f.MaxLength
	for i := 0; valid && i < len(s); i++ {
		b := s[i]
		valid = 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '_' || b == '-'
	}
	if !valid {
		return "", fmt.Sprintf("must be 1 to %d characters of a-z, 0-9, _ and -", f.MaxLength)
	}
	return s, ""
}

// checkSHA256 lower-cases a hex SHA-256 digest.
func checkSHA256(_ *Field, s string) (string, string) {
	valid := len(s) == 64
	for i := 0; valid && i < len(s); i++ {
		b := s[i]
		valid = '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
	}
	if !valid {
		return "", "must be a SHA-256 digest: 64 hexadecimal characters"
	}
	return strings.ToLower(s), ""
}
