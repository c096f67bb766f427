package console

import "regexp"

// Patterns of personal data a free-text field (a note, a silence's
// reason) must not hold: the pages and the audit trail stay free of it.
// They err on the side of refusing: an operator rewrites a note, a leak
// cannot be taken back. Names and addresses cannot be recognised: the
// form asks for none.
var personalPatterns = []*regexp.Regexp{
	// a phone number: nine or more digits, spaces, dots, dashes or
	// brackets between them allowed, an optional + in front
	regexp.MustCompile(`\+?\d(?:[\s.()-]*\d){8,}`),
	// an e-mail address
	regexp.MustCompile(`[^\s@]+@[^\s@]+\.[^\s@]+`),
	// a DNI: eight digits and a letter
	regexp.MustCompile(`(?i)\b\d{8}\s*-?\s*[A-Z]\b`),
	// a NIE: X, Y or Z, seven digits and a letter
	regexp.MustCompile(`(?i)\b[XYZ]\s*-?\s*\d{7}\s*-?\s*[A-Z]\b`),
}

// looksPersonal reports whether s seems to hold a phone number, an
// e-mail address, a DNI or a NIE.
func looksPersonal(s string) bool {
	for _, re := range personalPatterns {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}
