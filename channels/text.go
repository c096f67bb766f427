package channels

import (
	"io"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
)

// Truncate shortens s to at most max characters (runes), marking the cut
// with "…", so a provider limit never turns an alert into a permanent error.
func Truncate(s string, max int) string {
	if max <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	n := 0
	for i := range s {
		if n == max-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// NopLogger returns a logger that writes nowhere, for channels configured
// without one.
func NopLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
