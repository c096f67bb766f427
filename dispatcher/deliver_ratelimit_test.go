package dispatcher

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/channels"
	"github.com/viogen-alerts/dispatcher/channels/pager"
	"github.com/viogen-alerts/dispatcher/channels/webhook"
	"github.com/viogen-alerts/dispatcher/rules"
	"github.com/viogen-alerts/dispatcher/templates"
)

// rateLimitedConfig is the example configuration with the pager routing
// key of PD_GC_CIUDAD_REAL limited to slowRate (burst 1, no reserve) and
// that of PD_PL_HERENCIA unlimited.
func rateLimitedConfig(t *testing.T, slowRate string) *rules.Config {
	t.Helper()
	src, err := os.ReadFile("../deploy/config/viogen.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src = append(src, []byte(`
rate_limits:
  destinations:
    - {pager_key_env: PD_GC_CIUDAD_REAL, per_second: `+slowRate+`, burst: 1, critical_reserve: 0}
    - {pager_key_env: PD_PL_HERENCIA, per_second: 0}
`)...)
	cfg, err := rules.Parse(src, "viogen.yaml", rules.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A destination over its rate limit holds back only its own messages:
// pages to a routing key allowed one page per 1,000 s are queued again,
// and the two workers of the pager lane meanwhile deliver every page to
// another routing key. Then a reload raises the limit and every held page
// is delivered, once (issue 9). No timing: the slow key's second token is
// 1,000 s away, so exactly one of its pages can have gone before the
// reload.
func TestDeliverThrottledDestinationDoesNotHoldBackOthers(t *testing.T) {
	e := newDeliverEnv(t)
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	live := NewLive(&Snapshot{Config: rateLimitedConfig(t, "0.001"), Templates: tmpl})
	limits := NewRateLimiter(RateLimiterConfig{Redis: e.store.rdb, Horizon: 200 * time.Millisecond, Log: quietLog()})
	d := NewDeliverer(DeliverConfig{Brokers: e.brokers, Workers: 2, Poll: 20 * time.Millisecond, Lease: 2 * time.Second,
		Retry: Backoff{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond}}, DeliverDeps{
		Live: live, Channels: e.prov.chans, Limits: limits,
		Directory: ConfigDirectory{Live: live, Secret: func(name string) string { return "R0UT1NGKEY-" + name }},
		Redis:     e.store.rdb, Writer: e.d.Writer, Log: quietLog(),
	})
	runDeliverer(t, d)
	slowKey, fastKey := "R0UT1NGKEY-PD_GC_CIUDAD_REAL", "R0UT1NGKEY-PD_PL_HERENCIA"
	slow := pager.KeyDestination(slowKey)

	const nSlow, nFast = 5, 12
	page := func(id, contact string, critical bool) Intent {
		in := intentFor(id, contact, "pager", critical)
		in.AlertID = "al-" + id // the dedup key: one per page
		return in
	}
	var slowIns, fastIns []Intent
	for i := range nSlow {
		slowIns = append(slowIns, page(fmt.Sprintf("rl-slow-%d", i), "gc-cr-guardia", i%2 == 0))
	}
	for i := range nFast {
		fastIns = append(fastIns, page(fmt.Sprintf("rl-fast-%d", i), "pl-herencia-guardia", i%3 == 0))
	}
	writeIntents(t, e.d.Writer, slowIns...)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	// The slow key's burst is spent and its other pages are held back.
	for counterValue(t, limits.throttled.WithLabelValues("pager", slow, "normal"))+
		counterValue(t, limits.throttled.WithLabelValues("pager", slow, "critical")) < nSlow-1 {
		if ctx.Err() != nil {
			t.Fatal("the slow routing key's pages were never throttled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	writeIntents(t, e.d.Writer, fastIns...)
	for pagesTo(e, fastKey) < nFast {
		if ctx.Err() != nil {
			t.Fatalf("%d of %d pages to the other routing key delivered: held back behind the throttled one", pagesTo(e, fastKey), nFast)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := pagesTo(e, slowKey); n != 1 {
		t.Fatalf("%d pages to the slow key before the reload, want its burst of 1", n)
	}
	live.Swap(&Snapshot{Config: rateLimitedConfig(t, "100"), Templates: tmpl})
	for pagesTo(e, slowKey) < nSlow {
		if ctx.Err() != nil {
			t.Fatalf("%d of %d throttled pages delivered after the limit was raised: lost", pagesTo(e, slowKey), nSlow)
		}
		time.Sleep(5 * time.Millisecond)
	}
	dedup := map[string]bool{}
	for _, ev := range e.prov.pd.Events() {
		dedup[ev.DedupKey] = true
	}
	if got := len(e.prov.pd.Events()); len(dedup) != nSlow+nFast || got != nSlow+nFast {
		t.Fatalf("%d pages, %d distinct, want %d each: none lost, none twice", got, len(dedup), nSlow+nFast)
	}
	if n := counterValue(t, limits.fallbacks.WithLabelValues("pager")); n != 0 {
		t.Fatalf("%v local decisions with Redis up", n)
	}
	// Held back is not an attempt: no retry, no failure, no attempt spent.
	for _, outcome := range []string{OutcomeRetry, OutcomeFailed} {
		for _, class := range []string{"retryable", "permanent"} {
			if n := counterValue(t, d.metrics.notifications.WithLabelValues("pager", outcome, class)); n != 0 {
				t.Fatalf("%v pager attempts with outcome %s (%s): a throttled send counted as an attempt", n, outcome, class)
			}
		}
	}
}

func pagesTo(e *deliverEnv, key string) int {
	n := 0
	for _, ev := range e.prov.pd.Events() {
		if ev.RoutingKey == key {
			n++
		}
	}
	return n
}

// Each channel names its destination the way the configuration names it,
// so a configured limit finds its messages; a routing key only hashed.
func TestChannelDestinationsMatchTheConfiguration(t *testing.T) {
	wh, err := webhook.New(webhook.Config{Secret: []byte(testKey)})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"https://Hooks.Example.org/v1/alerts?x=1", "https://hooks.example.org:443/", "https://hooks.example.org:8443/a"} {
		want, _ := rules.WebhookOrigin(u)
		if got := channels.DestinationOf(wh, channels.Message{To: u}); got != want || got == "" {
			t.Errorf("webhook %s: channel names %q, configuration %q", u, got, want)
		}
	}
	p := startProviders(t)
	if got := channels.DestinationOf(p.chans["sms"], channels.Message{To: "+34600000011"}); got != "+34600000999" {
		t.Errorf("sms destination %q, want the sender", got)
	}
	if got, want := channels.DestinationOf(p.chans["email"], channels.Message{To: "a@example.org"}), p.smtp.Addr(); got != want {
		t.Errorf("email destination %q, want the relay %q", got, want)
	}
	pd := channels.DestinationOf(p.chans["pager"], channels.Message{To: testKey})
	if pd != pager.KeyDestination(testKey) || strings.Contains(pd, testKey) || len(pd) != len("key-")+16 {
		t.Errorf("pager destination %q: want the routing key's hash, never the key", pd)
	}
}
