package sms_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/channels"
	"github.com/viogen-alerts/dispatcher/channels/sms"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
)

const (
	accountSID = "AC0123456789abcdef0123456789abcdef"
	authToken  = "f00dfeedf00dfeedf00dfeedf00dfeed"
	from       = "+34600000900"
	to         = "+34600000001"
	callback   = "https://dispatcher.example.org/twilio/status"
)

func newChannel(t testing.TB, fake *providertest.Twilio, mod func(*sms.Config)) *sms.Channel {
	t.Helper()
	cfg := sms.Config{
		AccountSID: accountSID, AuthToken: authToken, From: from,
		StatusCallbackURL: callback, APIURL: fake.URL(), Timeout: 5 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	ch, err := sms.New(cfg)
	if err != nil {
		t.Fatalf("sms.New: %v", err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	return ch
}

func message(to string) channels.Message {
	return channels.Message{
		ID: "intent-1", AlertID: "alert-1", CaseRef: "case-1", ContactID: "contact-1",
		Severity: "critical", Critical: true, To: to, Body: "Alerta VioGén: nivel extremo. Ref case-1.",
	}
}

func TestSendSuccess(t *testing.T) {
	fake := providertest.NewTwilio(t, accountSID, authToken)
	ch := newChannel(t, fake, nil)
	if ch.Name() != "sms" {
		t.Errorf("Name = %q", ch.Name())
	}
	r, err := ch.Send(context.Background(), message(to))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if !strings.HasPrefix(r.ProviderID, "SM") || len(r.ProviderID) != 34 || r.Status != "queued" {
		t.Errorf("receipt = %+v", r)
	}
	got := fake.Messages()
	if len(got) != 1 {
		t.Fatalf("fake got %d messages", len(got))
	}
	m := got[0]
	if m.Sid != r.ProviderID || m.To != to || m.From != from || m.StatusCallback != callback ||
		m.Body != message(to).Body || m.MessagingServiceSID != "" {
		t.Errorf("fake recorded %+v", m)
	}
}

func TestSendMessagingService(t *testing.T) {
	fake := providertest.NewTwilio(t, accountSID, authToken)
	ch := newChannel(t, fake, func(c *sms.Config) {
		c.From, c.MessagingServiceSID, c.StatusCallbackURL = "", "MG0123456789abcdef0123456789abcdef", ""
	})
	if _, err := ch.Send(context.Background(), message(to)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := fake.Messages()[0]
	if m.MessagingServiceSID != "MG0123456789abcdef0123456789abcdef" || m.From != "" || m.StatusCallback != "" {
		t.Errorf("fake recorded %+v", m)
	}
}

func TestSendTruncatesLongBody(t *testing.T) {
	fake := providertest.NewTwilio(t, accountSID, authToken)
	ch := newChannel(t, fake, nil)
	m := message(to)
	m.Body = strings.Repeat("é", sms.MaxBody+50)
	if _, err := ch.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if n := len([]rune(fake.Messages()[0].Body)); n != sms.MaxBody {
		t.Errorf("body has %d characters, want %d", n, sms.MaxBody)
	}
}

func TestSendFailures(t *testing.T) {
	cases := []struct {
		name       string
		fault      providertest.Fault
		retryAfter string
		permanent  bool
		code       string
		after      time.Duration
	}{
		{"rate limited", providertest.RateLimited, "3", false, "20429", 3 * time.Second},
		{"rate limited without header", providertest.RateLimited, "", false, "20429", 0},
		{"invalid number", providertest.Rejected, "", true, "21211", 0},
		{"unsubscribed", providertest.Unsubscribed, "", true, "21610", 0},
		{"500 without JSON", providertest.ServerError, "", false, "500", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake := providertest.NewTwilio(t, accountSID, authToken)
			fake.SetRetryAfter(c.retryAfter)
			fake.FailFor(to, c.fault)
			ch := newChannel(t, fake, nil)
			_, err := ch.Send(context.Background(), message(to))
			assertClass(t, err, c.permanent, c.code, c.after)
			if strings.Contains(err.Error(), to) {
				t.Errorf("error leaks the number: %v", err)
			}
		})
	}
}

func TestSendRetryAfterHTTPDate(t *testing.T) {
	fake := providertest.NewTwilio(t, accountSID, authToken)
	fake.SetRetryAfter(time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat))
	fake.FailNext(1, providertest.RateLimited)
	ch := newChannel(t, fake, nil)
	_, err := ch.Send(context.Background(), message(to))
	if d := channels.RetryAfter(err); d < 80*time.Second || d > 91*time.Second {
		t.Errorf("RetryAfter = %v, want about 90s (err %v)", d, err)
	}
	// The next send is not scripted and goes through.
	if _, err := ch.Send(context.Background(), message(to)); err != nil {
		t.Errorf("second Send: %v", err)
	}
}

func TestSendBadCredentials(t *testing.T) {
	fake := providertest.NewTwilio(t, accountSID, authToken)
	ch := newChannel(t, fake, func(c *sms.Config) { c.AuthToken = "wrongwrongwrong" })
	_, err := ch.Send(context.Background(), message(to))
	assertClass(t, err, true, "20003", 0)
	if strings.Contains(err.Error(), "wrongwrongwrong") {
		t.Errorf("error leaks the token: %v", err)
	}
}

func TestSendInvalidRecipientLocally(t *testing.T) {
	fake := providertest.NewTwilio(t, accountSID, authToken)
	ch := newChannel(t, fake, nil)
	for _, bad := range []string{"", "600000001", "+0600000001", "jane@example.org"} {
		_, err := ch.Send(context.Background(), message(bad))
		assertClass(t, err, true, channels.CodeInvalidRecipient, 0)
	}
	if n := fake.Attempts(); n != 0 {
		t.Errorf("fake saw %d requests, want 0", n)
	}
}

func TestSendTimeoutAndCancel(t *testing.T) {
	fake := providertest.NewTwilio(t, accountSID, authToken)
	fake.FailFor(to, providertest.Hang)
	ch := newChannel(t, fake, func(c *sms.Config) { c.Timeout = 100 * time.Millisecond })
	_, err := ch.Send(context.Background(), message(to))
	assertClass(t, err, false, "timeout", 0)

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	ch = newChannel(t, fake, nil)
	_, err = ch.Send(ctx, message(to))
	assertClass(t, err, false, "canceled", 0)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v does not wrap context.Canceled", err)
	}

	_, err = ch.Send(ctx, message(to)) // already cancelled: no request at all
	assertClass(t, err, false, "canceled", 0)
}

func TestSendConnectionRefused(t *testing.T) {
	fake := providertest.NewTwilio(t, accountSID, authToken)
	ch := newChannel(t, fake, func(c *sms.Config) { c.APIURL = "http://127.0.0.1:1" })
	_, err := ch.Send(context.Background(), message(to))
	assertClass(t, err, false, "network", 0)
}

func TestSendConcurrent(t *testing.T) {
	fake := providertest.NewTwilio(t, accountSID, authToken)
	fake.FailNext(5, providertest.RateLimited)
	ch := newChannel(t, fake, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := ch.Send(context.Background(), message(to))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			assertClass(t, err, false, "20429", time.Second)
		}
	}
	if failed != 5 || len(fake.Messages()) != 15 {
		t.Errorf("failed %d, delivered %d; want 5 and 15", failed, len(fake.Messages()))
	}
}

func TestLogsHoldNoPhoneNumber(t *testing.T) {
	fake := providertest.NewTwilio(t, accountSID, authToken)
	logs := providertest.CaptureLog()
	ch := newChannel(t, fake, func(c *sms.Config) { c.Logger = logs.Logger })
	const bad = "+34600000002"
	fake.FailFor(bad, providertest.Rejected)
	if _, err := ch.Send(context.Background(), message(to)); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Send(context.Background(), message(bad)); err == nil {
		t.Fatal("want an error")
	}
	_, _ = ch.Send(context.Background(), message("+34 600 000 003"))
	logs.AssertNotContains(t, to, bad, "600000", authToken)
	if out := logs.String(); !strings.Contains(out, "+34*******01") || !strings.Contains(out, "contact-1") {
		t.Errorf("log lacks masked number or contact id:\n%s", out)
	}
}

func TestConfig(t *testing.T) {
	env := map[string]string{
		"TWILIO_ACCOUNT_SID": accountSID, "TWILIO_AUTH_TOKEN": authToken,
		"TWILIO_FROM": from, "TWILIO_TIMEOUT": "3s", "TWILIO_API_URL": "https://api.dublin.ie1.twilio.com",
	}
	cfg, err := sms.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || cfg.Timeout != 3*time.Second || cfg.From != from {
		t.Fatalf("ConfigFromEnv = %+v, %v", cfg, err)
	}
	bad := []sms.Config{
		{AccountSID: "ACshort", AuthToken: authToken, From: from},
		{AccountSID: accountSID, AuthToken: "has space", From: from},
		{AccountSID: accountSID, AuthToken: authToken},
		{AccountSID: accountSID, AuthToken: authToken, From: from, APIURL: "ftp://x"},
		{AccountSID: accountSID, AuthToken: authToken, From: from, APIURL: "https://x.example.org/base"},
		{AccountSID: accountSID, AuthToken: authToken, From: from, Timeout: -1},
	}
	for i, c := range bad {
		if _, err := sms.New(c); err == nil {
			t.Errorf("config %d: want an error", i)
		} else if strings.Contains(err.Error(), authToken) {
			t.Errorf("config %d: error leaks the token", i)
		}
	}
}

func assertClass(t *testing.T, err error, permanent bool, code string, after time.Duration) {
	t.Helper()
	if err == nil {
		t.Fatal("want an error, got nil")
	}
	var ce *channels.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *channels.Error", err)
	}
	if ce.Channel != "sms" || channels.IsPermanent(err) != permanent || ce.Code != code || ce.RetryAfter != after {
		t.Errorf("got %s/%v code %q after %v; want permanent=%v code %q after %v (%v)",
			ce.Channel, ce.Class, ce.Code, ce.RetryAfter, permanent, code, after, err)
	}
}

func BenchmarkSMSSend(b *testing.B) {
	fake := providertest.NewTwilio(b, accountSID, authToken)
	ch := newChannel(b, fake, nil)
	m := message(to)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ch.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}
