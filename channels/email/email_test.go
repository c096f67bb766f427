package email_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/channels"
	"github.com/viogen-alerts/dispatcher/channels/email"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
)

const (
	user   = "dispatcher"
	pass   = "s3cret-pass"
	from   = "alertas@example.org"
	rcpt   = "agente.garcia@example.org"
	bounce = "nadie@example.org"
)

func newChannel(t testing.TB, fake *providertest.SMTP, mod func(*email.Config)) *email.Channel {
	t.Helper()
	cfg := email.Config{URL: fake.URL(), From: "VioGén Alertas <" + from + ">", TLS: email.TLSNone, Timeout: 5 * time.Second}
	if fake.CertPool() != nil {
		cfg.TLS = ""
		cfg.TLSConfig = &tls.Config{RootCAs: fake.CertPool(), MinVersion: tls.VersionTLS12}
	}
	if mod != nil {
		mod(&cfg)
	}
	ch, err := email.New(cfg)
	if err != nil {
		t.Fatalf("email.New: %v", err)
	}
	return ch
}

func message(to string) channels.Message {
	return channels.Message{
		ID: "intent-9", AlertID: "alert-9", CaseRef: "case-9", ContactID: "contact-9",
		Severity: "critical", Critical: true, To: to,
		Subject: "Alerta VioGén — nivel extremo (case-9)",
		Body:    "El caso case-9 ha subido a nivel extremo.\nAcción: contactar con la víctima.",
	}
}

func TestSendPlainWithAuth(t *testing.T) {
	fake := providertest.NewSMTP(t, user, pass)
	ch := newChannel(t, fake, nil)
	if ch.Name() != "email" {
		t.Errorf("Name = %q", ch.Name())
	}
	m := message(rcpt)
	r, err := ch.Send(context.Background(), m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if r.ProviderID != email.MessageID(m.ID, from) || r.Status != "accepted" {
		t.Errorf("receipt = %+v", r)
	}
	got := fake.Messages()
	if len(got) != 1 {
		t.Fatalf("fake got %d mails", len(got))
	}
	g := got[0]
	if g.From != from || len(g.To) != 1 || g.To[0] != rcpt || g.User != user || g.TLS {
		t.Errorf("envelope = %+v", g)
	}
	checkHeaders(t, g, m)
}

func checkHeaders(t *testing.T, g providertest.SMTPMessage, m channels.Message) {
	t.Helper()
	if s := g.Header("Subject"); s != m.Subject {
		t.Errorf("Subject = %q", s)
	}
	if id := g.Header("Message-ID"); id != email.MessageID(m.ID, from) {
		t.Errorf("Message-ID = %q, want %q", id, email.MessageID(m.ID, from))
	}
	if to := g.Header("To"); !strings.Contains(to, m.To) {
		t.Errorf("To = %q", to)
	}
	if ct := g.Header("Content-Type"); !strings.HasPrefix(ct, "text/plain") || !strings.Contains(strings.ToLower(ct), "utf-8") {
		t.Errorf("Content-Type = %q", ct)
	}
	body, err := g.Text()
	if err != nil || strings.TrimSpace(strings.ReplaceAll(body, "\r\n", "\n")) != m.Body {
		t.Errorf("body = %q, %v", body, err)
	}
}

func TestMessageIDIsDeterministic(t *testing.T) {
	fake := providertest.NewSMTP(t, user, pass)
	ch := newChannel(t, fake, nil)
	for range 2 {
		if _, err := ch.Send(context.Background(), message(rcpt)); err != nil {
			t.Fatal(err)
		}
	}
	other := message(rcpt)
	other.ID = "intent-10"
	if _, err := ch.Send(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	got := fake.Messages()
	a, b, c := got[0].Header("Message-ID"), got[1].Header("Message-ID"), got[2].Header("Message-ID")
	if a != b || a == c || !strings.HasSuffix(a, "@example.org>") || strings.Contains(a, "intent") {
		t.Errorf("Message-IDs %q %q %q", a, b, c)
	}
}

func TestSendSTARTTLS(t *testing.T) {
	fake := providertest.NewSMTP(t, user, pass, providertest.WithSTARTTLS())
	ch := newChannel(t, fake, nil)
	if _, err := ch.Send(context.Background(), message(rcpt)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if g := fake.Messages()[0]; !g.TLS || g.User != user {
		t.Errorf("mail = %+v, want TLS and auth", g)
	}
}

func TestSendImplicitTLS(t *testing.T) {
	fake := providertest.NewSMTP(t, user, pass, providertest.WithImplicitTLS())
	if !strings.HasPrefix(fake.URL(), "smtps://") {
		t.Fatalf("URL %q", fake.URL())
	}
	ch := newChannel(t, fake, nil)
	if _, err := ch.Send(context.Background(), message(rcpt)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if !fake.Messages()[0].TLS {
		t.Error("mail not sent over TLS")
	}
}

// Mandatory STARTTLS never falls back to clear text: a stripped STARTTLS
// (misconfiguration or attack) fails, retryably, and sends nothing.
func TestStartTLSIsMandatory(t *testing.T) {
	fake := providertest.NewSMTP(t, user, pass)
	ch := newChannel(t, fake, func(c *email.Config) { c.TLS = email.TLSStartTLS })
	_, err := ch.Send(context.Background(), message(rcpt))
	assertClass(t, err, false, "network")
	if fake.Attempts() != 0 || len(fake.Messages()) != 0 {
		t.Errorf("sent without TLS: attempts %d", fake.Attempts())
	}
}

func TestUntrustedCertificate(t *testing.T) {
	fake := providertest.NewSMTP(t, user, pass, providertest.WithSTARTTLS())
	ch := newChannel(t, fake, func(c *email.Config) { c.TLSConfig = nil })
	_, err := ch.Send(context.Background(), message(rcpt))
	if err == nil || len(fake.Messages()) != 0 {
		t.Fatalf("sent to an untrusted server: %v", err)
	}
}

func TestSendFailures(t *testing.T) {
	cases := []struct {
		name      string
		fault     providertest.Fault
		permanent bool
		code      string
	}{
		{"bounce", providertest.Rejected, true, "550"},
		{"temporary", providertest.ServerError, false, "451"},
		{"rate limited", providertest.RateLimited, false, "451"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake := providertest.NewSMTP(t, user, pass)
			fake.FailFor(bounce, c.fault)
			ch := newChannel(t, fake, nil)
			_, err := ch.Send(context.Background(), message(bounce))
			assertClass(t, err, c.permanent, c.code)
			if strings.Contains(err.Error(), bounce) || strings.Contains(err.Error(), "nadie") {
				t.Errorf("error leaks the address: %v", err)
			}
		})
	}
}

func TestBadPassword(t *testing.T) {
	fake := providertest.NewSMTP(t, user, pass)
	ch := newChannel(t, fake, func(c *email.Config) { c.Password = "wrong-pass" })
	_, err := ch.Send(context.Background(), message(rcpt))
	assertClass(t, err, true, "535")
	if strings.Contains(err.Error(), "wrong-pass") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestPasswordFieldOverridesURL(t *testing.T) {
	fake := providertest.NewSMTP(t, user, pass)
	url := strings.Replace(fake.URL(), pass, "stale", 1)
	ch := newChannel(t, fake, func(c *email.Config) { c.URL, c.Password = url, pass })
	if _, err := ch.Send(context.Background(), message(rcpt)); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

func TestSendTimeoutAndCancel(t *testing.T) {
	fake := providertest.NewSMTP(t, user, pass)
	fake.FailFor(rcpt, providertest.Hang)
	ch := newChannel(t, fake, func(c *email.Config) { c.Timeout = 200 * time.Millisecond })
	_, err := ch.Send(context.Background(), message(rcpt))
	assertClass(t, err, false, "timeout")

	ch = newChannel(t, fake, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err = ch.Send(ctx, message(rcpt))
	assertClass(t, err, false, "canceled")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%v does not wrap context.Canceled", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cancel took %v", d)
	}
}

func TestConnectionRefused(t *testing.T) {
	fake := providertest.NewSMTP(t, user, pass)
	ch := newChannel(t, fake, func(c *email.Config) { c.URL = "smtp://127.0.0.1:1" })
	_, err := ch.Send(context.Background(), message(rcpt))
	assertClass(t, err, false, "network")
}

func TestInvalidRecipient(t *testing.T) {
	fake := providertest.NewSMTP(t, user, pass)
	ch := newChannel(t, fake, nil)
	for _, to := range []string{"", "+34600000001", "not an address"} {
		_, err := ch.Send(context.Background(), message(to))
		assertClass(t, err, true, channels.CodeInvalidRecipient)
	}
}

// TestConcurrentSendsShareSlots measures the sessions open at once: a relay
// in front of the fake holds every new connection for a while, as a slow
// server would, so ten concurrent sends pile up there unless the channel
// keeps them to MaxConns. Max must be MaxConns exactly: more is the limit
// broken, fewer is the slots not shared.
func TestConcurrentSendsShareSlots(t *testing.T) {
	const maxConns, sends = 2, 10
	fake := providertest.NewSMTP(t, user, pass)
	gauge := providertest.NewConnGauge(t, fake.Addr(), 150*time.Millisecond)
	ch := newChannel(t, fake, func(c *email.Config) {
		c.MaxConns = maxConns
		c.URL = "smtp://" + user + ":" + pass + "@" + gauge.Addr()
	})
	var wg sync.WaitGroup
	for i := range sends {
		wg.Go(func() {
			m := message(fmt.Sprintf("agente%d@example.org", i))
			if _, err := ch.Send(context.Background(), m); err != nil {
				t.Errorf("Send %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if n := len(fake.Messages()); n != sends {
		t.Errorf("delivered %d, want %d", n, sends)
	}
	if n := gauge.Total(); n != sends {
		t.Errorf("%d sessions through the gauge, want %d (one per send)", n, sends)
	}
	if m := gauge.Max(); m != maxConns {
		t.Errorf("%d sessions open at once, want exactly MaxConns = %d", m, maxConns)
	}
}

func TestLogsHoldNoAddress(t *testing.T) {
	fake := providertest.NewSMTP(t, user, pass)
	logs := providertest.CaptureLog()
	ch := newChannel(t, fake, func(c *email.Config) { c.Logger = logs.Logger })
	fake.FailFor(bounce, providertest.Rejected)
	_, _ = ch.Send(context.Background(), message(rcpt))
	_, _ = ch.Send(context.Background(), message(bounce))
	_, _ = ch.Send(context.Background(), message("garbage@@example.org"))
	logs.AssertNotContains(t, rcpt, bounce, "agente.garcia", "nadie@", "garbage", pass)
	if out := logs.String(); !strings.Contains(out, "a***@example.org") || !strings.Contains(out, "contact-9") {
		t.Errorf("log lacks the masked address or contact id:\n%s", out)
	}
}

func TestConfig(t *testing.T) {
	bad := []email.Config{
		{URL: "smtp://u:" + pass + "@host:99999", From: from},
		{URL: "http://host", From: from},
		{URL: "smtp://host", From: from, TLS: "maybe"},
		{URL: "smtp://host"},
		{URL: "smtp://u:" + pass + "@[bad", From: from},
	}
	for i, c := range bad {
		_, err := email.New(c)
		if err == nil {
			t.Errorf("config %d: want an error", i)
		} else if strings.Contains(err.Error(), pass) {
			t.Errorf("config %d: error leaks the password: %v", i, err)
		}
	}
	env := map[string]string{"SMTP_URL": "smtps://relay.example.org", "SMTP_FROM": from, "SMTP_TIMEOUT": "9s"}
	cfg, err := email.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || cfg.Timeout != 9*time.Second {
		t.Errorf("ConfigFromEnv = %+v, %v", cfg, err)
	}
}

func assertClass(t *testing.T, err error, permanent bool, code string) {
	t.Helper()
	var ce *channels.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *channels.Error", err)
	}
	if ce.Channel != "email" || channels.IsPermanent(err) != permanent || ce.Code != code {
		t.Errorf("got %v code %q; want permanent=%v code %q (%v)", ce.Class, ce.Code, permanent, code, err)
	}
}

func BenchmarkEmailSend(b *testing.B) {
	fake := providertest.NewSMTP(b, user, pass)
	ch := newChannel(b, fake, nil)
	m := message(rcpt)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ch.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}
