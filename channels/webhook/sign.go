package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of a delivery.
const (
	HeaderSignature      = "X-Dispatcher-Signature"
	HeaderTimestamp      = "X-Dispatcher-Timestamp"
	HeaderIdempotencyKey = "Idempotency-Key"
)

// DefaultTolerance is how old (or how far in the future) a timestamp Verify
// accepts when given 0: it bounds the replay window.
const DefaultTolerance = 5 * time.Minute

// Verification failures, for receivers to tell apart.
var (
	ErrBadSignature = errors.New("webhook: signature does not match")
	ErrStale        = errors.New("webhook: timestamp outside tolerance")
	ErrMalformed    = errors.New("webhook: malformed signature or timestamp")
)

// Sign returns the signature header value for body sent at timestamp (unix
// seconds): "sha256=" + hex HMAC-SHA256 of "<timestamp>.<body>".
func Sign(secret []byte, timestamp string, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a delivery as a receiver should: the timestamp is within
// tolerance of now (DefaultTolerance if 0) and sigHeader holds a matching
// "sha256=<hex>" signature. sigHeader may list several, comma-separated,
// so senders can rotate secrets.
func Verify(secret []byte, timestamp string, body []byte, sigHeader string, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return fmt.Errorf("%w: empty secret", ErrMalformed)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp", ErrMalformed)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	want := mac(secret, timestamp, body)
	for _, s := range strings.Split(sigHeader, ",") {
		got, ok := strings.CutPrefix(strings.TrimSpace(s), "sha256=")
		if !ok {
			continue
		}
		raw, err := hex.DecodeString(got)
		if err == nil && hmac.Equal(raw, want) {
			return nil
		}
	}
	return ErrBadSignature
}
