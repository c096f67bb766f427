package channels

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps a provider's Retry-After hint, so one bad header cannot
// park an alert for days.
const MaxRetryAfter = time.Hour

// HTTPStatus classifies a non-2xx HTTP answer: 408, 429 and 5xx (and anything
// else unexpected) are retryable, other 4xx are permanent. err describes the
// answer and must hold no personal data.
func HTTPStatus(channel string, status int, header http.Header, now time.Time, err error) *Error {
	code := strconv.Itoa(status)
	switch {
	case status == http.StatusTooManyRequests:
		return NewRetryable(channel, code, ParseRetryAfter(header.Get("Retry-After"), now), err)
	case status == http.StatusRequestTimeout:
		return NewRetryable(channel, code, 0, err)
	case status >= 400 && status < 500:
		return NewPermanent(channel, code, err)
	default:
		return NewRetryable(channel, code, ParseRetryAfter(header.Get("Retry-After"), now), err)
	}
}

// ParseRetryAfter reads a Retry-After value, in seconds or as an HTTP date.
// It returns 0 for an empty, malformed or past value and caps at MaxRetryAfter.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}

// TransportError classifies a failure that got no provider answer (network,
// timeout, cancellation): always retryable, since the provider may never have
// seen the message. It drops the URL from *url.Error, as URLs may hold
// secrets or identify the recipient.
func TransportError(channel string, err error) *Error {
	return NewRetryable(channel, transportCode(err), 0, StripURL(err))
}

func transportCode(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "network"
}

// StripURL removes the URL from a *url.Error, keeping its operation and cause.
func StripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s request: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}
