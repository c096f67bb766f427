package console

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
	"github.com/viogen-alerts/dispatcher/rules"
)

// replica is one more console process on the fixture's configuration and
// the Redis rdb.
func (f *fixture) replica(t *testing.T, rdb redis.UniversalClient) *fixture {
	t.Helper()
	cfg := f.c.Rules()
	r := &fixture{store: dispatcher.NewEscalationStore(rdb, 24*time.Hour), sink: &captureSink{}, now: f.clock()}
	r.c = &Console{Rules: func() *rules.Config { return cfg }, Store: r.store, Redis: rdb, Now: r.clock, LoginLimit: 3, LoginWindow: time.Hour}
	mux := http.NewServeMux()
	r.c.Register(mux)
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

// Failed logins are counted in Redis: with two replicas an attacker gets
// the limit in all, per operator id and per client address, and the keys
// hold neither the id nor the address.
func TestLoginRateLimitSharedByReplicas(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	f := newFixture(t)
	a, b := f.replica(t, rdb), f.replica(t, rdb)
	ca, cb := a.client(t), b.client(t)
	for i, r := range []*fixture{a, b, a} {
		c := map[*fixture]*http.Client{a: ca, b: cb}[r]
		if resp, _ := r.login(t, c, "op-a", "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, resp.StatusCode)
		}
	}
	// The operator id is used up on both replicas, whatever the address.
	for _, r := range []*fixture{a, b} {
		if resp, _ := r.login(t, r.client(t), "op-a", testPassword); resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("op-a after 3 failures over two replicas: %d, want 429", resp.StatusCode)
		}
	}
	// So is the address (every client here is 127.0.0.1), for another id.
	if resp, _ := b.login(t, cb, "op-b", testPassword); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("op-b from the blocked address: %d, want 429", resp.StatusCode)
	}
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "console:login:*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("limit keys %v %v, want 2 (address, operator)", keys, err)
	}
	for _, k := range keys {
		if strings.Contains(k, "op-a") || strings.Contains(k, "127.0.0.1") {
			t.Errorf("key %s names the operator or the address", k)
		}
		if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 0 || ttl > time.Hour {
			t.Errorf("key %s lives %v, want the window (1h)", k, ttl)
		}
	}
}

// While Redis fails, this process's count still limits logins.
func TestLoginRateLimitWithoutRedis(t *testing.T) {
	srv := testenv.StartRedis(t)
	rdb := srv.Client(t)
	l := newLimiter(rdb, 2, time.Hour, quiet())
	ctx := context.Background()
	now := time.Now()
	srv.Stop()
	keys := []string{"addr:192.0.2.1", "op:op-a"}
	if l.blocked(ctx, now, keys...) {
		t.Fatal("blocked before any failure")
	}
	l.fail(ctx, now, keys...)
	l.fail(ctx, now, keys...)
	if !l.blocked(ctx, now, "op:op-a") || !l.blocked(ctx, now, "addr:192.0.2.1", "op:op-b") {
		t.Fatal("Redis down: failures not limited by this process's count")
	}
}

func quiet() logrus.FieldLogger {
	l := logrus.New()
	l.Out = io.Discard
	return l
}
