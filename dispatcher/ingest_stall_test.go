package dispatcher

import (
	"context"
	"testing"
	"time"
)

// When to join the group again: waiting longer than StallAfter while a
// lag read well into the wait says records are waiting.
func TestStalledDecision(t *testing.T) {
	const after = time.Minute
	now := time.Now().UnixNano()
	since := now - int64(2*after)
	for _, tc := range []struct {
		name              string
		since, lag, lagAt int64
		want              bool
	}{
		{"waiting 2 min, lag read 1 min into the wait", since, 3, since + int64(after), true},
		{"not waiting (processing, or blocked downstream)", 0, 3, now, false},
		{"waiting, nothing to read", since, 0, now, false},
		{"waiting, lag never read", since, 0, 0, false},
		{"waiting, lag read before the wait began (it may be ours)", since, 3, since - 1, false},
		{"waiting, lag read just after the wait began (our last batch may not be committed yet)", since, 3, since + int64(after/4), false},
		{"waiting 30 s only", now - int64(after/2), 3, now, false},
	} {
		if got := stalled(now, tc.since, tc.lag, tc.lagAt, after); got != tc.want {
			t.Errorf("%s: stalled %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The watchdog asks Run to join again (the rejoin Run also uses when topics
// are created) and counts it, once the decision holds.
func TestIngestWatchStallAsksForARejoin(t *testing.T) {
	stats := NewStats(nil)
	in := NewIngest(IngestConfig{Brokers: []string{"127.0.0.1:1"}, StallAfter: 200 * time.Millisecond}, nil, nil, nil, quietLog(), stats)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); in.watchStall(ctx) }()
	defer func() { cancel(); <-done }()

	in.waitingSince.Store(time.Now().Add(-time.Second).UnixNano())
	in.sawLag(7)
	select {
	case <-in.rejoin:
	case <-time.After(10 * time.Second):
		t.Fatal("no rejoin asked for while stalled")
	}
	// Counted just after the request is taken.
	deadline := time.Now().Add(5 * time.Second)
	for counterValue(t, stats.StallRejoins) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("dispatcher_consumer_stall_rejoins_total did not count the rejoin")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
