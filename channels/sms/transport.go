package sms

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/viogen-alerts/dispatcher/channels"
)

// maxErrorBody bounds how much of an error answer is kept for the SDK to decode.
const maxErrorBody = 64 << 10

// call is the RoundTripper of one send. twilio-go builds its requests with
// context.Background and hides the response of a failed call, so call
// carries our context in, rewrites the base URL, and remembers the status
// and Retry-After that the SDK's error drops. One call serves one send.
type call struct {
	ctx        context.Context
	base       http.RoundTripper
	target     *url.URL
	status     int
	retryAfter time.Duration
}

func (c *call) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(c.ctx)
	if c.target != nil {
		r.URL.Scheme = c.target.Scheme
		r.URL.Host = c.target.Host
		r.Host = ""
	}
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	c.status = resp.StatusCode
	c.retryAfter = channels.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if resp.StatusCode >= 400 {
		// The SDK never closes an error body: buffer it and free the connection.
		resp.Body = bufferBody(resp.Body)
	}
	return resp, nil
}

func bufferBody(body io.ReadCloser) io.ReadCloser {
	defer body.Close()
	b, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
	return io.NopCloser(bytes.NewReader(b))
}

func newBaseTransport(maxConns int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxConnsPerHost = maxConns
	t.MaxIdleConnsPerHost = maxConns // a burst's connections are reused, not redialled
	return t
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
