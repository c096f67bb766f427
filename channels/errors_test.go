package channels_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/channels"
)

func TestErrorClassification(t *testing.T) {
	base := errors.New("boom")
	perm := channels.NewPermanent("sms", "21211", base)
	retry := channels.NewRetryable("pager", "429", 3*time.Second, base)
	wrapped := fmt.Errorf("dispatch: %w", perm)

	cases := []struct {
		name      string
		err       error
		permanent bool
		after     time.Duration
		code      string
	}{
		{"nil", nil, false, 0, ""},
		{"unclassified", base, false, 0, ""},
		{"permanent", perm, true, 0, "21211"},
		{"wrapped permanent", wrapped, true, 0, "21211"},
		{"retryable", retry, false, 3 * time.Second, "429"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := channels.IsPermanent(c.err); got != c.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, c.permanent)
			}
			if got := channels.IsRetryable(c.err); got != (c.err != nil && !c.permanent) {
				t.Errorf("IsRetryable = %v", got)
			}
			if got := channels.RetryAfter(c.err); got != c.after {
				t.Errorf("RetryAfter = %v, want %v", got, c.after)
			}
			if got := channels.Code(c.err); got != c.code {
				t.Errorf("Code = %q, want %q", got, c.code)
			}
		})
	}
	if !errors.Is(wrapped, base) {
		t.Error("Unwrap chain lost the cause")
	}
	want := "pager: retryable failure [429] (retry after 3s): boom"
	if got := retry.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestHTTPStatus(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h := http.Header{}
	h.Set("Retry-After", "7")
	cases := []struct {
		status    int
		permanent bool
		after     time.Duration
	}{
		{400, true, 0}, {401, true, 0}, {404, true, 0}, {422, true, 0},
		{408, false, 0}, {429, false, 7 * time.Second},
		{500, false, 7 * time.Second}, {502, false, 7 * time.Second}, {503, false, 7 * time.Second},
		{302, false, 7 * time.Second},
	}
	for _, c := range cases {
		err := channels.HTTPStatus("webhook", c.status, h, now, errors.New("x"))
		if err.Class == channels.Permanent != c.permanent || err.RetryAfter != c.after {
			t.Errorf("%d: class %v after %v, want permanent=%v after %v", c.status, err.Class, err.RetryAfter, c.permanent, c.after)
		}
		if err.Code != fmt.Sprint(c.status) {
			t.Errorf("%d: code %q", c.status, err.Code)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"-5":                            0,
		"  12 ":                         12 * time.Second,
		"junk":                          0,
		"99999999":                      channels.MaxRetryAfter,
		"Sun, 01 Mar 2026 12:00:30 GMT": 30 * time.Second,
		"Sun, 01 Mar 2026 11:59:00 GMT": 0,
		"Mon, 02 Mar 2026 12:00:00 GMT": channels.MaxRetryAfter,
	}
	for in, want := range cases {
		if got := channels.ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestTransportError(t *testing.T) {
	secretURL := "https://hooks.example.org/T000/secret-token?x=1"
	cases := []struct {
		err  error
		code string
	}{
		{&url.Error{Op: "Post", URL: secretURL, Err: context.Canceled}, "canceled"},
		{&url.Error{Op: "Post", URL: secretURL, Err: context.DeadlineExceeded}, "timeout"},
		{&url.Error{Op: "Post", URL: secretURL, Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}, "network"},
		{fmt.Errorf("x: %w", timeoutErr{}), "timeout"},
	}
	for _, c := range cases {
		e := channels.TransportError("webhook", c.err)
		if e.Class != channels.Retryable || e.Code != c.code {
			t.Errorf("%v: class %v code %q, want retryable %q", c.err, e.Class, e.Code, c.code)
		}
		if strings.Contains(e.Error(), "secret-token") {
			t.Errorf("error leaks the URL: %v", e)
		}
	}
	if e := channels.TransportError("x", &url.Error{Op: "Post", URL: secretURL, Err: context.Canceled}); !errors.Is(e, context.Canceled) {
		t.Error("context.Canceled lost from the chain")
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
