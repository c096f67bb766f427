package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// Tests written to kill mutants of decide.go that survived `make mutate`
// (docs/testing.md): Handle's check of the ladder step's error, negated,
// both swallowed a ladder failure and dropped the rest of the batch after
// a ladder event that succeeded.

func mutLadderDecider(t *testing.T, escRedis *redis.Client) (*Decider, *Store, []string) {
	t.Helper()
	_, brokers := testenv.StartKafka(t, 1, TopicIntents, TopicResults)
	rdb := testenv.StartRedis(t).Client(t)
	if escRedis == nil {
		escRedis = rdb
	}
	w := NewWriter(brokers, quietLog())
	t.Cleanup(func() { _ = w.Close() })
	eng := exampleEngine(t)
	l := &Ladder{Rules: eng.Config(), Store: NewEscalationStore(escRedis, time.Hour), Writer: w,
		Intents: TopicIntents, Results: TopicResults, Log: quietLog()}
	d := &Decider{Engine: eng, Suppress: NewSuppressor(rdb), Writer: w, Topic: TopicIntents,
		Log: quietLog(), Now: time.Now, Ladder: l}
	return d, NewStore(rdb, time.Hour), brokers
}

func mutAckEvent(id, caseID string, version int64) event.Event {
	e := ev(id, event.EscalationAcknowledged, caseID, version, event.LevelNone)
	e.Source = "dispatcher"
	e.Ack = &event.Ack{EscalationID: "esc-unknown", Agency: "gc-ciudad-real", Via: "api"}
	return e
}

func mutHandle(t *testing.T, d *Decider, s *Store, evs ...event.Event) error {
	t.Helper()
	outs, err := s.Apply(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	items := make([]Item, len(evs))
	for i := range evs {
		items[i] = Item{Event: evs[i], Outcome: outs[i]}
	}
	return d.Handle(context.Background(), items)
}

// The items after an acknowledgement in the same batch are decided too.
func TestDecideBatchGoesOnAfterALadderEvent(t *testing.T) {
	d, s, brokers := mutLadderDecider(t, nil)
	err := mutHandle(t, d, s,
		ev("m1", event.CaseOpened, "C-M1", 1, event.Medio),
		mutAckEvent("m2", "C-M1", 2),
		ev("m3", event.RiskAssessed, "C-M1", 3, event.Alto))
	if err != nil {
		t.Fatal(err)
	}
	if n := rulesOf(readIntents(t, brokers))["risk-rises-to-alto"]; n == 0 {
		t.Fatal("the rise after an acknowledgement in the same batch was never decided")
	}
}

// A ladder step that fails fails the batch, so that its offsets are not
// committed.
func TestDecideLadderFailureFailsTheBatch(t *testing.T) {
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = down.Close() })
	d, s, _ := mutLadderDecider(t, down)
	if err := mutHandle(t, d, s, ev("f1", event.CaseOpened, "C-F1", 1, event.Medio), mutAckEvent("f2", "C-F1", 2)); err == nil {
		t.Fatal("Handle = nil with the escalation store down, want an error")
	}
}
