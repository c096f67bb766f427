package templates

import (
	"fmt"
	"regexp"
	"strings"
)

// The hard rule: a message carries only an opaque alert reference, the
// severity, the action required, a deadline and where to look. These
// patterns catch what must never appear; they are checked on every
// template's sample rendering at load time and by the tests.
var (
	rawPatterns = []struct {
		what string
		re   *regexp.Regexp
	}{
		{"phone-number-like digits", regexp.MustCompile(`\+?\d{9,}`)},
		{"international phone prefix", regexp.MustCompile(`(?:\+|\b00)34[\s.-]?\d`)},
		{"Spanish phone-number format", regexp.MustCompile(`\b[6789]\d{2}(?:[\s.-]\d{3}[\s.-]\d{3}|[\s.-]\d{2}[\s.-]\d{2}[\s.-]\d{2})\b`)},
		{"email address", regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)},
		{"DNI-like identifier", regexp.MustCompile(`\d{8}[A-Z]`)},
		{"NIE-like identifier", regexp.MustCompile(`[XYZ]\d{7}[A-Z]`)},
	}
	// Matched on lower-cased text with accents removed.
	foldedPatterns = []struct {
		what string
		re   *regexp.Regexp
	}{
		{"street address", regexp.MustCompile(`(?:\b(?:calle|avenida|avda|plaza|pza|paseo|carrer|avinguda|passeig|piso|street|avenue)\b\.?|(?:^|[^a-z0-9])c/)\s*[a-z0-9]`)},
		{"honorific before a name", regexp.MustCompile(`\b(?:sra?|dna|mrs?|ms)\.\s*[a-z]`)},
		{"forbidden word", regexp.MustCompile(`violencia\s+(?:de\s+)?gener[oe]|violencia\s+(?:machista|domestica)|(?:gender|domestic)[\s-]+(?:based\s+)?violence|victim|agres+or|aggressor|maltra(?:c)?tador|abuser`)},
	}
	accentFold = strings.NewReplacer(
		"á", "a", "à", "a", "â", "a", "é", "e", "è", "e", "ê", "e", "ë", "e",
		"í", "i", "ì", "i", "ï", "i", "ó", "o", "ò", "o", "ô", "o",
		"ú", "u", "ù", "u", "ü", "u", "ñ", "n", "ç", "c", "·", "",
	)
)

// CheckPrivacy reports the first thing in s that looks like personal data
// or a forbidden word, or nil. The error says what kind and where, never
// the matched text, so it is safe to log.
func CheckPrivacy(s string) error {
	for _, p := range rawPatterns {
		if loc := p.re.FindStringIndex(s); loc != nil {
			return fmt.Errorf("%s at byte %d", p.what, loc[0])
		}
	}
	folded := accentFold.Replace(strings.ToLower(s))
	for _, p := range foldedPatterns {
		if loc := p.re.FindStringIndex(folded); loc != nil {
			return fmt.Errorf("%s at byte %d (accent-folded text)", p.what, loc[0])
		}
	}
	return nil
}
