package rules

import (
	"fmt"
	"net/mail"
	"net/url"
	"strings"
)

// What the loader accepts in the values the delivery stage acts on is no
// more than what the channels and templates accept, so that a file that
// loads never fails a send for a reason the file holds. The channels'
// own checks are sms.ValidNumber, email.ValidRecipient and
// webhook.ValidateURL (AllowHTTP is never set by the dispatcher); the
// rules package does not import the channels, and a test in
// cmd/dispatcher holds the two to the same answers.

// Locales are the message locales the embedded templates have. Render
// falls back to es for any other, silently: the loader refuses them.
var Locales = []string{"es", "ca", "en"}

// KnownKinds are the agency kinds the dispatcher and its documentation
// name. Other lower_snake_case kinds are allowed, but not one within
// kindTypoDistance edits of these: that is a typo which would leave the
// agency out of every policy that targets the real kind.
var KnownKinds = []string{KindResponsibleUnit, "local_police", "coordinating_center", "social_services", "island_council"}

const kindTypoDistance = 2

// validPhone: E.164 with at least 8 digits (the sms channel takes 7).
func validPhone(s string) bool { return e164Re.MatchString(s) }

// validEmail is a bare address that net/mail (what go-mail parses
// recipients with) reads back unchanged, of the plain form emailRe keeps.
func validEmail(s string) bool {
	if !emailRe.MatchString(s) {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

// webhookURLProblem says what is wrong with a webhook URL, "" when
// nothing. It never quotes the URL: it may carry a token.
func webhookURLProblem(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.Scheme == "":
		return "want an absolute https:// URL with a host"
	case u.Scheme == "http":
		return "http:// is refused: the webhook channel sends only to https:// URLs, so every send would fail"
	case u.Scheme != "https":
		return fmt.Sprintf("scheme %q is refused: want https://", u.Scheme)
	}
	return ""
}

// localeProblem says what is wrong with a locale, "" when nothing.
func localeProblem(l string, known []string) string {
	if !localeRe.MatchString(l) {
		return fmt.Sprintf("invalid locale %q: want a language code such as es or es-ES", l)
	}
	lang, _, _ := strings.Cut(l, "-")
	if !contains(known, lang) {
		return fmt.Sprintf("unknown locale %q: the templates have %s (messages would silently go out in %s)",
			l, strings.Join(known, ", "), DefaultLocale)
	}
	return ""
}

// closest is the candidate nearest to word within maxDist edits (word
// itself when it is one), or "". Ties go to the first candidate.
func closest(word string, candidates []string, maxDist int) string {
	best, bestD := "", maxDist+1
	for _, c := range candidates {
		if d := editDistance(word, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// typoOf is the known word that word is a typo of, or "": word is
// neither known nor within maxDist edits of a known word.
func typoOf(word string, known []string, maxDist int) string {
	if s := closest(word, known, maxDist); s != word {
		return s
	}
	return ""
}

func didYouMean(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", s)
}

// normWord reads "Local-Police" as "local_police", for suggestions.
func normWord(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return '_'
		}
		return r
	}, strings.ToLower(strings.TrimSpace(s)))
}
