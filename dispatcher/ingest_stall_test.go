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

// The watch asks for a rejoin (the one Run and the deliver intake also
// use when topics are created) and reports it, once the decision holds;
// the ingest counts it under its stage.
func TestStallWatchAsksForARejoin(t *testing.T) {
	w := &stallWatch{after: 200 * time.Millisecond}
	rejoin := make(chan struct{}, 1)
	reported := make(chan int64, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(ctx, rejoin, func(lag int64, _ time.Duration) {
			select {
			case reported <- lag:
			default:
			}
		})
	}()
	defer func() { cancel(); <-done }()

	w.waitingSince.Store(time.Now().Add(-time.Second).UnixNano())
	w.sawLag(7)
	select {
	case <-rejoin:
	case <-time.After(10 * time.Second):
		t.Fatal("no rejoin asked for while stalled")
	}
	select {
	case lag := <-reported:
		if lag != 7 {
			t.Fatalf("reported lag %d, want 7", lag)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the rejoin was not reported")
	}

	stats := NewStats(nil)
	stats.stallRejoin()
	if n := counterValue(t, stats.StallRejoins.WithLabelValues("decide")); n != 1 {
		t.Fatalf("dispatcher_consumer_stall_rejoins_total{stage=decide} %v, want 1", n)
	}
}
