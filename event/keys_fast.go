package event

import "sort"

// fastShape is a shape indexed for the fast key check: each key of an
// object has a number (a bit in a mask of the keys seen) and the shape of
// its value.
type fastShape struct {
	index    map[string]int
	children []*fastShape // nil: a value whose keys nobody checks
}

var wireFast = indexShape(wireShape)

func indexShape(s shape) *fastShape {
	if s == nil {
		return nil
	}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 64 {
		return nil // never: an object of the contract has fewer keys; nil keeps the slow path
	}
	f := &fastShape{index: make(map[string]int, len(keys)), children: make([]*fastShape, len(keys))}
	for i, k := range keys {
		f.index[k] = i
		f.children[i] = indexShape(s[k])
	}
	return f
}

// keysOK is checkKeys' fast path, without a token or an allocation per
// value: true only when b is surely one JSON object whose keys, at every
// level the contract describes, are the contract's, each at most once,
// followed by nothing but white space. Anything else, including what it
// does not handle (an escaped key), is false and goes to checkKeys, which
// also gives the reason. Values are skipped, not validated: the typed
// decode that follows validates them.
func keysOK(b []byte) bool {
	if wireFast == nil {
		return false
	}
	sc := scan{b: b}
	sc.space()
	if !sc.object(wireFast) {
		return false
	}
	sc.space()
	return sc.i == len(b)
}

type scan struct {
	b []byte
	i int
}

func (s *scan) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next is the next byte after white space (0 at the end).
func (s *scan) next() byte {
	s.space()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// object reads an object (at '{') whose keys f describes.
func (s *scan) object(f *fastShape) bool {
	if s.next() != '{' {
		return false
	}
	s.i++
	var seen uint64
	if s.next() == '}' {
		s.i++
		return true
	}
	for {
		key, ok := s.key()
		if !ok {
			return false
		}
		n, known := f.index[string(key)]
		if !known || seen&(1<<n) != 0 {
			return false
		}
		seen |= 1 << n
		if s.next() != ':' {
			return false
		}
		s.i++
		child := f.children[n]
		if child != nil && s.next() == '{' {
			if !s.object(child) {
				return false
			}
		} else if !s.value(0) {
			return false
		}
		switch s.next() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// key reads a string without escapes (at '"') and returns its bytes.
func (s *scan) key() ([]byte, bool) {
	if s.next() != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// maxDepth bounds how deep skipped values may nest (encoding/json's own
// limit is 10,000; deeper input goes to the slow path).
const maxDepth = 1000

// value skips one value.
func (s *scan) value(depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch s.next() {
	case '"':
		return s.str()
	case '{':
		return s.container('}', depth, true)
	case '[':
		return s.container(']', depth, false)
	case 0:
		return false
	default:
		return s.scalar()
	}
}

// str skips a string (at '"'), escapes included.
func (s *scan) str() bool {
	for j := s.i + 1; j < len(s.b); j++ {
		switch s.b[j] {
		case '\\':
			j++
		case '"':
			s.i = j + 1
			return true
		}
	}
	return false
}

// container skips an object or array (at its opening byte); objects'
// keys are read as strings, not checked.
func (s *scan) container(end byte, depth int, object bool) bool {
	s.i++
	if s.next() == end {
		s.i++
		return true
	}
	for {
		if object {
			if s.next() != '"' || !s.str() || s.next() != ':' {
				return false
			}
			s.i++
		}
		if !s.value(depth + 1) {
			return false
		}
		switch s.next() {
		case ',':
			s.i++
		case end:
			s.i++
			return true
		default:
			return false
		}
	}
}

// scalar skips a number, true, false or null: the bytes up to the next
// delimiter (validated by the typed decode).
func (s *scan) scalar() bool {
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r', ':', '"', '{', '[':
			return s.i > start
		}
		s.i++
	}
	return s.i > start
}
