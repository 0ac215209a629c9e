package intake

import (
	"slices"
	"testing"

	"github.com/noticerelay/noticerelay/pkg/notice"
)

// TestReasonCodes: reason codes come from the parser's structured errors,
// never from their text. A bad possible_proxy once got "malformed" because
// intake's own list of field paths lacked it.
func TestReasonCodes(t *testing.T) {
	const base = `"reference": "R-1", "category": "other", "imminent_threat": false, "suspicion": "s"`
	for _, tc := range []struct {
		body string
		want []string
	}{
		{`{` + base + `, "suspects": [{"ip_addresses": [{"ip": "::1", "possible_proxy": "yes"}]}]}`,
			[]string{"invalid:suspects[].ip_addresses[].possible_proxy"}},
		{`{` + base + `, "victims": [{"ip_addresses": [{"ip": "::1", "possible_proxy": 1}]}]}`,
			[]string{"invalid:victims[].ip_addresses[].possible_proxy"}},
		{`{` + base + `, "victims": [{"country": "XX"}, {"country": "YY"}], "locations": [{}]}`,
			[]string{"invalid:locations[]", "invalid:victims[].country"}},
		{`{` + base + `, "Reference": "x", "suspects": [{"minor": true}]}`, []string{"unknown_or_duplicate_field"}},
		{`{"reference": "R-1", "reference": "R-2"}`,
			[]string{"unknown_or_duplicate_field", "invalid:category", "invalid:imminent_threat", "invalid:suspicion"}},
		{`[]`, []string{"malformed"}},
		{`{`, []string{"malformed"}},
	} {
		_, errs := notice.Parse([]byte(tc.body))
		if got := reasonCodes(errs); !slices.Equal(got, tc.want) {
			t.Errorf("%s: reasons %q, want %q", tc.body, got, tc.want)
		}
	}
}
