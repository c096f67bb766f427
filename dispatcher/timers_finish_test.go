package dispatcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// Finishing a claim removes, in one call, every fired timer
// that still holds its lease, and keeps one whose deadline the case's
// state moved meanwhile (a new score) and one of another lease.
func TestTimerFinishKeepsMovedDeadlines(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	tm := &Timers{Redis: rdb, Log: quietLog()}
	ctx := context.Background()
	key := keyTimerCheckin.shardKey(2)
	lease := time.Now().Add(time.Minute).UnixMilli()
	var cs []claimed
	for i := range 300 {
		m := fmt.Sprint("C-FIN-", i)
		if err := rdb.ZAdd(ctx, key, redis.Z{Score: float64(lease), Member: m}).Err(); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, claimed{member: m})
	}
	moved := float64(lease + 3_600_000)
	if err := rdb.ZAdd(ctx, key, redis.Z{Score: moved, Member: "C-FIN-7"}).Err(); err != nil {
		t.Fatal(err)
	}
	other := lease + 5
	if err := rdb.ZAdd(ctx, key, redis.Z{Score: float64(other), Member: "C-FIN-OTHER"}).Err(); err != nil {
		t.Fatal(err)
	}
	cs = append(cs, claimed{member: "C-FIN-OTHER"}) // claimed under a lease it no longer has

	if err := tm.finish(ctx, key, lease, cs); err != nil {
		t.Fatal(err)
	}
	left, err := rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, z := range left {
		got[z.Member.(string)] = z.Score
	}
	want := map[string]float64{"C-FIN-7": moved, "C-FIN-OTHER": float64(other)}
	if len(got) != len(want) || got["C-FIN-7"] != moved || got["C-FIN-OTHER"] != float64(other) {
		t.Fatalf("left %v, want only the moved deadline and the one with another lease %v", got, want)
	}
}

// captured is a Sink that keeps what was written.
type captured struct {
	mu   sync.Mutex
	msgs []kafka.Message
}

func (c *captured) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, msgs...)
	return nil
}

// An escalation whose record cannot be read does not hold back the
// timeouts claimed with it: the others fire and are finished, it stays
// leased in its set (claimed again when the lease runs out) and is counted
// for the alert rules, and the round does not fail.
func TestEscalationTimeoutsFirePastAnUnreadableRecord(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	now := time.Now()
	store := NewEscalationStore(rdb, time.Hour)
	w := &captured{}
	metrics := NewTimerMetrics(prometheus.NewRegistry())
	tm := &Timers{Redis: rdb, Writer: w, Store: store, Now: func() time.Time { return now }, Parallel: 1, Log: quietLog(), Metrics: metrics}
	refs := saveEscalations(t, store, 80, 3)
	for _, ref := range refs {
		if err := rdb.ZAdd(ctx, keyTimerEscalation.key(ref), redis.Z{Score: ms(now.Add(-time.Minute)), Member: ref}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c, a, _ := ParseEscRef(refs[1])
	rdb.Set(ctx, escKey(c, a), "{not json", time.Hour)

	n, err := tm.FireDue(ctx, keyTimerEscalation)
	if err != nil || n != 2 {
		t.Fatalf("fired %d (%v), want the 2 readable ones", n, err)
	}
	if len(w.msgs) != 2 || bytes.Contains(w.msgs[0].Value, []byte(a)) || bytes.Contains(w.msgs[1].Value, []byte(a)) {
		t.Fatalf("%d timeout events written, want 2 without the unreadable one", len(w.msgs))
	}
	if n := counterValue(t, metrics.Unreadable.WithLabelValues("escalation")); n != 1 {
		t.Fatalf("dispatcher_timers_unreadable_total{timer=escalation} = %v, want 1", n)
	}
	for i, ref := range refs {
		score, err := rdb.ZScore(ctx, keyTimerEscalation.key(ref), ref).Result()
		switch {
		case i == 1 && (err != nil || score <= ms(now)):
			t.Fatalf("the unreadable escalation's timer: score %v (%v), want it kept, leased", score, err)
		case i != 1 && err != redis.Nil:
			t.Fatalf("timer %d still in its set (%v) after it fired", i, err)
		}
	}
}

// When the events of a claim cannot be built at all (here every record of
// the claim answers with an error: a failed round trip looks the same),
// the claim is given back whole with the real due times, as when the
// write to Kafka fails: nothing stays hidden behind its lease.
func TestTimersGiveTheClaimBackWhenItsEventsFail(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	now := time.Now()
	store := NewEscalationStore(rdb, time.Hour)
	tm := &Timers{Redis: rdb, Writer: &captured{}, Store: store, Now: func() time.Time { return now }, Parallel: 1, Log: quietLog()}
	refs := saveEscalations(t, store, 90, 2)
	due := ms(now.Add(-time.Minute))
	for _, ref := range refs {
		c, a, _ := ParseEscRef(ref)
		rdb.Del(ctx, escKey(c, a))
		rdb.HSet(ctx, escKey(c, a), "f", "v") // WRONGTYPE for GET
		if err := rdb.ZAdd(ctx, keyTimerEscalation.key(ref), redis.Z{Score: due, Member: ref}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := tm.FireDue(ctx, keyTimerEscalation); err == nil || n != 0 {
		t.Fatalf("fired %d (%v), want an error and nothing fired", n, err)
	}
	for _, ref := range refs {
		if score, err := rdb.ZScore(ctx, keyTimerEscalation.key(ref), ref).Result(); err != nil || score != due {
			t.Fatalf("%s: score %v (%v), want it given back at its due time %v", ref, score, err, due)
		}
	}
}

// stuckSink is a broker that never answers: a write ends only with its
// context.
type stuckSink struct{}

func (stuckSink) WriteMessages(ctx context.Context, _ ...kafka.Message) error {
	<-ctx.Done()
	return ctx.Err()
}

// A write to Kafka that does not end is given up within the claim's lease
// (half of it), and the claim is given back, before another instance
// could claim the same timers: FireDue returns even though the caller's
// context never ends.
func TestTimersGiveUpAStuckWriteWithinTheLease(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	now := time.Now()
	rdb.HSet(ctx, caseKey("C-STUCK"), "muni", "13047", "prov", "13", "region", "CM", "unit", "gc-ciudad-real")
	due := ms(now.Add(-time.Minute))
	rdb.ZAdd(ctx, keyTimerCheckin.key("C-STUCK"), redis.Z{Score: due, Member: "C-STUCK"})
	tm := &Timers{Redis: rdb, Writer: stuckSink{}, Now: func() time.Time { return now }, Lease: 200 * time.Millisecond, Log: quietLog()}
	type result struct {
		n   int
		err error
	}
	got := make(chan result, 1)
	go func() {
		n, err := tm.FireDue(ctx, keyTimerCheckin)
		got <- result{n, err}
	}()
	select {
	case r := <-got:
		if r.err == nil || !errors.Is(r.err, context.DeadlineExceeded) || r.n != 0 {
			t.Fatalf("fired %d (%v), want the write given up", r.n, r.err)
		}
	case <-time.After(30 * time.Second): // a hang guard, not a timing check
		t.Fatal("FireDue still waits on a write that never ends")
	}
	if score, err := rdb.ZScore(ctx, keyTimerCheckin.key("C-STUCK"), "C-STUCK").Result(); err != nil || score != due {
		t.Fatalf("score %v (%v), want the timer given back at its due time", score, err)
	}
}
