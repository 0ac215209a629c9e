package phone

import "testing"

func TestRegion(t *testing.T) {
	for _, tc := range []struct {
		number, hint, want string
	}{
		// E.164 and other international forms: the hint does not matter.
		{"+4915112345678", "", "DE"},
		{"+49 151 12345678", "FR", "DE"},
		{"+49 (0)151 1234 5678", "", "DE"},
		{"+33 6 12 34 56 78", "", "FR"},
		{"+43 660 1234567", "", "AT"},
		{"+40 721 234 567", "", "RO"},
		{"+353 85 123 4567", "", "IE"},
		{"+30 691 234 5678", "", "GR"},
		{"+1 202 555 0143", "", "US"},
		{"+44 20 7946 0018", "", "GB"},
		{"+44 7911 123456", "", "GG"},   // Guernsey mobile, shared code with the UK
		{"+262 692 12 34 56", "", "RE"}, // Réunion, shared code with Mayotte
		{"+262 639 01 23 45", "", "YT"}, // Mayotte
		{"+358 18 12345", "", "AX"},     // Åland, shared code with Finland
		{"+47 79 12 34 56", "", "SJ"},   // Svalbard, shared code with Norway
		// International prefix of the hint's plan.
		{"0049 151 12345678", "FR", "DE"},
		{"00 43 660 1234567", "DE", "AT"},
		// National formats need the declared country as a hint.
		{"0151 12345678", "DE", "DE"},
		{"0151 12345678", "de", "DE"},
		{"06 12 34 56 78", "FR", "FR"},
		{"0660 1234567", "AT", "AT"},
		{"0151 12345678", "", ""},
		{"0151 12345678", "ZZ", ""},
		// Garbage, short, invalid and non-geographic numbers.
		{"", "DE", ""},
		{"abc", "DE", ""},
		{"+", "", ""},
		{"+49 151", "", ""},
		{"+49 123", "DE", ""},
		{"12345", "", ""},
		{"+999 123 456 789", "", ""},
		{"+800 1234 5678", "", ""},
		{"(0)", "DE", ""},
	} {
		if got := Region(tc.number, tc.hint); got != tc.want {
			t.Errorf("Region(%q, %q) = %q, want %q", tc.number, tc.hint, got, tc.want)
		}
	}
}
