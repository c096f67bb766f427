// Package jsonfast reads the JSON our own encoders write (and upstreams
// usually send) without reflection: objects with known keys, strings with
// nothing to unescape, integers, booleans, lists of strings. A Reader
// gives up (OK false) at the first thing it does not take, and its caller
// then decodes with encoding/json, so what a fast decoder built on it
// accepts must read exactly as json.Unmarshal reads it; each user proves
// that with a differential test. It imports only the standard library.
package jsonfast

import (
	"strconv"
	"unicode/utf8"
)

// Reader walks one JSON text. Strings it returns are slices of the text
// (one allocation for the whole text when it came as bytes). After the
// first failure every call is a no-op returning a zero value.
type Reader struct {
	b  string
	i  int
	ok bool
}

// NewReader reads s.
func NewReader(s string) Reader { return Reader{b: s, ok: true} }

// OK reports whether everything so far was taken.
func (r *Reader) OK() bool { return r.ok }

// Fail gives up (a key or a value the caller does not take).
func (r *Reader) Fail() { r.ok = false }

func (r *Reader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// byte consumes c (after white space) or fails.
func (r *Reader) byte(c byte) {
	r.ws()
	if !r.ok || r.i >= len(r.b) || r.b[r.i] != c {
		r.ok = false
		return
	}
	r.i++
}

// Peek reports whether the next byte (after white space) is c.
func (r *Reader) Peek(c byte) bool {
	r.ws()
	return r.ok && r.i < len(r.b) && r.b[r.i] == c
}

// Raw returns a string token with its quotes; only strings with nothing
// to unescape and valid UTF-8 are taken (encoding/json would replace
// invalid bytes).
func (r *Reader) Raw() string {
	r.byte('"')
	if !r.ok {
		return ""
	}
	start, ascii := r.i-1, true
	for ; r.i < len(r.b); r.i++ {
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			tok := r.b[start:r.i]
			if !ascii && !utf8.ValidString(tok) {
				r.ok = false
				return ""
			}
			return tok
		case c == '\\' || c < 0x20:
			r.ok = false
			return ""
		case c >= 0x80:
			ascii = false
		}
	}
	r.ok = false
	return ""
}

// Str reads a string.
func (r *Reader) Str() string {
	tok := r.Raw()
	if !r.ok {
		return ""
	}
	return tok[1 : len(tok)-1]
}

// Strs reads a list of strings; null reads as nil, as json.Unmarshal
// leaves a slice.
func (r *Reader) Strs() []string {
	if r.Peek('n') {
		r.literal("null")
		return nil
	}
	r.byte('[')
	out := []string{}
	if r.Peek(']') {
		r.i++
		return out
	}
	for r.ok {
		out = append(out, r.Str())
		if r.Peek(',') {
			r.i++
			continue
		}
		r.byte(']')
		break
	}
	return out
}

func (r *Reader) literal(lit string) {
	r.ws()
	if !r.ok || len(r.b)-r.i < len(lit) || r.b[r.i:r.i+len(lit)] != lit {
		r.ok = false
		return
	}
	r.i += len(lit)
}

// Bool reads true or false.
func (r *Reader) Bool() bool {
	if r.Peek('t') {
		r.literal("true")
		return r.ok
	}
	r.literal("false")
	return false
}

// Int64 reads an integer that fits 64 bits (no leading zero).
func (r *Reader) Int64() int64 {
	r.ws()
	if !r.ok {
		return 0
	}
	start := r.i
	if r.i < len(r.b) && r.b[r.i] == '-' {
		r.i++
	}
	digits := r.i
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	// A fraction or an exponent is left where the digits end: what reads
	// next (a ',', '}' or the end) refuses it.
	n := r.i - digits
	if n == 0 || (n > 1 && r.b[digits] == '0') {
		r.ok = false
		return 0
	}
	v, err := strconv.ParseInt(r.b[start:r.i], 10, 64)
	if err != nil {
		r.ok = false
	}
	return v
}

// Int is Int64 for an int.
func (r *Reader) Int() int {
	v := r.Int64()
	if int64(int(v)) != v {
		r.ok = false
	}
	return int(v)
}

// Object reads an object's members, handing each key to field, which
// reads the value (or calls Fail on a key it does not take).
func (r *Reader) Object(field func(key string)) {
	r.byte('{')
	if r.Peek('}') {
		r.i++
		return
	}
	for r.ok {
		key := r.Raw()
		r.byte(':')
		if !r.ok {
			return
		}
		field(key[1 : len(key)-1])
		if r.Peek(',') {
			r.i++
			continue
		}
		r.byte('}')
		return
	}
}

// End reports whether everything was taken and only white space is left.
func (r *Reader) End() bool {
	r.ws()
	return r.ok && r.i == len(r.b)
}
