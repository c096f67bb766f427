package channels

import (
	"net/url"
	"strings"
)

// Mask hides most of a phone number, email address, URL or key so it can be
// logged: "+34600000001" → "+34*******01", "jane@example.org" →
// "j***@example.org", "https://h.example.org/x?y" → "https://h.example.org/***".
// Anything shorter than 8 characters is masked whole.
func Mask(s string) string {
	switch {
	case s == "":
		return ""
	case strings.Contains(s, "://"):
		return maskURL(s)
	case strings.Contains(s, "@"):
		return maskEmail(s)
	}
	return maskMiddle(s)
}

func maskEmail(s string) string {
	at := strings.LastIndex(s, "@")
	local, domain := []rune(s[:at]), s[at+1:]
	if len(local) == 0 {
		return "***@" + domain
	}
	return string(local[0]) + "***@" + domain
}

// maskMiddle keeps the first 3 and last 2 characters: enough to tell two
// numbers apart in a log, too little to call anyone.
func maskMiddle(s string) string {
	r := []rune(s)
	if len(r) < 8 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:3]) + strings.Repeat("*", len(r)-5) + string(r[len(r)-2:])
}

// maskURL keeps scheme and host: the path and query of a webhook URL often
// carry a token.
func maskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return maskMiddle(s)
	}
	host := u.Hostname()
	if p := u.Port(); p != "" {
		host += ":" + p
	}
	out := u.Scheme + "://" + host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		out += "/***"
	}
	return out
}
