package pager_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/channels"
	"github.com/viogen-alerts/dispatcher/channels/pager"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
)

const routingKey = "R0123456789abcdef0123456789abcde" // 32 characters, synthetic

func newChannel(t testing.TB, fake *providertest.PagerDuty, mod func(*pager.Config)) *pager.Channel {
	t.Helper()
	cfg := pager.Config{URL: fake.URL(), Timeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	ch, err := pager.New(cfg)
	if err != nil {
		t.Fatalf("pager.New: %v", err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	return ch
}

func message() channels.Message {
	return channels.Message{
		ID: "intent-3", AlertID: "alert-3", CaseRef: "case-3", ContactID: "unit-madrid-3",
		Severity: "critical", Critical: true, To: routingKey, Subject: "Caso case-3: nivel extremo",
	}
}

func TestTrigger(t *testing.T) {
	fake := providertest.NewPagerDuty(t)
	ch := newChannel(t, fake, nil)
	r, err := ch.Send(context.Background(), message())
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if r.ProviderID != "alert-3" || r.Status != "success" {
		t.Errorf("receipt = %+v", r)
	}
	ev := fake.Events()[0]
	if ev.RoutingKey != routingKey || ev.EventAction != "trigger" || ev.DedupKey != "alert-3" || ev.Payload == nil ||
		*ev.Payload != (providertest.PagerDutyPayload{Summary: "Caso case-3: nivel extremo", Source: "viogen-dispatcher", Severity: "critical"}) {
		t.Errorf("event = %+v payload %+v", ev, ev.Payload)
	}
}

func TestSummaryAndSeverity(t *testing.T) {
	fake := providertest.NewPagerDuty(t)
	ch := newChannel(t, fake, func(c *pager.Config) { c.Source = "viogen-test" })
	m := message()
	m.Body = strings.Repeat("é", 2000) // body wins over subject, and is cut to 1024
	m.Severity = "EXTREMO"             // not PagerDuty's word: falls back to critical
	m.Source = "node-7"
	if _, err := ch.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	p := fake.Events()[0].Payload
	if n := len([]rune(p.Summary)); n != pager.MaxSummary || p.Severity != "critical" || p.Source != "node-7" {
		t.Errorf("payload summary %d chars, severity %q, source %q", n, p.Severity, p.Source)
	}
	m = message()
	m.Severity, m.Critical, m.Source = "", false, ""
	if _, err := ch.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if p := fake.Events()[1].Payload; p.Severity != "warning" || p.Source != "viogen-test" {
		t.Errorf("payload = %+v", p)
	}
}

func TestAcknowledgeAndResolve(t *testing.T) {
	fake := providertest.NewPagerDuty(t)
	ch := newChannel(t, fake, nil)
	for _, action := range []string{"acknowledge", "resolve"} {
		m := message()
		m.Action = action
		if _, err := ch.Send(context.Background(), m); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
	}
	evs := fake.Events()
	for i, action := range []string{"acknowledge", "resolve"} {
		if evs[i].EventAction != action || evs[i].DedupKey != "alert-3" || evs[i].Payload != nil {
			t.Errorf("event %d = %+v", i, evs[i])
		}
		var raw map[string]any
		_ = json.Unmarshal(evs[i].Raw, &raw)
		if _, ok := raw["payload"]; ok {
			t.Errorf("%s carries a payload: %s", action, evs[i].Raw)
		}
	}
}

func TestDedupFallsBackToMessageID(t *testing.T) {
	fake := providertest.NewPagerDuty(t)
	ch := newChannel(t, fake, nil)
	m := message()
	m.AlertID = ""
	r, err := ch.Send(context.Background(), m)
	if err != nil || r.ProviderID != "intent-3" || fake.Events()[0].DedupKey != "intent-3" {
		t.Errorf("receipt %+v, err %v, events %+v", r, err, fake.Events())
	}
}

func TestFailures(t *testing.T) {
	cases := []struct {
		name      string
		fault     providertest.Fault
		permanent bool
		code      string
		after     time.Duration
		text      string
	}{
		{"invalid event", providertest.Rejected, true, "400", 0, "routing_key' is incorrect"},
		{"throttled", providertest.RateLimited, false, "429", 5 * time.Second, "retry later"},
		{"server error", providertest.ServerError, false, "500", 0, "500"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake := providertest.NewPagerDuty(t)
			fake.SetRetryAfter("5")
			fake.FailFor(routingKey, c.fault)
			ch := newChannel(t, fake, nil)
			_, err := ch.Send(context.Background(), message())
			assertClass(t, err, c.permanent, c.code, c.after)
			if !strings.Contains(err.Error(), c.text) {
				t.Errorf("error %q lacks %q", err, c.text)
			}
			if strings.Contains(err.Error(), routingKey) {
				t.Errorf("error leaks the routing key: %v", err)
			}
		})
	}
}

func TestLocalChecks(t *testing.T) {
	fake := providertest.NewPagerDuty(t)
	ch := newChannel(t, fake, nil)
	m := message()
	m.To = ""
	_, err := ch.Send(context.Background(), m)
	assertClass(t, err, true, channels.CodeInvalidRecipient, 0)
	m = message()
	m.Action = "snooze"
	_, err = ch.Send(context.Background(), m)
	assertClass(t, err, true, "invalid_action", 0)
	m = message()
	m.Action, m.AlertID, m.ID = "resolve", "", ""
	_, err = ch.Send(context.Background(), m)
	assertClass(t, err, true, "invalid_event", 0)
	if fake.Attempts() != 0 {
		t.Errorf("fake saw %d requests", fake.Attempts())
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	fake := providertest.NewPagerDuty(t)
	fake.FailFor(routingKey, providertest.Hang)
	ch := newChannel(t, fake, func(c *pager.Config) { c.Timeout = 100 * time.Millisecond })
	_, err := ch.Send(context.Background(), message())
	assertClass(t, err, false, "timeout", 0)

	ch = newChannel(t, fake, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = ch.Send(ctx, message())
	assertClass(t, err, false, "canceled", 0)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%v does not wrap context.Canceled", err)
	}
}

func TestLogsHoldNoRoutingKey(t *testing.T) {
	fake := providertest.NewPagerDuty(t)
	logs := providertest.CaptureLog()
	ch := newChannel(t, fake, func(c *pager.Config) { c.Logger = logs.Logger })
	_, _ = ch.Send(context.Background(), message())
	fake.FailNext(1, providertest.Rejected)
	_, _ = ch.Send(context.Background(), message())
	logs.AssertNotContains(t, routingKey)
	if !strings.Contains(logs.String(), "unit-madrid-3") {
		t.Errorf("log lacks the contact id:\n%s", logs.String())
	}
}

func TestConfig(t *testing.T) {
	if _, err := pager.New(pager.Config{URL: "events.pagerduty.com"}); err == nil {
		t.Error("URL without scheme: want an error")
	}
	cfg, err := pager.ConfigFromEnv(func(k string) string {
		return map[string]string{"PAGERDUTY_TIMEOUT": "4s"}[k]
	})
	if err != nil || cfg.Timeout != 4*time.Second {
		t.Errorf("ConfigFromEnv = %+v, %v", cfg, err)
	}
}

func assertClass(t *testing.T, err error, permanent bool, code string, after time.Duration) {
	t.Helper()
	var ce *channels.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *channels.Error", err)
	}
	if ce.Channel != "pager" || channels.IsPermanent(err) != permanent || ce.Code != code || ce.RetryAfter != after {
		t.Errorf("got %v code %q after %v; want permanent=%v code %q after %v (%v)",
			ce.Class, ce.Code, ce.RetryAfter, permanent, code, after, err)
	}
}

func BenchmarkPagerSend(b *testing.B) {
	fake := providertest.NewPagerDuty(b)
	ch := newChannel(b, fake, nil)
	m := message()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ch.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}
