package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/rules"
)

// Tests for decide.go mutants that survived `make mutate` (docs/testing.md).

// Only an alert whose first step awaits an acknowledgement opens an
// escalation; a policy without steps or with ack_within 0 opens none.
func TestDecideEscalatesOnlyWhenAnAckIsAwaited(t *testing.T) {
	d := &Decider{Ladder: &Ladder{}}
	step := func(ack time.Duration) rules.PolicyStep { return rules.PolicyStep{AckWithin: rules.Duration(ack)} }
	for _, tc := range []struct {
		steps []rules.PolicyStep
		want  bool
	}{
		{nil, false},
		{[]rules.PolicyStep{step(0)}, false},
		{[]rules.PolicyStep{step(0), step(time.Hour)}, false},
		{[]rules.PolicyStep{step(time.Minute)}, true},
	} {
		a := rules.Alert{Policy: rules.PolicySnapshot{ID: "p", Steps: tc.steps}}
		if got := d.escalates(a); got != tc.want {
			t.Errorf("steps %v: escalates = %v, want %v", tc.steps, got, tc.want)
		}
	}
	if (&Decider{}).escalates(rules.Alert{Policy: rules.PolicySnapshot{Steps: []rules.PolicyStep{step(time.Minute)}}}) {
		t.Error("without a ladder nothing escalates")
	}
}

// Two critical repeats in one batch both merge into the open escalation,
// and both are recorded on it.
func TestCriticalTwoMergesInOneBatchAreRecorded(t *testing.T) {
	e := newMergeEnv(t)
	e.run(t, ev("tm1", event.CaseOpened, "C-TM", 1, event.Extremo))
	e.run(t, alarm("tm2", "C-TM", 2, event.AlarmPanic))
	e.run(t, alarm("tm3", "C-TM", 3, event.AlarmPanic), alarm("tm4", "C-TM", 4, event.AlarmPanic))
	got := e.paged(t, "C-TM")["bracelet-panic"]
	if len(got) != 1 {
		t.Fatalf("panic paged %d alerts, want 1", len(got))
	}
	target, err := e.ladder.Store.Get(context.Background(), "C-TM", got[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(target.Merged) != 2 {
		t.Fatalf("escalation records merged %v, want both repeats of the batch", target.Merged)
	}
}

// Recording a merge that fails fails the batch (so it is not committed
// and runs again), rather than being swallowed.
func TestCriticalMergeFailureFailsTheBatch(t *testing.T) {
	e := newMergeEnv(t)
	e.run(t, ev("mf1", event.CaseOpened, "C-MF", 1, event.Extremo))
	e.run(t, alarm("mf2", "C-MF", 2, event.AlarmPanic))
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = down.Close() })
	e.ladder.Store = NewEscalationStore(down, time.Hour)
	evs := []event.Event{alarm("mf3", "C-MF", 3, event.AlarmPanic)}
	outs, err := e.store.Apply(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.d.Handle(context.Background(), []Item{{Event: evs[0], Outcome: outs[0]}}); err == nil {
		t.Fatal("Handle = nil while the merge could not be recorded, want an error")
	}
}

// A critical decision is remembered for 30 days by default, as long as a
// replay of its batch may come (the dedup window): a shorter memo would
// let a replay decide differently.
func TestCriticalDecisionMemoLastsThirtyDays(t *testing.T) {
	e := newMergeEnv(t)
	e.run(t, ev("mm1", event.CaseOpened, "C-MM", 1, event.Extremo))
	e.run(t, alarm("mm2", "C-MM", 2, event.AlarmPanic))
	got := e.paged(t, "C-MM")["bracelet-panic"]
	if len(got) != 1 {
		t.Fatalf("panic paged %v", got)
	}
	ttl := e.d.Suppress.rdb.TTL(context.Background(), critMemoKey("C-MM", got[0])).Val()
	if ttl < 29*24*time.Hour || ttl > 30*24*time.Hour {
		t.Fatalf("decision memo TTL %v, want 30 days", ttl)
	}
}
