package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// keysOK says yes only where checkKeys does (on these cases; FuzzKeysOK
// checks that decoding gives the same result either way), and says yes
// for every valid event of the seed corpus (so the fast path is taken).
func TestKeysOKAgreesWithCheckKeys(t *testing.T) {
	cases := map[string]bool{ // input → keysOK must say
		`{"id":"e1","type":"case.opened"}`:   true,
		` {"id":"e1"} `:                      true,
		`{}`:                                 true,
		`{"id":"e1","id":"e2"}`:              false, // duplicate
		`{"ID":"e1"}`:                        false, // case-sensitive
		`{"nope":1}`:                         false,
		`{"risk":{"level":"alto","nope":1}}`: false, // nested unknown
		`{"risk":{"level":"alto"}}`:          true,
		`{"risk":null}`:                      true,
		`{"id":"e1"}}`:                       false, // trailing
		`{"id":"e1"} x`:                      false,
		`[{"id":"e1"}]`:                      false,
		`{"\u0069d":"e1"}`:                   false, // escaped: slow path
		`{"id":"a\"b}"}`:                     true,
		`{"id":"e1" "type":"x"}`:             false,
		`{"id":"e1",}`:                       false,
		`{"id":}`:                            false,
		`{"id":"e1"`:                         false,
		`{"occurred_at":"2026-03-01T10:00:00Z","version":12}`:  true,
		`{"risk":{"level":"alto","factors":[{"x":1},[2,{}]]}}`: false, // "factors" is no contract key
	}
	for in, want := range cases {
		got := keysOK([]byte(in))
		if got != want {
			t.Errorf("keysOK(%s) = %v, want %v", in, got, want)
		}
		if got && checkKeys([]byte(in)) != nil {
			t.Errorf("keysOK(%s) but checkKeys: %v", in, checkKeys([]byte(in)))
		}
	}
	deep := strings.Repeat(`{"a":`, 2000) + "1" + strings.Repeat("}", 2000)
	if keysOK([]byte(`{"risk":{"level":"alto"},"id":` + deep + `}`)) {
		t.Error("a value nested 2,000 deep took the fast path")
	}
	files, _ := filepath.Glob(filepath.Join(seedDir, "*"))
	fast := 0
	for _, f := range files {
		b := corpusValue(t, f)
		if _, err := Decode(b); err == nil {
			if !keysOK(b) {
				t.Errorf("%s: a valid event missed the fast path", filepath.Base(f))
			}
			fast++
		}
	}
	if fast == 0 {
		t.Fatal("no valid event in the seed corpus")
	}
}

// corpusValue reads the []byte of a "go test fuzz v1" corpus file.
func corpusValue(t *testing.T, path string) []byte {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := corpusBytes(string(raw))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

func corpusBytes(raw string) ([]byte, error) {
	lines := strings.SplitN(raw, "\n", 2)
	if len(lines) < 2 {
		return nil, errors.New("not a corpus file")
	}
	v := strings.TrimSpace(lines[1])
	v = strings.TrimSuffix(strings.TrimPrefix(v, "[]byte("), ")")
	s, err := strconv.Unquote(v)
	return []byte(s), err
}

// decodeSlow is decode without the fast path (as it was before it).
func decodeSlow(b []byte, internal bool) (Event, error) {
	var ev Event
	if len(b) > MaxSize {
		return ev, fieldErr("$", "message is %d bytes, over the %d-byte limit", len(b), MaxSize)
	}
	if err := checkKeys(b); err != nil {
		return ev, err
	}
	var w wire
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return ev, jsonErr(err)
	}
	return w.event(internal)
}

// FuzzKeysOK: with or without the fast path, every input decodes to the
// same event or the same error.
func FuzzKeysOK(f *testing.F) {
	f.Add([]byte(`{"id":"e1","type":"case.opened","risk":{"level":"alto"}}`))
	f.Add([]byte(`{"id":"e1","id":"e1"}`))
	f.Add([]byte("{\"id\":\"\x00\"}"))
	files, _ := filepath.Glob(filepath.Join(seedDir, "*"))
	for _, file := range files {
		raw, _ := os.ReadFile(file)
		if v, err := corpusBytes(string(raw)); err == nil {
			f.Add(v)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, internal := range []bool{false, true} {
			got, gerr := decode(b, internal)
			want, werr := decodeSlow(b, internal)
			if fmt.Sprint(gerr) != fmt.Sprint(werr) || !reflect.DeepEqual(got, want) {
				t.Fatalf("internal=%v: fast path gives %+v, %v; without it %+v, %v", internal, got, gerr, want, werr)
			}
		}
	})
}
