package rules

import (
	"strings"
	"testing"
)

// Tests written to kill mutants that survived `make mutate` (see
// docs/testing.md) in the strict YAML decoder.

// An explicit null leaves an optional key at its zero value instead of
// being decoded as the scalar "~" or "" (isNull's kind test negated).
func TestNullValueIsAbsent(t *testing.T) {
	for _, null := range []string{"suppress_for: ~", "suppress_for: null", "suppress_for:"} {
		cfg, err := Parse([]byte(edit(t, "suppress_for: 30m", null)), "test.yaml", testOpts)
		if err != nil {
			t.Errorf("%q: %v", null, err)
			continue
		}
		if got := cfg.Rules[0].SuppressFor; got != 0 {
			t.Errorf("%q: suppress_for = %v, want 0", null, got)
		}
	}
}

// A required key that is present but empty is reported as missing; one
// whose value failed to decode is reported once, for its value only.
func TestRequiredKeyPresentButEmpty(t *testing.T) {
	ves := parseErrs(t, edit(t, "    template: risk_rise\n", "    template: \"\"\n"))
	if !hasErr(ves, "rules[0].template", "required key is missing or empty") {
		t.Errorf("empty template not reported as missing:\n%v", ves)
	}
	ves = parseErrs(t, edit(t, "    policy: page\n", "    policy: [page]\n"))
	n := 0
	for _, e := range ves {
		if e.Path == "rules[0].policy" {
			n++
			if strings.Contains(e.Msg, "required") {
				t.Errorf("a policy of the wrong type is also reported missing: %v", e)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d errors at rules[0].policy, want 1:\n%v", n, ves)
	}
}

func hasErr(ves ValidationErrors, path, msg string) bool {
	for _, e := range ves {
		if e.Path == path && strings.Contains(e.Msg, msg) {
			return true
		}
	}
	return false
}

// Typo suggestions: the first closest key within distance 2, else the list.
func TestSuggest(t *testing.T) {
	fs := []field{{key: "policy"}, {key: "polic2"}, {key: "template"}}
	for _, tc := range []struct{ key, want string }{
		{"polics", ` (did you mean "policy"?)`},              // distance 1 to both: the first wins
		{"plicy", ` (did you mean "policy"?)`},               // 1
		{"tmplte", ` (did you mean "template"?)`},            // 2
		{"tmplt", " (known keys: policy, polic2, template)"}, // 3: too far
		{"zzz", " (known keys: policy, polic2, template)"},
	} {
		if got := suggest(tc.key, fs); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "ab", 2}, {"abc", "abc", 0},
		{"abc", "abd", 1}, {"abc", "ab", 1}, {"ab", "abc", 1},
		{"kitten", "sitting", 3}, {"ab", "ba", 2}, {"policy", "polics", 1},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
