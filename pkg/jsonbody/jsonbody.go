// Package jsonbody is the one strict JSON decoder for every request body the
// relay accepts: notices, withdrawals, acknowledgements. It refuses what
// encoding/json lets through (invalid UTF-8 replaced, duplicate keys with the
// last one winning, control and bidirectional characters kept) and answers
// every problem with a field path, so that a handler can answer 400 with
// problem+json field errors like intake's.
//
// Its parser works on the body in memory with a fixed budget: nesting depth,
// items per array and values per body. A hostile 1 MiB body therefore costs
// a few MiB and a few milliseconds, not the hundreds of MB a generic tree of
// half a million tiny values would take; the first array over its limit or
// the first value over the budget ends the parse with one error.
package jsonbody

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// FieldError is one problem with one field of a body. Field is a path such
// as "victims[0].country"; the empty path is the body itself.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Kind is the type of a JSON value.
type Kind uint8

// Kinds of JSON value.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

// Value is a parsed JSON value. Objects keep every member in document order,
// duplicates included, so that a schema walk can report them.
type Value struct {
	Kind Kind
	Bool bool
	// Text is a string's value or a number's literal.
	Text    string
	Items   []Value
	Members []Member
}

// Member is one key and value of an object.
type Member struct {
	Key   string
	Value Value
}

// Limits bound what a parse may build.
type Limits struct {
	// MaxDepth is how deeply arrays and objects may nest.
	MaxDepth int
	// MaxItems is the most items any array may hold.
	MaxItems int
	// MaxValues is the most values (of any kind, containers included) the
	// whole body may hold.
	MaxValues int
}

// Parse parses body, which must be one JSON value with nothing after it but
// white space. It fails with one error: at "" for a body that is empty, not
// UTF-8, not JSON, nested too deeply or over the value budget; at the
// array's path for an array with too many items.
//
// It reads the body twice: first it only checks it and counts, allocating
// nothing per value, so that a body it refuses costs a scan of its first
// bytes up to the problem and no garbage; then it builds the tree into two
// slices of exactly the size counted.
func Parse(body []byte, lim Limits) (Value, *FieldError) {
	if !utf8.Valid(body) {
		return Value{}, &FieldError{"", fmt.Sprintf("is not valid UTF-8 (at byte %d)", invalidUTF8At(body))}
	}
	p := parser{body: body, lim: lim}
	if _, fe := p.parse(); fe != nil {
		return Value{}, fe
	}
	// Values are copied out of the body: the caller may reuse it at once.
	p.build = true
	p.items, p.members = make([]Value, p.nItems), make([]Member, p.nMembers)
	p.pos, p.values, p.next = 0, 0, 0
	return p.parse()
}

// parse is one pass over the body.
func (p *parser) parse() (Value, *FieldError) {
	p.space()
	if p.pos == len(p.body) {
		return Value{}, &FieldError{"", "is empty; want a JSON object"}
	}
	v, ok := p.value(0)
	if !ok {
		return Value{}, p.err
	}
	p.space()
	if p.pos < len(p.body) {
		return Value{}, &FieldError{"", fmt.Sprintf("is not valid JSON: unexpected data after the top-level value (at byte %d)", p.pos)}
	}
	return v, nil
}

// invalidUTF8At returns the offset of the first byte of b that is not part
// of a valid UTF-8 sequence.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

type pathElem struct {
	// key is an object's key as it stands in the body, quoted; index is
	// -1 for a key.
	key   []byte
	index int
}

// parser is one parse of a body: a checking pass (build false) that
// counts the values and the size of every array and object, then a
// building pass.
type parser struct {
	body   []byte
	pos    int
	lim    Limits
	values int
	path   []pathElem
	err    *FieldError

	build bool
	// sizes are the numbers of items or members of every array and
	// object, in the order they open; next is the next to open while
	// building.
	sizes []int32
	next  int
	// nItems and nMembers are the totals of sizes; items and members are
	// what is left of the slices the building pass takes them from.
	nItems, nMembers int
	items            []Value
	members          []Member
}

// open is the index in p.sizes of the array or object that opens now.
func (p *parser) open() int {
	if p.build {
		p.next++
		return p.next - 1
	}
	if len(p.sizes) == cap(p.sizes) {
		// Doubling, up to one per value of the budget: append grows
		// large slices by a quarter, which allocates about five times
		// the final size on the way.
		p.sizes = append(make([]int32, 0, min(2*cap(p.sizes)+64, p.lim.MaxValues)), p.sizes...)
	}
	p.sizes = append(p.sizes, 0)
	return len(p.sizes) - 1
}

func (p *parser) space() {
	for p.pos < len(p.body) {
		switch p.body[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) peek() byte {
	if p.pos < len(p.body) {
		return p.body[p.pos]
	}
	return 0
}

// here renders the path of the value being parsed.
func (p *parser) here() string {
	path := ""
	for _, e := range p.path {
		if e.index < 0 {
			path = JoinKey(path, unquote(e.key))
		} else {
			path = Index(path, e.index)
		}
	}
	return path
}

// unquote returns the text of a valid JSON string literal.
func unquote(lit []byte) string {
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return string(lit)
	}
	return s
}

func (p *parser) value(depth int) (Value, bool) {
	p.space()
	p.values++
	if p.values > p.lim.MaxValues {
		p.err = &FieldError{"", fmt.Sprintf("holds more than %d JSON values (at byte %d)", p.lim.MaxValues, p.pos)}
		return Value{}, false
	}
	switch c := p.peek(); {
	case c == '{' || c == '[':
		if depth >= p.lim.MaxDepth {
			p.err = &FieldError{"", fmt.Sprintf("is nested more than %d levels deep (at byte %d)", p.lim.MaxDepth, p.pos+1)}
			return Value{}, false
		}
		if c == '{' {
			return p.object(depth)
		}
		return p.array(depth)
	case c == '"':
		s, ok := p.str()
		return Value{Kind: String, Text: s}, ok
	case c == 't':
		return p.literal("true", Value{Kind: Bool, Bool: true})
	case c == 'f':
		return p.literal("false", Value{Kind: Bool})
	case c == 'n':
		return p.literal("null", Value{Kind: Null})
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	}
	return p.syntax()
}

func (p *parser) object(depth int) (Value, bool) {
	p.pos++
	v := Value{Kind: Object}
	slot := p.open()
	if p.build {
		n := p.sizes[slot]
		v.Members, p.members = p.members[:0:n], p.members[n:]
	}
	p.space()
	if p.peek() == '}' {
		p.pos++
		return v, true
	}
	for n := 1; ; n++ {
		p.space()
		if p.peek() != '"' {
			return p.syntax()
		}
		start := p.pos
		key, ok := p.str()
		if !ok {
			return Value{}, false
		}
		p.path = append(p.path, pathElem{key: p.body[start:p.pos], index: -1})
		p.space()
		if p.peek() != ':' {
			return p.syntax()
		}
		p.pos++
		val, ok := p.value(depth + 1)
		p.path = p.path[:len(p.path)-1]
		if !ok {
			return Value{}, false
		}
		if p.build {
			v.Members = append(v.Members, Member{key, val})
		}
		p.space()
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
			p.pos++
			if !p.build {
				p.sizes[slot] = int32(n)
				p.nMembers += n
			}
			return v, true
		default:
			return p.syntax()
		}
	}
}

func (p *parser) array(depth int) (Value, bool) {
	p.pos++
	v := Value{Kind: Array}
	slot := p.open()
	if p.build {
		n := p.sizes[slot]
		v.Items, p.items = p.items[:0:n], p.items[n:]
	}
	p.space()
	if p.peek() == ']' {
		p.pos++
		return v, true
	}
	for i := 0; ; i++ {
		if i == p.lim.MaxItems {
			p.err = &FieldError{p.here(), fmt.Sprintf("must have at most %d items", p.lim.MaxItems)}
			return Value{}, false
		}
		p.path = append(p.path, pathElem{index: i})
		item, ok := p.value(depth + 1)
		p.path = p.path[:len(p.path)-1]
		if !ok {
			return Value{}, false
		}
		if p.build {
			v.Items = append(v.Items, item)
		}
		p.space()
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
			p.pos++
			if !p.build {
				p.sizes[slot] = int32(i + 1)
				p.nItems += i + 1
			}
			return v, true
		default:
			return p.syntax()
		}
	}
}

// str parses the string at p.pos. A string without escapes is a copy of
// a slice of the body; one with escapes is unquoted by encoding/json, so
// that escapes mean exactly what they mean everywhere else in Go. While
// checking, it returns "" and builds nothing.
func (p *parser) str() (string, bool) {
	start := p.pos
	escaped := false
	for p.pos++; p.pos < len(p.body); {
		switch c := p.body[p.pos]; {
		case c == '"':
			p.pos++
			switch {
			case !escaped && p.build:
				return string(p.body[start+1 : p.pos-1]), true
			case !escaped:
				return "", true
			case !json.Valid(p.body[start:p.pos]):
				p.pos = start
				p.syntax()
				return "", false
			}
			if u := loneSurrogate(p.body[start:p.pos]); u != "" {
				// encoding/json would put U+FFFD in its place: text that
				// differs from what was sent.
				p.err = &FieldError{p.here(), fmt.Sprintf(MsgSurrogate, u)}
				return "", false
			}
			if !p.build {
				return "", true
			}
			var s string
			if err := json.Unmarshal(p.body[start:p.pos], &s); err != nil {
				p.pos = start
				p.syntax()
				return "", false
			}
			return s, true
		case c == '\\':
			escaped = true
			p.pos += 2
		case c < 0x20:
			p.syntax()
			return "", false
		default:
			p.pos++
		}
	}
	p.syntax()
	return "", false
}

func (p *parser) literal(word string, v Value) (Value, bool) {
	if len(p.body)-p.pos < len(word) || string(p.body[p.pos:p.pos+len(word)]) != word {
		return p.syntax()
	}
	p.pos += len(word)
	return v, true
}

// number parses an RFC 8259 number and keeps its literal.
func (p *parser) number() (Value, bool) {
	start := p.pos
	digits := func() int {
		n := 0
		for p.pos < len(p.body) && '0' <= p.body[p.pos] && p.body[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.peek() == '-' {
		p.pos++
	}
	switch c := p.peek(); {
	case c == '0':
		p.pos++
	case '1' <= c && c <= '9':
		digits()
	default:
		return p.syntax()
	}
	if p.peek() == '.' {
		p.pos++
		if digits() == 0 {
			return p.syntax()
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.pos++
		if c := p.peek(); c == '+' || c == '-' {
			p.pos++
		}
		if digits() == 0 {
			return p.syntax()
		}
	}
	if !p.build {
		return Value{Kind: Number}, true
	}
	return Value{Kind: Number, Text: string(p.body[start:p.pos])}, true
}

// syntax records a syntax error. encoding/json's scanner words it, so that
// the message is the one Go programmers know; the scanner runs only on this
// path, once, without building anything.
func (p *parser) syntax() (Value, bool) {
	if p.err != nil {
		return Value{}, false
	}
	var raw json.RawMessage
	err := json.Unmarshal(p.body, &raw)
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se) && se.Error() == "unexpected end of JSON input":
		p.err = &FieldError{"", fmt.Sprintf("is not valid JSON: unexpected end of input (at byte %d)", len(p.body))}
	case errors.As(err, &se):
		p.err = &FieldError{"", fmt.Sprintf("is not valid JSON: %s (at byte %d)", se.Error(), se.Offset-1)}
	default:
		p.err = &FieldError{"", fmt.Sprintf("is not valid JSON (at byte %d)", p.pos)}
	}
	return Value{}, false
}

// MaxKeyInPath is how many characters of a submitted key a path shows.
const MaxKeyInPath = 64

// JoinPath appends a known field name to a path.
func JoinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// JoinKey appends a submitted (possibly unknown) key to a path: plain keys
// as ".key", others quoted as `["key"]`; long keys are cut short.
func JoinKey(path, key string) string {
	plain := key != "" && len(key) <= MaxKeyInPath
	for i := 0; plain && i < len(key); i++ {
		b := key[i]
		plain = b == '_' || b == '-' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
	}
	if plain {
		return JoinPath(path, key)
	}
	return path + "[" + strconv.Quote(Shorten(key, MaxKeyInPath)) + "]"
}

// Index appends an array index to a path.
func Index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// Shorten cuts s to at most limit characters, marking the cut with "...".
func Shorten(s string, limit int) string {
	i, n := 0, 0
	for i < len(s) && n < limit {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
	}
	if i < len(s) {
		return s[:i] + "..."
	}
	return s
}

// Messages about text, shared by every body.
const (
	MsgControl = "contains a control character"
	msgBidi    = "contains a bidirectional control character (U+%04X); send the text without it"
)

// MsgSurrogate is the message for a string with a \u escape of half a
// UTF-16 surrogate pair (%s is the escape): it stands for no character.
const MsgSurrogate = "holds %s, half of a UTF-16 surrogate pair without its other half: not a character"

// loneSurrogate returns the first \u escape in the quoted string q that is
// half of a surrogate pair without its other half, or "".
func loneSurrogate(q []byte) string {
	hex := func(i int) (rune, bool) {
		if i+6 > len(q) || q[i] != '\\' || q[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(q[i+2:i+6]), 16, 16)
		return rune(n), err == nil
	}
	for i := 0; i < len(q); i++ {
		if q[i] != '\\' {
			continue
		}
		r, ok := hex(i)
		switch {
		case !ok:
			i++ // another escape: skip its letter, which may be a backslash
		case 0xD800 <= r && r < 0xDC00:
			if lo, ok := hex(i + 6); ok && 0xDC00 <= lo && lo < 0xE000 {
				i += 11
				continue
			}
			return string(q[i : i+6])
		case 0xDC00 <= r && r < 0xE000:
			return string(q[i : i+6])
		default:
			i += 5
		}
	}
	return ""
}

// TextProblem says what makes s unfit as text forwarded to police: a C0
// control character other than tab, line feed and carriage return (NUL
// included), or a bidirectional embedding, override or isolate (U+202A to
// U+202E, U+2066 to U+2069), which can make text read differently from
// what it says. It returns "" for fit text.
func TextProblem(s string) string {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x20 && b != '\t' && b != '\n' && b != '\r' {
			return MsgControl
		}
		// U+202A..U+202E are E2 80 AA..AE; U+2066..U+2069 are E2 81 A6..A9.
		if b == 0xE2 && i+2 < len(s) {
			switch c := s[i+2]; {
			case s[i+1] == 0x80 && 0xAA <= c && c <= 0xAE, s[i+1] == 0x81 && 0xA6 <= c && c <= 0xA9:
				r, _ := utf8.DecodeRuneInString(s[i:])
				return fmt.Sprintf(msgBidi, r)
			}
		}
	}
	return ""
}

// DecodeStored parses a record the relay stored itself (what names it in
// errors), refusing it unless its version, read by version, is want: a
// record of a version this code does not know is never misread. Stored
// records are the relay's own, so the decoding is json.Unmarshal's, not
// Parse's.
func DecodeStored[T any, V comparable](data []byte, what string, version func(*T) V, want V) (*T, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", what, err)
	}
	if got := version(&v); got != want {
		return nil, fmt.Errorf("%s version %v is not %v", what, got, want)
	}
	return &v, nil
}
