package sms

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/twilio/twilio-go/client"
)

// SignatureHeader carries Twilio's signature of a webhook request.
const SignatureHeader = "X-Twilio-Signature"

// maxFormBytes bounds a Twilio webhook body; real ones are under 2 KB.
const maxFormBytes = 64 << 10

// ErrBadSignature means a webhook request was not signed by Twilio with our token.
var ErrBadSignature = errors.New("sms: bad or missing Twilio signature")

// ValidateSignature checks a Twilio signature of a POSTed form. publicURL
// must be the exact URL configured at Twilio (scheme, host, path, query),
// not r.URL: behind a proxy the two differ.
func ValidateSignature(authToken, publicURL string, form url.Values, signature string) bool {
	if authToken == "" || signature == "" {
		return false
	}
	params := make(map[string]string, len(form))
	for k, v := range form {
		if len(v) > 0 {
			params[k] = v[0]
		}
	}
	v := client.NewRequestValidator(authToken)
	return v.Validate(publicURL, params, signature)
}

// ValidateRequest reads a Twilio webhook POST (status callback or inbound
// SMS), checks its signature against publicURL and returns the form. w is
// only used to report an oversized body and may be nil.
func ValidateRequest(authToken, publicURL string, w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.Method != http.MethodPost {
		return nil, fmt.Errorf("sms: webhook method %s, want POST", r.Method)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, fmt.Errorf("sms: read webhook form: %w", err)
	}
	if !ValidateSignature(authToken, publicURL, r.PostForm, r.Header.Get(SignatureHeader)) {
		return nil, ErrBadSignature
	}
	return r.PostForm, nil
}
