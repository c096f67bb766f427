package dispatcher

import (
	"reflect"
	"strings"
	"testing"
)

type posTest struct {
	V     int
	S     string
	N     int64
	P     *string
	Q     *int
	L     []string
	T     recTime
	Empty string
	Last  string
}

// A positional record writes each field in the struct's order, null for
// an empty one in the middle, nothing for the empty ones at the end, and
// reads back what it wrote: strings that need escaping, pointers to zero
// values, nil pointers.
func TestPositionalRoundTrip(t *testing.T) {
	zero, quoted := 0, `say "hi" \ <b> & ñ`+"\n\u2028"
	for _, tc := range []struct {
		in   posTest
		want string
	}{
		{posTest{V: 4, S: "plain", N: -7, P: &quoted, Q: &zero, L: []string{"a", "<"}}, `[4,"plain",-7,"say \"hi\" \\ \u003cb\u003e \u0026 ñ\n\u2028",0,["a","\u003c"]]`},
		{posTest{V: 4, S: quoted, Last: "z"}, `[4,"say \"hi\" \\ \u003cb\u003e \u0026 ñ\n\u2028",null,null,null,null,null,null,"z"]`},
		{posTest{V: 9}, `[9]`},
	} {
		b, err := appendPositional(nil, tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("encoded %s\nwant    %s", b, tc.want)
		}
		var got posTest
		v, err := decodePositional(b, &got)
		if err != nil || v != tc.in.V || !reflect.DeepEqual(got, tc.in) {
			t.Errorf("read back %+v, version %d (%v), want %+v", got, v, err, tc.in)
		}
	}
	for _, bad := range []string{`[]`, `{"kind":4}`, `["4"]`, `[4,1]`, `[4,"s","n"]`, `[4` + strings.Repeat(",null", 9) + `]`} {
		var got posTest
		if _, err := decodePositional([]byte(bad), &got); err == nil {
			t.Errorf("%s read as %+v without an error", bad, got)
		}
	}
}
