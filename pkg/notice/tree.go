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
	// memory a parse takes (about 100 bytes a value, twice: the parse and
	// the tree the walk reads) whatever the body's shape: a few MiB for a
	// 1 MiB body, not the 130 MB a generic tree of half a million tiny
	// values took (issue 10, finding 11). A real notice holds a few
	// hundred; 16,384 is room for 2,500 fully described IP addresses.
	maxValues = 1 << 14
)

// parseLimits bound the parse. An array may hold up to the whole value
// budget, so that a list over its field's MaxItems is reported by the walk
// at its path, beside every other problem.
var parseLimits = jsonbody.Limits{MaxDepth: maxDepth, MaxItems: maxValues, MaxValues: maxValues}

type jsonKind uint8

const (
	nodeNull jsonKind = iota
	nodeBool
	nodeNumber
	nodeString
	nodeArray
	nodeObject
)

// jsonNode is a JSON value. Objects keep every member in document order,
// duplicates included, so that the walk can report them.
type jsonNode struct {
	kind    jsonKind
	b       bool
	s       string // string value, or the literal of a number
	items   []jsonNode
	members []jsonMember
}

type jsonMember struct {
	key string
	val jsonNode
}

// decodeTree parses body into a tree with the relay's one strict, bounded
// JSON parser (jsonbody.Parse); it fails with the one error at "" that
// makes the body unusable. The tree holds copies: the caller may reuse
// body at once.
func decodeTree(body []byte) (jsonNode, *FieldError) {
	v, fe := jsonbody.Parse(body, parseLimits)
	if fe != nil {
		return jsonNode{}, &FieldError{Field: fe.Field, Message: fe.Message, Code: CodeBody}
	}
	return fromValue(&v), nil
}

// fromValue converts a parsed value into the walk's tree.
func fromValue(v *jsonbody.Value) jsonNode {
	n := jsonNode{b: v.Bool, s: v.Text}
	switch v.Kind {
	case jsonbody.Null:
		n.kind = nodeNull
	case jsonbody.Bool:
		n.kind = nodeBool
	case jsonbody.Number:
		n.kind = nodeNumber
	case jsonbody.String:
		n.kind = nodeString
	case jsonbody.Array:
		n.kind = nodeArray
		n.items = make([]jsonNode, len(v.Items))
		for i := range v.Items {
			n.items[i] = fromValue(&v.Items[i])
		}
	case jsonbody.Object:
		n.kind = nodeObject
		n.members = make([]jsonMember, len(v.Members))
		for i := range v.Members {
			n.members[i] = jsonMember{key: v.Members[i].Key, val: fromValue(&v.Members[i].Value)}
		}
	}
	return n
}
