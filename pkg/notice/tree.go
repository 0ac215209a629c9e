package notice

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxDepth is how deeply arrays and objects may nest. A valid notice nests
// 5 levels deep (notice, suspects, person, ip_addresses, address).
const maxDepth = 32

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

var errTooDeep = errors.New("too deep")

type treeDecoder struct {
	dec  *json.Decoder
	body []byte
}

// decode parses body into a tree; it fails with the one error at "" that
// makes the body unusable.
func decodeTree(body []byte) (jsonNode, *FieldError) {
	d := treeDecoder{dec: json.NewDecoder(bytes.NewReader(body)), body: body}
	d.dec.UseNumber()
	tok, err := d.dec.Token()
	if err == io.EOF {
		return jsonNode{}, bodyError("is empty; want a JSON object")
	}
	var root jsonNode
	if err == nil {
		root, err = d.fromToken(tok, 0)
	}
	if err != nil {
		return jsonNode{}, d.fail(err)
	}
	off := int(d.dec.InputOffset())
	for off < len(body) && isJSONSpace(body[off]) {
		off++
	}
	if off < len(body) {
		return jsonNode{}, bodyError(fmt.Sprintf("is not valid JSON: unexpected data after the top-level value (at byte %d)", off))
	}
	return root, nil
}

func isJSONSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

func (d *treeDecoder) fail(err error) *FieldError {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, errTooDeep):
		return bodyError(fmt.Sprintf("is nested more than %d levels deep (at byte %d)", maxDepth, d.dec.InputOffset()))
	case errors.As(err, &se):
		return bodyError(fmt.Sprintf("is not valid JSON: %s (at byte %d)", se.Error(), se.Offset))
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return bodyError(fmt.Sprintf("is not valid JSON: unexpected end of input (at byte %d)", len(d.body)))
	default:
		return bodyError(fmt.Sprintf("is not valid JSON: %s (at byte %d)", err.Error(), d.dec.InputOffset()))
	}
}

func (d *treeDecoder) value(depth int) (jsonNode, error) {
	tok, err := d.dec.Token()
	if err != nil {
		return jsonNode{}, err
	}
	return d.fromToken(tok, depth)
}

// fromToken builds the value that starts with tok; depth is the number of
// arrays and objects around it.
func (d *treeDecoder) fromToken(tok json.Token, depth int) (jsonNode, error) {
	switch v := tok.(type) {
	case nil:
		return jsonNode{kind: nodeNull}, nil
	case bool:
		return jsonNode{kind: nodeBool, b: v}, nil
	case json.Number:
		return jsonNode{kind: nodeNumber, s: string(v)}, nil
	case string:
		return jsonNode{kind: nodeString, s: v}, nil
	case json.Delim:
		if depth >= maxDepth {
			return jsonNode{}, errTooDeep
		}
		n := jsonNode{kind: nodeArray}
		if v == '{' {
			n.kind = nodeObject
		}
		for d.dec.More() {
			if n.kind == nodeArray {
				item, err := d.value(depth + 1)
				if err != nil {
					return jsonNode{}, err
				}
				n.items = append(n.items, item)
				continue
			}
			ktok, err := d.dec.Token()
			if err != nil {
				return jsonNode{}, err
			}
			key, ok := ktok.(string)
			if !ok { // json.Decoder only yields string keys; be safe anyway
				return jsonNode{}, fmt.Errorf("object key is not a string")
			}
			val, err := d.value(depth + 1)
			if err != nil {
				return jsonNode{}, err
			}
			n.members = append(n.members, jsonMember{key, val})
		}
		// The closing delimiter; Token checks that it matches.
		if _, err := d.dec.Token(); err != nil {
			return jsonNode{}, err
		}
		return n, nil
	}
	return jsonNode{}, fmt.Errorf("unexpected token %v", tok)
}
