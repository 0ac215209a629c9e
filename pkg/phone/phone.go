// Package phone reads a phone number to the region it belongs to, with the
// numbering plans of libphonenumber (github.com/nyaruka/phonenumbers).
package phone

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Region returns the ISO 3166-1 alpha-2 region of number, or "" unless it
// is a valid number of one region. A number in international format
// ("+49 151 12345678", "+33612345678") needs no hint; a number in national
// format ("0151 12345678") is read in the numbering plan of hint, the
// region the person is declared to be in, and is "" without one. Numbers
// shared by several regions (+1, +7, +44, +262, +590, ...) resolve to the
// region whose plan the number fits, e.g. RE for +262 262 ... and YT for
// +262 269 ...; non-geographic numbers (+800, +882, ...) have no region.
//
// Region has the signature of jurisdiction.PhoneRegion.
func Region(number, hint string) string {
	num, err := phonenumbers.Parse(number, strings.ToUpper(strings.TrimSpace(hint)))
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return ""
	}
	r := phonenumbers.GetRegionCodeForNumber(num)
	if len(r) != 2 || r == "ZZ" {
		return ""
	}
	return r
}
