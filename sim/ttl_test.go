package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// twinRedis runs the same commands on two embedded Redis servers: one
// moved as the simulator did before lazyTTL (SetTime and FastForward at
// every step), the simulator's own with lazyTTL.
type twinRedis struct {
	eager    *miniredis.Miniredis
	lazy     *embedded
	ce, cl   *redis.Client
	now      time.Time
	commands int
}

func newTwinRedis(t *testing.T, start time.Time) *twinRedis {
	t.Helper()
	lazy, err := startEmbedded(start)
	if err != nil {
		t.Fatal(err)
	}
	eager := miniredis.NewMiniRedis()
	eager.SetTime(start)
	dial := func(m *miniredis.Miniredis) *redis.Client {
		return redis.NewClient(&redis.Options{Addr: "embedded", PoolSize: 1,
			Dialer: func(context.Context, string, string) (net.Conn, error) { return m.Dial() }})
	}
	tw := &twinRedis{eager: eager, lazy: lazy, ce: dial(eager), cl: dial(lazy.mr), now: start}
	t.Cleanup(func() {
		_ = tw.ce.Close()
		_ = tw.cl.Close()
		eager.Close()
		lazy.mr.Close()
	})
	return tw
}

func (tw *twinRedis) advance(d time.Duration) {
	tw.now = tw.now.Add(d)
	tw.eager.SetTime(tw.now)
	tw.eager.FastForward(d)
	tw.lazy.advance(tw.now)
}

// do runs one command on both and fails on different replies.
func (tw *twinRedis) do(t *testing.T, args ...any) {
	t.Helper()
	tw.commands++
	ctx := context.Background()
	re, ee := tw.ce.Do(ctx, args...).Result()
	rl, el := tw.cl.Do(ctx, args...).Result()
	if fmt.Sprint(re, ee) != fmt.Sprint(rl, el) {
		t.Fatalf("at %s, %v: FastForward at every step gives %v %v, lazyTTL %v %v", tw.now.Format(time.RFC3339Nano), args, re, ee, rl, el)
	}
}

// same fails unless both hold the same keys, values and deadlines.
func (tw *twinRedis) same(t *testing.T) {
	t.Helper()
	want, got := tw.state(tw.eager, tw.now), tw.state(tw.lazy.mr, tw.lazy.ttl.walked)
	if want != got {
		t.Fatalf("at %s (after %d commands):\nFastForward at every step:\n%s\nlazyTTL:\n%s", tw.now.Format(time.RFC3339Nano), tw.commands, want, got)
	}
}

// state lists each key with its value and deadline (its TTL counted from
// base: now for the eager one, the last walk for lazyTTL).
func (tw *twinRedis) state(m *miniredis.Miniredis, base time.Time) string {
	keys := m.Keys()
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		v, _ := m.Get(k)
		fmt.Fprintf(&b, "%s=%q", k, v)
		if ttl := m.TTL(k); ttl != 0 {
			fmt.Fprintf(&b, " until %s", base.Add(ttl).Format(time.RFC3339Nano))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// setScript sets a key with a TTL from inside a script, as apply.lua does.
const setScript = `return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])`

// Whatever TTL commands run, and from scripts too, lazyTTL leaves the
// same keys, values and deadlines, and the same replies, as FastForward
// at every step, while walking the keys only when a deadline passes.
func TestLazyTTLSameAsFastForward(t *testing.T) {
	start := time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC)
	tw := newTwinRedis(t, start)
	rng := rand.New(rand.NewPCG(7, 29))
	for i := range 3000 {
		k := fmt.Sprintf("k%d", rng.IntN(12))
		n := 1 + rng.IntN(5000) // ms, or s
		at := tw.now.Add(time.Duration(n) * time.Millisecond)
		switch rng.IntN(17) {
		case 0:
			tw.do(t, "SET", k, i, "PX", n)
		case 1:
			tw.do(t, "set", k, i, "ex", n/100+1, "nx")
		case 2:
			tw.do(t, "SET", k, i, "PXAT", at.UnixMilli(), "XX", "GET")
		case 3:
			tw.do(t, "SET", k, i, "EXAT", at.Unix()+1)
		case 4:
			tw.do(t, "SET", k, i, "KEEPTTL")
		case 5:
			tw.do(t, "SET", k, i) // clears the TTL
		case 6:
			tw.do(t, "PEXPIRE", k, n, []string{"NX", "XX", "GT", "LT"}[rng.IntN(4)])
		case 7:
			tw.do(t, "EXPIRE", k, n/100+1)
		case 8:
			tw.do(t, "PEXPIREAT", k, at.UnixMilli())
		case 9:
			tw.do(t, "EXPIREAT", k, at.Unix()+1, "GT")
		case 10:
			tw.do(t, "SETEX", k, n/100+1, i)
		case 11:
			tw.do(t, "PSETEX", k, n, i)
		case 12:
			tw.do(t, "GETEX", k, []string{"PX", "EX"}[rng.IntN(2)], n/10+1)
		case 13:
			tw.do(t, "EVAL", setScript, 1, k, i, n)
		case 14:
			tw.do(t, "DEL", k)
		case 15:
			tw.do(t, "PERSIST", k)
		case 16:
			tw.do(t, "PEXPIRE", k, 0) // expires at once
		}
		tw.same(t)
		if rng.IntN(3) == 0 {
			d := time.Duration(rng.IntN(1500)) * time.Millisecond
			if rng.IntN(10) == 0 {
				d += 250 * time.Microsecond // a lag PX cannot say: walked
			}
			tw.advance(d)
			tw.same(t)
		}
	}
	if err := tw.lazy.ttl.failed(); err != nil || tw.lazy.ttl.eager {
		t.Fatalf("only shiftable commands ran, yet eager %v, %v", tw.lazy.ttl.eager, err)
	}
}

// A command whose TTL lazyTTL cannot shift, met while its TTLs lag, is an
// error (the simulation fails, never quietly wrong), and it walks at every
// step from then on; a RENAME makes every deadline a walk. Both stay the
// same as FastForward at every step.
func TestLazyTTLFallsBackLoudly(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tw := newTwinRedis(t, start)
	tw.do(t, "SET", "a", "1", "PX", 10_000)
	tw.advance(time.Second)
	tw.do(t, "RENAME", "a", "b")
	tw.do(t, "SET", "c", "1", "PX", 2_000)
	tw.advance(5 * time.Second)
	tw.same(t) // c expired, by a walk: b keeps the right deadline
	tw.advance(5 * time.Second)
	tw.same(t) // b expired at a's deadline
	if tw.lazy.ttl.failed() != nil || tw.lazy.ttl.eager {
		t.Fatal("RENAME alone must not turn walking at every step on")
	}
	tw.do(t, "SET", "d", "1", "PX", 3_000)
	tw.advance(time.Second)
	tw.cl.Do(context.Background(), "PTTL", "d") // 1 s late: 3000 instead of 2000
	if err := tw.lazy.ttl.failed(); err == nil || !strings.Contains(err.Error(), "PTTL") {
		t.Fatalf("PTTL while the TTLs lag: got %v, want an error naming it", err)
	}
	if !tw.lazy.ttl.eager {
		t.Fatal("after PTTL, lazyTTL must walk at every step")
	}
	tw.advance(time.Second)
	tw.do(t, "PTTL", "d") // exact again
	tw.same(t)
}

// A key goes at its deadline exactly, as FastForward deletes a TTL run
// down to zero, set before the last walk or after it.
func TestLazyTTLExpiresAtTheDeadline(t *testing.T) {
	tw := newTwinRedis(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	tw.do(t, "SET", "x", "1", "PX", 1000)
	tw.advance(400 * time.Millisecond)
	tw.do(t, "SET", "y", "1", "PX", 600)
	tw.do(t, "SET", "z", "1", "PX", 601)
	tw.advance(600 * time.Millisecond)
	tw.same(t)
	if keys := tw.lazy.mr.Keys(); len(keys) != 1 || keys[0] != "z" {
		t.Fatalf("at the deadline of x and y: keys %v, want [z]", keys)
	}
}
