package providertest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"sort"
)

// TwilioSignature computes X-Twilio-Signature as Twilio documents it: the
// base64 HMAC-SHA1, keyed with the auth token, of the full URL followed by
// every POST parameter name and value, sorted by name, without separators.
// It is written from the documentation, not from twilio-go, so tests can
// check the SDK's validator against it.
func TwilioSignature(authToken, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := hmac.New(sha1.New, []byte(authToken))
	h.Write([]byte(fullURL))
	for _, k := range keys {
		for _, v := range form[k] {
			h.Write([]byte(k + v))
		}
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}
