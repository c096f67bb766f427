package dispatcher

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stallWatch tells when a consumer-group reader is stuck: it has waited
// longer than after for a message while a lag read well into that wait
// says records are waiting for the group. kafka-go's Reader can be left
// with no partition readers after a quick succession of group
// generations: the goroutine ending one generation calls the reader's
// cancel late and stops the next generation's readers (the race detector
// caught it in TestServiceSurvivesKafkaOutage; TestKill9LosesNothing once
// saw 909 events never decided). Joining the group again gives a new
// generation. A group whose other members hold the waiting records is
// joined again too (a rebalance at most every after), which also restarts
// a member stuck the same way.
type stallWatch struct {
	after time.Duration
	// Since when the reader has waited for a first message (Unix ns, 0
	// when not waiting), and the group's lag last read and when (0:
	// never).
	waitingSince, lag, lagAt atomic.Int64
}

func (w *stallWatch) fetching() { w.waitingSince.Store(time.Now().UnixNano()) }
func (w *stallWatch) fetched()  { w.waitingSince.Store(0) }

// sawLag records the group's lag as the lag watch reads it.
func (w *stallWatch) sawLag(total int64) {
	w.lag.Store(total)
	w.lagAt.Store(time.Now().UnixNano())
}

// start runs the watch (run) in a goroutine of its own until ctx ends or
// stop is called; stop waits for it.
func (w *stallWatch) start(ctx context.Context, rejoin chan<- struct{}, onStall func(lag int64, waited time.Duration)) (stop func()) {
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.run(wctx, rejoin, onStall) }()
	return func() { cancel(); <-done }
}

// run asks for a rejoin on rejoin whenever the reader is stalled, until
// ctx ends, and reports each one taken to onStall.
func (w *stallWatch) run(ctx context.Context, rejoin chan<- struct{}, onStall func(lag int64, waited time.Duration)) {
	everyTick(ctx, w.after/4, func() {
		since := w.waitingSince.Load()
		now := time.Now().UnixNano()
		if !stalled(now, since, w.lag.Load(), w.lagAt.Load(), w.after) {
			return
		}
		select {
		case rejoin <- struct{}{}:
			onStall(w.lag.Load(), time.Duration(now-since))
		default: // a rejoin is already asked for
		}
	})
}

// stalled: waiting since `since` (ns, 0 = not waiting) for longer than
// after, with a positive lag read at lagAt, at least after/2 into the wait
// (the batch fetched last has been committed by then, or the lag is
// someone else's).
func stalled(now, since, lag, lagAt int64, after time.Duration) bool {
	return since != 0 && now-since > int64(after) && lag > 0 && lagAt > since+int64(after/2)
}

// newStallRejoins is dispatcher_consumer_stall_rejoins_total, shared by
// the consumers of one process.
func newStallRejoins(reg prometheus.Registerer) *prometheus.CounterVec {
	return registerShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dispatcher_consumer_stall_rejoins_total",
		Help: "Times a consumer waited for a message while records were waiting for its group, and joined the group again, by stage (decide, deliver).",
	}, []string{"stage"}))
}
