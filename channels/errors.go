package channels

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Class says whether sending the same message again may succeed.
type Class int

// The zero Class is Retryable: an error nobody classified is worth retrying,
// because dropping an alert is worse than sending it twice.
const (
	Retryable Class = iota
	Permanent
)

func (c Class) String() string {
	if c == Permanent {
		return "permanent"
	}
	return "retryable"
}

// Error is a classified delivery failure. Its text never holds personal data
// or credentials: channels build Err from provider codes, not provider prose,
// whenever the prose may echo the recipient.
type Error struct {
	Channel    string        // "sms", "email", ...
	Class      Class         // Retryable or Permanent
	Code       string        // provider code, e.g. "21211", "550", "429", "timeout"
	RetryAfter time.Duration // provider's hint; 0 when none
	Err        error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Channel)
	b.WriteString(": ")
	b.WriteString(e.Class.String())
	b.WriteString(" failure")
	if e.Code != "" {
		fmt.Fprintf(&b, " [%s]", e.Code)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// NewRetryable classifies err as worth retrying, after retryAfter if > 0.
func NewRetryable(channel, code string, retryAfter time.Duration, err error) *Error {
	return &Error{Channel: channel, Class: Retryable, Code: code, RetryAfter: retryAfter, Err: err}
}

// NewPermanent classifies err as final for this message: retrying cannot help.
func NewPermanent(channel, code string, err error) *Error {
	return &Error{Channel: channel, Class: Permanent, Code: code, Err: err}
}

// IsPermanent reports whether err is a *Error classified Permanent. It is
// false for nil and for unclassified errors, which count as retryable.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Class == Permanent
}

// IsRetryable reports whether err is non-nil and not permanent.
func IsRetryable(err error) bool {
	return err != nil && !IsPermanent(err)
}

// RetryAfter returns the provider's retry hint carried by err, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// Code returns the provider code carried by err, or "".
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
