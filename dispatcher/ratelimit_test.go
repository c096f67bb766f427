package dispatcher

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Over the rate, callers queue (nobody is dropped) and a critical caller
// that arrives while others wait is served before them.
func TestLimiterQueuesAndServesCriticalFirst(t *testing.T) {
	l := NewLimiter(20, 1) // one token every 50 ms
	ctx := context.Background()
	if err := l.Wait(ctx, false); err != nil { // takes the burst token
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	for _, name := range []string{"n1", "n2", "n3"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Wait(ctx, false); err != nil {
				t.Error(err)
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
		}()
	}
	time.Sleep(10 * time.Millisecond) // the three normal ones are waiting
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := l.Wait(ctx, true); err != nil {
			t.Error(err)
		}
		mu.Lock()
		order = append(order, "critical")
		mu.Unlock()
	}()
	wg.Wait()
	if len(order) != 4 {
		t.Fatalf("served %d of 4: callers were dropped", len(order))
	}
	if order[0] != "critical" {
		t.Fatalf("order %v: the critical caller must go first", order)
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
