package event

import (
	"math/rand/v2"
	"testing"
)

// TestPatternMatchersAgreeWithRegexps: the byte loops the decoder uses
// accept exactly what the contract's regular expressions accept, over
// edge cases and random strings from an alphabet around the classes'
// edges (including non-ASCII bytes and a trailing newline).
func TestPatternMatchersAgreeWithRegexps(t *testing.T) {
	long := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a'
		}
		return string(b)
	}
	cases := []string{"", "a", "A", "0", ".", "-a", "a-", "a.b_c:d-e", "a b", "a\n", "ñ", "a\u00e9", "13047", "1304", "130470",
		"13", "1", "123", "CM", "cm", "C", "CMM", "C1", long(127), long(128), long(129), "1" + long(127), "_" + long(10)}
	alphabet := []byte("aZz09AM._:-/@+ \n\x00\xc3\xb1`{[")
	rng := rand.New(rand.NewPCG(9, 9))
	for range 20000 {
		b := make([]byte, rng.IntN(8))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, v := range cases {
		if got, want := isID(v), idRe.MatchString(v); got != want {
			t.Errorf("isID(%q) = %v, idRe says %v", v, got, want)
		}
		if got, want := isNDigits(v, 5), municipalityRe.MatchString(v); got != want {
			t.Errorf("isNDigits(%q, 5) = %v, municipalityRe says %v", v, got, want)
		}
		if got, want := isNDigits(v, 2), provinceRe.MatchString(v); got != want {
			t.Errorf("isNDigits(%q, 2) = %v, provinceRe says %v", v, got, want)
		}
		if got, want := isRegion(v), regionRe.MatchString(v); got != want {
			t.Errorf("isRegion(%q) = %v, regionRe says %v", v, got, want)
		}
	}
}
