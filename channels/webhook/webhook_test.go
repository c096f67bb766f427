package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/channels"
	"github.com/viogen-alerts/dispatcher/channels/webhook"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
)

var secret = []byte("test-secret-0123456789")

func newChannel(t testing.TB, mod func(*webhook.Config)) *webhook.Channel {
	t.Helper()
	cfg := webhook.Config{Secret: secret, AllowHTTP: true, Timeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	ch, err := webhook.New(cfg)
	if err != nil {
		t.Fatalf("webhook.New: %v", err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	return ch
}

func message(to string) channels.Message {
	return channels.Message{
		ID: "intent-7", AlertID: "alert-7", CaseRef: "case-7", ContactID: "contact-7",
		Severity: "critical", Critical: true, To: to, Subject: "Nivel extremo", Body: "Caso case-7 sube a extremo.",
	}
}

func TestSendSuccess(t *testing.T) {
	fake := providertest.NewWebhook(t, secret)
	ch := newChannel(t, nil)
	before := time.Now().Add(-time.Second)
	r, err := ch.Send(context.Background(), message(fake.URL()+"/hooks/unit-1"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if r.ProviderID != "wh_1" || r.Status != "200" {
		t.Errorf("receipt = %+v", r)
	}
	d := fake.Deliveries()
	if len(d) != 1 {
		t.Fatalf("got %d deliveries", len(d))
	}
	p := d[0].Payload
	if d[0].Path != "/hooks/unit-1" || d[0].IdempotencyKey != "intent-7" ||
		p.ID != "intent-7" || p.AlertID != "alert-7" || p.CaseRef != "case-7" || p.Severity != "critical" ||
		!p.Critical || p.Subject != "Nivel extremo" || p.Body != "Caso case-7 sube a extremo." || p.SentAt.Before(before) {
		t.Errorf("delivery = %+v", d[0])
	}
	// Only these keys: nothing about the contact travels.
	var raw map[string]any
	_ = json.Unmarshal(d[0].Body, &raw)
	for k := range raw {
		switch k {
		case "id", "alert_id", "case_ref", "severity", "critical", "subject", "body", "sent_at":
		default:
			t.Errorf("unexpected payload key %q", k)
		}
	}
	ts, _ := strconv.ParseInt(d[0].Timestamp, 10, 64)
	if time.Since(time.Unix(ts, 0)) > time.Minute {
		t.Errorf("timestamp %s is not now", d[0].Timestamp)
	}
}

// A message carrying the receiving agency's own secret is signed with it,
// not with the channel's default key.
func TestSendSignsWithTheMessageSecret(t *testing.T) {
	agencyKey := []byte("agency-own-secret-0123456789")
	fake := providertest.NewWebhook(t, agencyKey)
	ch := newChannel(t, nil)
	m := message(fake.URL() + "/h")
	m.Secret = agencyKey
	if _, err := ch.Send(context.Background(), m); err != nil {
		t.Fatalf("a receiver holding the agency's key must accept: %v", err)
	}
	if len(fake.Deliveries()) != 1 {
		t.Fatalf("got %d deliveries", len(fake.Deliveries()))
	}
}

func TestSendWrongSecretIsPermanent(t *testing.T) {
	fake := providertest.NewWebhook(t, []byte("another-secret-9876543210"))
	ch := newChannel(t, nil)
	_, err := ch.Send(context.Background(), message(fake.URL()+"/h"))
	assertClass(t, err, true, "401", 0)
}

func TestSendFailures(t *testing.T) {
	cases := []struct {
		name      string
		fault     providertest.Fault
		permanent bool
		code      string
		after     time.Duration
	}{
		{"rate limited", providertest.RateLimited, false, "429", 2 * time.Second},
		{"rejected", providertest.Rejected, true, "400", 0},
		{"server error", providertest.ServerError, false, "500", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake := providertest.NewWebhook(t, secret)
			fake.SetRetryAfter("2")
			fake.FailFor("/h/secret-token", c.fault)
			ch := newChannel(t, nil)
			_, err := ch.Send(context.Background(), message(fake.URL()+"/h/secret-token"))
			assertClass(t, err, c.permanent, c.code, c.after)
			if strings.Contains(err.Error(), "secret-token") {
				t.Errorf("error leaks the URL path: %v", err)
			}
		})
	}
}

func TestSendTimeoutAndCancel(t *testing.T) {
	fake := providertest.NewWebhook(t, secret)
	fake.FailFor("/slow", providertest.Hang)
	ch := newChannel(t, func(c *webhook.Config) { c.Timeout = 100 * time.Millisecond })
	_, err := ch.Send(context.Background(), message(fake.URL()+"/slow"))
	assertClass(t, err, false, "timeout", 0)

	ch = newChannel(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = ch.Send(ctx, message(fake.URL()+"/slow"))
	assertClass(t, err, false, "canceled", 0)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%v does not wrap context.Canceled", err)
	}
}

func TestSendConnectionRefused(t *testing.T) {
	ch := newChannel(t, nil)
	_, err := ch.Send(context.Background(), message("http://127.0.0.1:1/h?token=abc123secret"))
	assertClass(t, err, false, "network", 0)
	if strings.Contains(err.Error(), "abc123secret") {
		t.Errorf("error leaks the URL: %v", err)
	}
}

func TestSendRejectsBadTargets(t *testing.T) {
	strict := newChannel(t, func(c *webhook.Config) { c.AllowHTTP = false })
	for _, to := range []string{"", "not a url", "ftp://example.org/x", "http://example.org/x", "https://"} {
		_, err := strict.Send(context.Background(), message(to))
		assertClass(t, err, true, channels.CodeInvalidRecipient, 0)
	}
}

func TestRetriesKeepIdempotencyKey(t *testing.T) {
	fake := providertest.NewWebhook(t, secret)
	fake.FailNext(1, providertest.ServerError)
	ch := newChannel(t, nil)
	m := message(fake.URL() + "/h")
	if _, err := ch.Send(context.Background(), m); err == nil {
		t.Fatal("first send: want an error")
	}
	if _, err := ch.Send(context.Background(), m); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if fake.Attempts() != 2 || fake.Deliveries()[0].IdempotencyKey != m.ID {
		t.Errorf("attempts %d, deliveries %+v", fake.Attempts(), fake.Deliveries())
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_770_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"id":"intent-1"}`)
	sig := webhook.Sign(secret, ts, body)
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
		t.Fatalf("signature %q", sig)
	}
	old := strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10)
	cases := []struct {
		name string
		ts   string
		body []byte
		sig  string
		want error
	}{
		{"good", ts, body, sig, nil},
		{"good among rotated", ts, body, "sha256=00ff, " + sig, nil},
		{"tampered body", ts, []byte(`{"id":"intent-2"}`), sig, webhook.ErrBadSignature},
		{"tampered timestamp", strconv.FormatInt(now.Unix()+1, 10), body, sig, webhook.ErrBadSignature},
		{"stale", old, body, webhook.Sign(secret, old, body), webhook.ErrStale},
		{"from the future", strconv.FormatInt(now.Add(10*time.Minute).Unix(), 10), body, sig, webhook.ErrStale},
		{"no prefix", ts, body, strings.TrimPrefix(sig, "sha256="), webhook.ErrBadSignature},
		{"not hex", ts, body, "sha256=zz", webhook.ErrBadSignature},
		{"bad timestamp", "yesterday", body, sig, webhook.ErrMalformed},
	}
	for _, c := range cases {
		err := webhook.Verify(secret, c.ts, c.body, c.sig, now, 0)
		if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
	if err := webhook.Verify(secret, old, body, webhook.Sign(secret, old, body), now, time.Hour); err != nil {
		t.Errorf("stale within a wider tolerance: %v", err)
	}
	if err := webhook.Verify(nil, ts, body, sig, now, 0); !errors.Is(err, webhook.ErrMalformed) {
		t.Errorf("empty secret: %v", err)
	}
}

func TestStaleDeliveryRefusedByReceiver(t *testing.T) {
	fake := providertest.NewWebhook(t, secret)
	ch := newChannel(t, func(c *webhook.Config) { c.Now = func() time.Time { return time.Now().Add(-time.Hour) } })
	_, err := ch.Send(context.Background(), message(fake.URL()+"/h"))
	assertClass(t, err, true, "401", 0)
}

func TestLogsHoldNoURL(t *testing.T) {
	fake := providertest.NewWebhook(t, secret)
	logs := providertest.CaptureLog()
	ch := newChannel(t, func(c *webhook.Config) { c.Logger = logs.Logger })
	fake.FailFor("/h/tok-bad", providertest.Rejected)
	_, _ = ch.Send(context.Background(), message(fake.URL()+"/h/tok-good"))
	_, _ = ch.Send(context.Background(), message(fake.URL()+"/h/tok-bad"))
	logs.AssertNotContains(t, "tok-good", "tok-bad", string(secret))
	if !strings.Contains(logs.String(), "contact-7") {
		t.Errorf("log lacks the contact id:\n%s", logs.String())
	}
}

func TestConfig(t *testing.T) {
	if _, err := webhook.New(webhook.Config{Secret: []byte("short")}); err == nil {
		t.Error("short secret: want an error")
	}
	env := map[string]string{"WEBHOOK_SECRET": string(secret), "WEBHOOK_TIMEOUT": "2s"}
	cfg, err := webhook.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || cfg.Timeout != 2*time.Second {
		t.Errorf("ConfigFromEnv = %+v, %v", cfg, err)
	}
}

func assertClass(t *testing.T, err error, permanent bool, code string, after time.Duration) {
	t.Helper()
	var ce *channels.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *channels.Error", err)
	}
	if ce.Channel != "webhook" || channels.IsPermanent(err) != permanent || ce.Code != code || ce.RetryAfter != after {
		t.Errorf("got %v code %q after %v; want permanent=%v code %q after %v (%v)",
			ce.Class, ce.Code, ce.RetryAfter, permanent, code, after, err)
	}
}

func BenchmarkWebhookSend(b *testing.B) {
	fake := providertest.NewWebhook(b, secret)
	ch := newChannel(b, nil)
	m := message(fake.URL() + "/bench")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ch.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}

// MaxConns deliveries to one host are all on the wire at once: none waits
// for a connection, where it would spend its timeout and fail ambiguously
// (the receiver may have it). The receiver answers only once all of them
// arrived, so a lower cap makes them time out.
func TestSendMaxConnsAtOnce(t *testing.T) {
	const n = 40 // above DefaultMaxConns
	var mu sync.Mutex
	arrived, all := 0, make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if arrived++; arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			w.WriteHeader(http.StatusOK)
		case <-time.After(5 * time.Second): // past the sender's timeout
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	ch := newChannel(t, func(c *webhook.Config) { c.MaxConns, c.Timeout = n, 3*time.Second })
	errs := make(chan error, n)
	for i := range n {
		go func() {
			m := message(srv.URL + "/hooks/unit-1")
			m.ID = "intent-" + strconv.Itoa(i)
			_, err := ch.Send(context.Background(), m)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("a delivery waited for a connection: %v", err)
		}
	}
}
