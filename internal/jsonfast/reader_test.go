package jsonfast

import (
	"reflect"
	"testing"
)

// A Reader takes plain JSON and gives up (OK false) on everything it
// leaves to encoding/json; the differential tests of its users (event,
// dispatcher) compare it with json.Unmarshal on generated corpora.
func TestReaderTakesPlainJSONAndRefusesTheRest(t *testing.T) {
	type got struct {
		S    string
		N    int64
		B    bool
		L    []string
		Keys []string
	}
	read := func(s string) (got, bool) {
		var g got
		r := NewReader(s)
		r.Object(func(key string) {
			g.Keys = append(g.Keys, key)
			switch key {
			case "s":
				g.S = r.Str()
			case "n":
				g.N = r.Int64()
			case "b":
				g.B = r.Bool()
			case "l":
				g.L = r.Strs()
			default:
				r.Fail()
			}
		})
		return g, r.End()
	}
	ok := map[string]got{
		`{}`: {},
		` {"s":"ñandú","n":-42,"b":true,"l":["a",""]} `: {S: "ñandú", N: -42, B: true, L: []string{"a", ""}, Keys: []string{"s", "n", "b", "l"}},
		"{\"n\" :\n0 , \"b\":false,\"l\":[]}":           {N: 0, L: []string{}, Keys: []string{"n", "b", "l"}},
		`{"l":null,"s":"x","s":"y"}`:                    {S: "y", Keys: []string{"l", "s", "s"}},
		`{"n":9223372036854775807}`:                     {N: 9223372036854775807, Keys: []string{"n"}},
	}
	for in, want := range ok {
		g, took := read(in)
		if !took || !reflect.DeepEqual(g, want) {
			t.Errorf("%s: took %v, %+v; want %+v", in, took, g, want)
		}
	}
	for _, in := range []string{
		`{"s":"a\"b"}`, `{"s":"a\u0062"}`, "{\"s\":\"tab\there\"}", "{\"s\":\"\xff\"}", `{"s":null}`, `{"s":1}`,
		`{"n":1.0}`, `{"n":1e3}`, `{"n":01}`, `{"n":-}`, `{"n":9223372036854775808}`, `{"n":"1"}`,
		`{"b":tru}`, `{"b":1}`, `{"l":[1]}`, `{"l":["a",]}`, `{"l":nul}`, `{"x":1}`, `{"s":"a"`, `{"s":"a"} x`,
		`{"s":"a",}`, `["s"]`, ``, `{"s":"a" "n":1}`,
	} {
		if _, took := read(in); took {
			t.Errorf("%s: taken, want it left to encoding/json", in)
		}
	}
}
