package notice

import (
	"github.com/noticerelay/noticerelay/pkg/jsonbody"
)

// Limits of the parser itself (the field table has its own, e.g. 100 items
// per list, which the walk reports with every other problem).
const (
	// maxDepth is how deeply arrays and objects may nest. A valid notice
	// nests 5 levels deep (notice, suspects, person, ip_addresses, address).
	maxDepth = 32
	// maxValues is the most JSON values a body may hold. It bounds the
	// memory a parse takes (about 100 bytes a value; the walk reads the
	// parser's tree itself) whatever the body's shape: at most a few MiB for a
	// 1 MiB body, not the 130 MB a generic tree of half a million tiny
	// values took (issue 10, finding 11). A real notice holds a few
	// hundred; 16,384 is room for 2,500 fully described IP addresses.
	maxValues = 1 << 14
)

// parseLimits bound the parse. An array may hold up to the whole value
// budget, so that a list over its field's MaxItems is reported by the walk
// at its path, beside every other problem.
var parseLimits = jsonbody.Limits{MaxDepth: maxDepth, MaxItems: maxValues, MaxValues: maxValues}

// decodeTree parses body into the tree the walk reads, with the relay's
// one strict, bounded JSON parser (jsonbody.Parse); it fails with the one
// error at "" that makes the body unusable. The tree holds copies: the
// caller may reuse body at once.
func decodeTree(body []byte) (jsonbody.Value, *FieldError) {
	v, fe := jsonbody.Parse(body, parseLimits)
	if fe != nil {
		return jsonbody.Value{}, &FieldError{Field: fe.Field, Message: fe.Message, Code: CodeBody}
	}
	return v, nil
}
