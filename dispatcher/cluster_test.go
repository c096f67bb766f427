package dispatcher

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// nodeOf is the index in c.Addrs() of the master holding key.
func nodeOf(t *testing.T, c *testenv.RedisCluster, rdb *redis.ClusterClient, key string) int {
	t.Helper()
	m, err := rdb.MasterForKey(context.Background(), key)
	if err != nil {
		t.Fatalf("master for %s: %v", key, err)
	}
	i := slices.Index(c.Addrs(), m.Options().Addr)
	if i < 0 {
		t.Fatalf("master %s of %s is not one of %v", m.Options().Addr, key, c.Addrs())
	}
	return i
}

// The end-to-end ingest (TestIngestEndToEnd, smaller) on a real Redis
// Cluster of three masters, one of which is restarted mid-run: every case
// ends as the model says and no event is applied as new twice.
func TestIngestEndToEndOnRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const nCases, perCase = 150, 20
	total := nCases * perCase
	cluster := testenv.StartRedisCluster(t)
	rdb := cluster.Client(t)
	rng := rand.New(rand.NewPCG(7, 13))
	cases := scenario(rng, nCases, perCase)
	order := deliveryOrder(rng, cases)

	_, brokers := testenv.StartKafka(t, 4, TopicCaseEvents, TopicInternal, TopicDLQ)
	store := NewStore(rdb, time.Hour)
	w := NewWriter(brokers, quietLog())
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	began := time.Now()
	publish(ctx, t, w, order, rng)
	rec := newRecorder()
	cfg := IngestConfig{Brokers: brokers, GroupID: "e2e-cluster", BatchSize: 100,
		Backoff: Backoff{Min: 20 * time.Millisecond, Max: 300 * time.Millisecond}}
	start := func() (context.CancelFunc, chan error) {
		c, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		in := NewIngest(cfg, store, rec, NewWriter(brokers, quietLog()), quietLog(), NewStats(nil))
		go func() { done <- in.Run(c) }()
		return stop, done
	}
	progress = func(func() bool) string {
		return fmt.Sprintf("%d/%d distinct events reached the stage", rec.distinct(), total)
	}
	defer func() { progress = func(func() bool) string { return "" } }()

	stopA, doneA := start()
	waitFor(t, ctx, func() bool { return rec.distinct() >= total/3 })
	// Restart the master holding the first case's keys while ingest runs.
	victim := nodeOf(t, cluster, rdb, caseKey(cases[0][0].CaseID))
	atRestart := rec.distinct()
	restartStart := time.Now()
	cluster.Restart(t, victim)
	restartTook := time.Since(restartStart)
	afterRestart := rec.distinct()
	stopB, doneB := start() // a second instance joins: rebalance
	waitFor(t, ctx, func() bool { return rec.distinct() >= 2*total/3 })
	stopA()
	if err := <-doneA; err != nil {
		t.Fatalf("consumer A: %v", err)
	}
	waitFor(t, ctx, func() bool { return rec.distinct() == total })
	stopB()
	if err := <-doneB; err != nil {
		t.Fatalf("consumer B: %v", err)
	}

	onlyDup := 0
	for id := range rec.reached {
		switch a := rec.applied[id]; {
		case a > 1:
			t.Errorf("event %s applied as new %d times", id, a)
		case a == 0:
			onlyDup++ // applied by a batch whose reply was lost, then replayed
		}
	}
	checkCasesMatchModel(ctx, t, store, cases)
	// Every event's dedup key survived the restart: applying them all
	// again finds every one a duplicate.
	all := make([]event.Event, 0, total)
	for _, evs := range cases {
		all = append(all, evs...)
	}
	for b := range slices.Chunk(all, 500) {
		outs, err := store.Apply(ctx, b)
		if err != nil {
			t.Fatalf("re-apply: %v", err)
		}
		for i, o := range outs {
			if !o.Transition.Duplicate {
				t.Errorf("event %s applied as new again after the run: its dedup record was lost", b[i].ID)
			}
		}
	}
	t.Logf("%d messages (%d distinct events on %d cases, %d duplicates, %d malformed), %d items handled, %d reached only as replays; "+
		"master %d (%s) restarted after %d events in %v (%d processed meanwhile); run %v",
		len(order)+len(malformed), total, nCases, len(order)-total, len(malformed), rec.seen, onlyDup,
		victim, cluster.Addrs()[victim], atRestart, restartTook.Round(time.Millisecond), afterRestart-atRestart, time.Since(began).Round(time.Millisecond))
	checkDLQ(ctx, t, brokers)
}

// Deadlines, timers and the ladder on a Redis Cluster: a missed check-in
// alerts at deadline plus grace, after the master holding the check-in
// timers was restarted while the timer was pending.
func TestTimersOnRedisCluster(t *testing.T) {
	cluster := testenv.StartRedisCluster(t)
	rdb := cluster.Client(t)
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	clock := newFakeNow(t0)
	p := startPipelineOn(t, rdb, clock.Now)
	every, grace := p.ladder.Rules.Checkin(event.Extremo)
	op := ev("m1", event.CaseOpened, "C-MCL1", 1, event.Extremo)
	op.OccurredAt = t0
	p.publish(t, op)
	p.waitProcessed(t)
	due := t0.Add(every + grace)

	timerKey := keyTimerCheckin.key("C-MCL1")
	victim := nodeOf(t, cluster, rdb, timerKey)
	restartStart := time.Now()
	cluster.Restart(t, victim)
	t.Logf("master %d holding %s restarted in %v", victim, timerKey, time.Since(restartStart).Round(time.Millisecond))
	if s, err := rdb.ZScore(context.Background(), timerKey, "C-MCL1").Result(); err != nil || int64(s) != due.UnixMilli() {
		t.Fatalf("check-in timer after the restart: %v (%v), want due %v", s, err, due.UnixMilli())
	}

	clock.Set(due.Add(-time.Millisecond))
	if n, err := p.timers.FireDue(context.Background(), keyTimerCheckin); err != nil || n != 0 {
		t.Fatalf("fired %d (%v) before deadline+grace", n, err)
	}
	clock.Set(due)
	start := time.Now()
	runTimers(t, p.timers)
	got := p.intents.waitFor(t, "checkin.missed to the responsible unit", func(in Intent) bool {
		return in.CaseRef == "C-MCL1" && in.EventType == event.CheckinMissed && in.AgencyID == "gc-ciudad-real"
	})
	// How late is logged below, not asserted: speed is for the benchmarks
	// (BenchmarkMissedCheckinLatency), and a loaded machine fails a timed
	// assertion (a 3 s stall before a timer round did).
	late := time.Since(start)
	if !got[0].OccurredAt.Equal(due) {
		t.Errorf("the miss reports %v, want %v", got[0].OccurredAt, due)
	}
	// The missed check-in opened an escalation (records, indexes and its
	// timer across slots); the ladder climbs on its timer.
	var e *Escalation
	waitFor(t, context.Background(), func() bool {
		open, _ := p.esc.OpenForCase(context.Background(), "C-MCL1")
		for _, x := range open {
			if x.Alert.EventType == event.CheckinMissed {
				e = x
			}
		}
		return e != nil
	})
	clock.Set(e.DueAt.Add(time.Second))
	p.intents.waitFor(t, "next ladder step of the missed check-in", func(in Intent) bool {
		return in.CaseRef == "C-MCL1" && in.EventType == event.CheckinMissed && (in.Step > e.Step || in.Round > e.Round)
	})
	t.Logf("missed check-in alerted %v after deadline+grace; escalation %s climbed on the cluster", late.Round(time.Millisecond), e.ID)
}

// Three instances firing 3,000 due timers concurrently on a Redis
// Cluster: each fires once.
func TestTimersFireExactlyOnceOnRedisCluster(t *testing.T) {
	_, brokers := testenv.StartKafka(t, 4, TopicInternal)
	fireOnceAcrossInstances(t, testenv.StartRedisCluster(t).Client(t), brokers, 3000)
}
