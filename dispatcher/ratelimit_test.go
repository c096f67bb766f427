package dispatcher

import (
	"context"
	"testing"
	"time"
)

// Over the rate, callers queue (nobody is dropped), and while a critical
// caller waits no token goes to a non-critical one. Deterministic: the
// refill is too slow to matter, tokens are given by hand, and the test
// waits on the limiter's own state, not on sleeps.
func TestLimiterQueuesAndServesCriticalFirst(t *testing.T) {
	l := NewLimiter(0.001, 1) // one token every 1,000 s: only the burst and our hand refills
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := l.Wait(ctx, false); err != nil { // takes the burst token
		t.Fatal(err)
	}
	critDone := make(chan error, 1)
	go func() { critDone <- l.Wait(ctx, true) }()
	for deadline := time.Now().Add(5 * time.Second); ; {
		l.mu.Lock()
		waiting := l.critWait
		l.mu.Unlock()
		if waiting == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the critical caller never registered as waiting")
		}
		time.Sleep(time.Millisecond)
	}
	l.mu.Lock()
	l.tokens = 1 // a token is free now
	l.mu.Unlock()
	if _, ok := l.take(false); ok {
		t.Fatal("a non-critical caller took the token while a critical one waited")
	}
	if _, ok := l.take(true); !ok {
		t.Fatal("a critical caller was refused a free token")
	}
	cancel()
	if err := <-critDone; err == nil {
		t.Fatal("the waiting critical caller should have seen its context end")
	}
	l.mu.Lock()
	l.tokens = 1
	l.mu.Unlock()
	if _, ok := l.take(false); !ok {
		t.Fatal("with no critical caller left, a non-critical one gets the token")
	}
}

// A waiting caller gives up only when its context ends.
func TestLimiterWaitHonoursContext(t *testing.T) {
	l := NewLimiter(0.1, 1)
	_ = l.Wait(context.Background(), false)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.Wait(ctx, true); err == nil {
		t.Fatal("want the context's error while no token is free")
	}
	var unlimited *Limiter
	if err := unlimited.Wait(context.Background(), false); err != nil {
		t.Fatal("a nil limiter is unlimited")
	}
}
