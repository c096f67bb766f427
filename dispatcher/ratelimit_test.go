package dispatcher

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
	"github.com/viogen-alerts/dispatcher/rules"
)

// fakeClock is a settable clock shared by limiters under test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestLimiter(rdb redis.UniversalClient, clock *fakeClock) *RateLimiter {
	return NewRateLimiter(RateLimiterConfig{Redis: rdb, Now: clock.now, Log: quietLog()})
}

// take is one Take: its wait, in ms.
type take struct {
	critical bool
	wantMS   float64 // 0: sent now
}

func checkTakes(t *testing.T, step string, l *RateLimiter, d Destination, lim rules.Limit, takes []take) {
	t.Helper()
	for i, tk := range takes {
		got := l.Take(context.Background(), d, lim, tk.critical)
		if float64(got)/float64(time.Millisecond) != tk.wantMS {
			t.Fatalf("%s, take %d (critical %v): wait %v, want %vms", step, i, tk.critical, got, tk.wantMS)
		}
	}
}

// The GCRA script on a real redis-server with an injected clock: exact
// allow and retry-slot sequences, the burst, the reserve only critical
// messages take, retry slots spread one interval apart, the burst back
// after a quiet spell.
func TestRateLimitScriptSequences(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	clock := &fakeClock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	l := newTestLimiter(rdb, clock)
	d := Destination{Channel: "pager", Name: "key-0123456789abcdef"}
	lim := rules.Limit{PerSecond: 10, Burst: 3, Reserve: 1} // one every 100 ms

	checkTakes(t, "t0", l, d, lim, []take{
		{false, 0}, {false, 0}, // the burst less the reserve
		{false, 100}, // one interval until a token is free above the reserve
		{false, 200}, // the next retry slot, one interval later
		{true, 0},    // critical takes the reserve
		{true, 100},  // none left: its own retry slots
		{true, 200},
	})
	clock.add(100 * time.Millisecond)
	checkTakes(t, "t0+100ms", l, d, lim, []take{
		{true, 0},    // the token the first critical slot was given for
		{false, 200}, // the next non-critical slot (t0+300ms)
	})
	clock.add(10 * time.Second) // a quiet spell: the whole burst is back
	checkTakes(t, "t0+10.1s", l, d, lim, []take{{false, 0}, {false, 0}, {false, 100}, {true, 0}, {true, 100}})

	ttl, err := rdb.PTTL(context.Background(), d.key()).Result()
	if err != nil || ttl <= 0 || ttl > 2*time.Minute {
		t.Fatalf("budget key TTL %v (%v): want it to expire about a minute after its last slot", ttl, err)
	}
	if want := "{ratelimit:pager:key-0123456789abcdef}"; d.key() != want {
		t.Fatalf("key %q, want %q: one hash tag per destination", d.key(), want)
	}
}

// The embedded Redis of `dispatcher dev` (miniredis) runs the script as
// redis-server does: the same sequences, and its own TIME.
func TestRateLimitScriptOnMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	clock := &fakeClock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	l := newTestLimiter(rdb, clock)
	d := Destination{Channel: "pager", Name: "key-0123456789abcdef"}
	lim := rules.Limit{PerSecond: 10, Burst: 3, Reserve: 1}
	checkTakes(t, "t0", l, d, lim, []take{{false, 0}, {false, 0}, {false, 100}, {false, 200}, {true, 0}, {true, 100}})
	server := NewRateLimiter(RateLimiterConfig{Redis: rdb, Log: quietLog()})
	d2 := Destination{Channel: "sms", Name: "VIOGEN"}
	slow := rules.Limit{PerSecond: 0.001, Burst: 1}
	if server.Take(context.Background(), d2, slow, false) != 0 || server.Take(context.Background(), d2, slow, false) < DefaultSlotHorizon {
		t.Fatal("with the server's clock: want the burst of one, then no slot within the horizon")
	}
	if n := counterValue(t, l.fallbacks.WithLabelValues("pager")) + counterValue(t, server.fallbacks.WithLabelValues("sms")); n != 0 {
		t.Fatalf("%v local decisions: the script failed on miniredis", n)
	}
}

// No slot is promised beyond the horizon: such messages ask again after
// one to two horizons and the slot line does not move, so it never runs
// further ahead than horizon x rate, and a raised limit reaches them.
func TestRateLimitSlotsStopAtTheHorizon(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	clock := &fakeClock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	l := NewRateLimiter(RateLimiterConfig{Redis: rdb, Now: clock.now, Horizon: 300 * time.Millisecond, Log: quietLog()})
	d := Destination{Channel: "sms", Name: "VIOGEN"}
	lim := rules.Limit{PerSecond: 10, Burst: 1}
	checkTakes(t, "t0", l, d, lim, []take{{false, 0}, {false, 100}, {false, 200}})
	for range 20 {
		if w := l.Take(context.Background(), d, lim, false); w < 300*time.Millisecond || w >= 600*time.Millisecond {
			t.Fatalf("beyond the horizon: wait %v, want 300 ms to 600 ms", w)
		}
	}
	clock.add(100 * time.Millisecond)
	// A free token goes to whoever asks first; the slot line did not move
	// while slots were refused: the next is still the one at t0+300ms.
	checkTakes(t, "t0+100ms", l, d, lim, []take{{false, 0}, {false, 200}})
	// A raised limit counts the one message owed at its own interval and
	// gives slots at its rate to whoever asks: 1 ms apart.
	checkTakes(t, "raised", l, d, rules.Limit{PerSecond: 1000, Burst: 1}, []take{{false, 1}, {false, 2}, {false, 3}})
}

// Times off the round numbers keep every microsecond: they are written
// to the hash in full, not as Lua's 14-digit tostring.
func TestRateLimitScriptKeepsMicroseconds(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	clock := &fakeClock{t: time.Date(2026, 3, 10, 12, 0, 0, 123457000, time.UTC)}
	l := newTestLimiter(rdb, clock)
	d := Destination{Channel: "sms", Name: "VIOGEN"}
	lim := rules.Limit{PerSecond: 7, Burst: 1} // T = 142,858 µs
	for i, want := range []time.Duration{0, 142858, 285716, 428574} {
		if got := l.Take(context.Background(), d, lim, false); got != want*time.Microsecond {
			t.Fatalf("take %d: wait %v, want %v", i, got, want*time.Microsecond)
		}
	}
	clock.add(142858 * time.Microsecond)
	if got := l.Take(context.Background(), d, lim, true); got != 0 {
		t.Fatalf("at the next token: wait %v, want 0", got)
	}
}

// A changed limit (a reload) forgets the retry slots of the old one.
func TestRateLimitScriptNewLimitForgetsOldSlots(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	clock := &fakeClock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	l := newTestLimiter(rdb, clock)
	d := Destination{Channel: "sms", Name: "VIOGEN"}
	slow := rules.Limit{PerSecond: 1, Burst: 1}
	checkTakes(t, "slow", l, d, slow, []take{{false, 0}, {false, 1000}, {false, 2000}, {false, 3000}})
	fast := rules.Limit{PerSecond: 1000, Burst: 1}
	// The bucket owes one message (the last send): 1 ms at the new limit;
	// the slots of the 1/s limit (up to t0+4s) are gone: new ones 1 ms apart.
	checkTakes(t, "fast", l, d, fast, []take{{false, 1}, {false, 2}})
}

// Two limiters (two instances) on one redis-server share one budget: the
// burst goes once in all, not once per instance, and a critical message
// of either takes the reserve the other's non-critical ones left.
func TestRateLimitSharedByInstances(t *testing.T) {
	srv := testenv.StartRedis(t)
	clock := &fakeClock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	a, b := newTestLimiter(srv.Client(t), clock), newTestLimiter(srv.Client(t), clock)
	d := Destination{Channel: "webhook", Name: "https://hooks.example.org:443"}
	lim := rules.Limit{PerSecond: 2, Burst: 4, Reserve: 2}
	checkTakes(t, "a", a, d, lim, []take{{false, 0}})
	checkTakes(t, "b", b, d, lim, []take{{false, 0}, {false, 500}})
	checkTakes(t, "a", a, d, lim, []take{{false, 1000}, {true, 0}})
	checkTakes(t, "b", b, d, lim, []take{{true, 0}, {true, 500}})
	if n := counterValue(t, a.fallbacks.WithLabelValues("webhook")) + counterValue(t, b.fallbacks.WithLabelValues("webhook")); n != 0 {
		t.Fatalf("%v fallbacks with Redis up", n)
	}
}

// Within one instance, while a critical message waits for a destination,
// non-critical ones take no token there even when the reserve would let
// them: they get retry slots after it.
func TestRateLimitCriticalWaitingHoldsOthersBack(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	clock := &fakeClock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	l := newTestLimiter(rdb, clock)
	other := newTestLimiter(rdb, clock)
	d := Destination{Channel: "email", Name: "relay.example.org:587"}
	lim := rules.Limit{PerSecond: 10, Burst: 1}
	checkTakes(t, "t0", l, d, lim, []take{{false, 0}, {true, 100}})
	clock.add(100 * time.Millisecond)
	// A token is free, but this instance's critical message waits for it.
	checkTakes(t, "held", l, d, lim, []take{{false, 100}})
	checkTakes(t, "critical", l, d, lim, []take{{true, 0}})
	clock.add(100 * time.Millisecond)
	// Another instance has no critical message waiting: it takes the next
	// token, while this one still holds back for a second past the slot.
	checkTakes(t, "other", other, d, lim, []take{{false, 0}})
	clock.add(time.Second)
	checkTakes(t, "hold over", l, d, lim, []take{{false, 0}})
}

// With Redis unreachable, the limiter decides alone with a local bucket of
// the same limit: critical messages still go, the burst is still a
// burst, and every local decision is counted.
func TestRateLimitFallsBackWhenRedisIsDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	rdb := srv.Client(t)
	clock := &fakeClock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	l := newTestLimiter(rdb, clock)
	d := Destination{Channel: "sms", Name: "MG00000000000000000000000000000000"}
	lim := rules.Limit{PerSecond: 10, Burst: 2, Reserve: 1}
	srv.Stop()
	checkTakes(t, "down", l, d, lim, []take{{false, 0}, {false, 100}, {true, 0}, {true, 100}})
	clock.add(100 * time.Millisecond)
	checkTakes(t, "down later", l, d, lim, []take{{true, 0}})
	if n := counterValue(t, l.fallbacks.WithLabelValues("sms")); n != 5 {
		t.Fatalf("%v fallbacks counted, want 5", n)
	}
	if n := counterValue(t, l.throttled.WithLabelValues("sms", d.Name, "critical")); n != 1 {
		t.Fatalf("%v critical throttles counted, want 1", n)
	}
}

// Unlimited limits and a nil limiter never hold a message back.
func TestRateLimitUnlimited(t *testing.T) {
	var none *RateLimiter
	if w := none.Take(context.Background(), Destination{Channel: "sms", Name: "x"}, rules.Limit{PerSecond: 10, Burst: 1}, false); w != 0 {
		t.Fatalf("nil limiter: wait %v", w)
	}
	l := newTestLimiter(nil, &fakeClock{t: time.Now()})
	for range 100 {
		if w := l.Take(context.Background(), Destination{Channel: "sms", Name: "x"}, rules.Limit{}, false); w != 0 {
			t.Fatalf("per_second 0: wait %v", w)
		}
	}
}

// On a Redis Cluster, with the servers' own clocks (TIME in the script):
// each destination's budget is one key with its own hash tag, shared by
// two limiters, and destinations spread over the masters.
func TestRateLimitOnRedisCluster(t *testing.T) {
	c := testenv.StartRedisCluster(t)
	a := NewRateLimiter(RateLimiterConfig{Redis: c.Client(t), Log: quietLog()})
	b := NewRateLimiter(RateLimiterConfig{Redis: c.Client(t), Log: quietLog()})
	lim := rules.Limit{PerSecond: 0.001, Burst: 2} // one token every 1,000 s: only the burst
	slots := map[int]bool{}
	for i := range 12 {
		d := Destination{Channel: "webhook", Name: fmt.Sprintf("https://agency-%d.example.org:443", i)}
		slots[keySlot(d.key())*3/16384] = true
		if a.Take(context.Background(), d, lim, false) != 0 || b.Take(context.Background(), d, lim, true) != 0 {
			t.Fatalf("%s: the burst of 2 refused", d.Name)
		}
		if w := a.Take(context.Background(), d, lim, true); w < DefaultSlotHorizon {
			t.Fatalf("%s: third message after the shared burst waits %v, want no slot within the horizon", d.Name, w)
		}
	}
	if len(slots) < 3 {
		t.Fatalf("12 destinations fell in %d of 3 slot ranges: they do not spread", len(slots))
	}
	if n := counterValue(t, a.fallbacks.WithLabelValues("webhook")) + counterValue(t, b.fallbacks.WithLabelValues("webhook")); n != 0 {
		t.Fatalf("%v local decisions on a healthy cluster", n)
	}
}
