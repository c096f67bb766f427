package rules

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

// Lookups for the acknowledgement entry points: who holds a bearer token,
// who owns a phone number. Both walk the directory on every call instead
// of keeping an index: a Config is read-only and may be swapped on reload,
// and a few thousand comparisons take microseconds.

// AgencyByToken returns the agency whose tokens_sha256 holds the SHA-256 of
// token. The hash of the presented token is compared in constant time with
// every configured hash, all of them, whatever matches first. A token whose
// hash is configured for two agencies is ambiguous and matches none (fail
// closed). The token itself is never stored, logged or returned.
func (c *Config) AgencyByToken(token string) (*Agency, bool) {
	if c == nil || token == "" {
		return nil, false
	}
	sum := sha256.Sum256([]byte(token))
	var (
		found   *Agency
		matches int
		want    [sha256.Size]byte
	)
	for i := range c.Agencies {
		a := &c.Agencies[i]
		hit := false
		for _, h := range a.TokensSHA256 {
			// Validation guarantees 64 hex characters; a hash that does not
			// decode (a Config built by hand) compares against zeros and
			// cannot match a real digest.
			want = [sha256.Size]byte{}
			if h = strings.TrimSpace(h); len(h) == 2*sha256.Size {
				_, _ = hex.Decode(want[:], []byte(h))
			}
			if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
				hit = true
			}
		}
		if hit {
			if found != a {
				matches++
			}
			found = a
		}
	}
	if matches != 1 {
		return nil, false
	}
	return found, true
}

// PhoneContact is one contact whose sms number matched, with its agency.
type PhoneContact struct {
	Agency  *Agency
	Contact *Contact
}

// ContactsByPhone returns every contact whose sms number is e164, in
// configuration order. A shared desk phone may belong to contacts of
// several agencies: callers that care which agency (an SMS acknowledgement
// must come from an agency that was notified) should look at all of them.
func (c *Config) ContactsByPhone(e164 string) []PhoneContact {
	e164 = strings.TrimSpace(e164)
	if c == nil || e164 == "" {
		return nil
	}
	var out []PhoneContact
	for i := range c.Agencies {
		a := &c.Agencies[i]
		for j := range a.Contacts {
			if a.Contacts[j].SMS == e164 {
				out = append(out, PhoneContact{Agency: a, Contact: &a.Contacts[j]})
			}
		}
	}
	return out
}

// ContactByPhone finds the contact, and its agency, whose sms number is
// e164 (exact E.164, as Twilio sends From). When several contacts share
// the number it returns the first in configuration order; see
// ContactsByPhone.
func (c *Config) ContactByPhone(e164 string) (*Agency, *Contact, bool) {
	all := c.ContactsByPhone(e164)
	if len(all) == 0 {
		return nil, nil, false
	}
	return all[0].Agency, all[0].Contact, true
}
