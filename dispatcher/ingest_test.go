package dispatcher

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// recorder is a Stage that counts, per event id, how often it reached the
// stage and how often as newly applied (not a duplicate). An event may
// reach the stage only as a duplicate: its batch was applied in Redis by a
// consumer that stopped before handing it on, and the next one replays it.
type recorder struct {
	mu      sync.Mutex
	applied map[string]int // newly applied
	reached map[string]int // handed to the stage at all
	seen    int
}

func newRecorder() *recorder { return &recorder{applied: map[string]int{}, reached: map[string]int{}} }

func (r *recorder) Handle(_ context.Context, items []Item) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, it := range items {
		r.seen++
		r.reached[it.Event.ID]++
		if !it.Outcome.Transition.Duplicate {
			r.applied[it.Event.ID]++
		}
	}
	return nil
}

// distinct is how many different events reached the stage.
func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reached)
}

func quietLog() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// scenario builds events for n cases, perCase each, with versions 1..perCase.
func scenario(rng *rand.Rand, n, perCase int) [][]event.Event {
	places := []struct {
		j    event.Jurisdiction
		unit string
	}{{herencia, "gc-ciudad-real"}, {palma, "pn-illes-balears"}}
	cases := make([][]event.Event, n)
	for c := range n {
		id := fmt.Sprintf("C-T%04d", c)
		p := places[c%2]
		for v := 1; v <= perCase; v++ {
			e := ev(fmt.Sprintf("%s-e%02d", id, v), event.RiskAssessed, id, int64(v), event.Level(1+rng.IntN(4)))
			e.Jurisdiction, e.ResponsibleUnit = p.j, p.unit
			switch {
			case v == 1:
				e.Type = event.CaseOpened
			case rng.IntN(10) < 3:
				e.Type, e.Risk = event.CheckinRecorded, nil
				e.Checkin = &event.Checkin{Kind: event.CheckinPatrol, Unit: p.unit}
			case rng.IntN(10) < 1:
				e.Type, e.Risk = event.CaseRelocated, nil
				p = places[rng.IntN(2)]
				e.Relocation = &event.Relocation{To: p.j, ResponsibleUnit: p.unit}
			case rng.IntN(10) < 1:
				e.Type, e.Risk = []event.Type{event.CaseClosed, event.CaseReactivated}[rng.IntN(2)], nil
			case rng.IntN(10) < 2:
				e.Type, e.Risk = event.DeviceAlarm, nil
				e.Alarm = &event.Alarm{Kind: event.AlarmProximity}
			}
			cases[c] = append(cases[c], e)
		}
	}
	return cases
}

// expected computes the final case state from the events alone: each
// field takes the value of the highest-version event that sets it.
func expected(evs []event.Event) event.Case {
	var c event.Case
	var lv, loc, act int64
	for _, e := range evs {
		c.ID = e.CaseID
		if e.Risk != nil && e.Version > lv {
			c.Level, lv = e.Risk.Level, e.Version
		}
		if e.Version > loc {
			c.Jurisdiction, c.ResponsibleUnit, loc = e.Jurisdiction, e.ResponsibleUnit, e.Version
			if e.Relocation != nil {
				c.Jurisdiction, c.ResponsibleUnit = e.Relocation.To, e.Relocation.ResponsibleUnit
			}
		}
		switch e.Type {
		case event.CaseOpened, event.CaseReactivated, event.CaseClosed:
			if e.Version > act {
				c.Active, act = e.Type != event.CaseClosed, e.Version
			}
		case event.CheckinRecorded:
			if e.OccurredAt.After(c.LastCheckinAt) {
				c.LastCheckinAt = e.OccurredAt
			}
		}
		c.Version = max(c.Version, e.Version)
		if e.OccurredAt.After(c.LastEventAt) {
			c.LastEventAt = e.OccurredAt
		}
	}
	return c
}

// deliveryOrder interleaves cases, swaps some neighbours of a case out of
// order, and repeats about 5% of events later as duplicates.
func deliveryOrder(rng *rand.Rand, cases [][]event.Event) []event.Event {
	queues := make([][]event.Event, len(cases))
	for i, evs := range cases {
		q := append([]event.Event(nil), evs...)
		for j := 1; j+1 < len(q); j++ {
			if rng.IntN(5) == 0 {
				q[j], q[j+1] = q[j+1], q[j]
			}
		}
		for _, e := range evs {
			if rng.IntN(20) == 0 {
				q = append(q, e)
			}
		}
		queues[i] = q
	}
	var out []event.Event
	for len(queues) > 0 {
		i := rng.IntN(len(queues))
		out = append(out, queues[i][0])
		if queues[i] = queues[i][1:]; len(queues[i]) == 0 {
			queues = append(queues[:i], queues[i+1:]...)
		}
	}
	return out
}

var malformed = [][]byte{
	[]byte(`{"id":"bad-1"`),
	[]byte(`{"id":"bad-2","type":"case.exploded","case_id":"C-X","occurred_at":"2026-03-01T10:00:00Z","source":"viogen","jurisdiction":{"municipality":"13047","province":"13","region":"CM"},"responsible_unit":"gc-ciudad-real"}`),
	[]byte(`{"id":"bad-3","type":"risk.assessed","case_id":"C-X","occurred_at":"yesterday","source":"viogen","jurisdiction":{"municipality":"13047","province":"13","region":"CM"},"responsible_unit":"gc-ciudad-real","risk":{"level":"alto"}}`),
	[]byte(`{"id":"bad-4","type":"risk.assessed","case_id":"C-X","occurred_at":"2026-03-01T10:00:00Z","source":"viogen","jurisdiction":{"municipality":"13047","province":"13","region":"CM"},"responsible_unit":"gc-ciudad-real","risk":{"level":"altísimo"}}`),
}

func TestIngestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	rng := rand.New(rand.NewPCG(7, 11))
	cases := scenario(rng, 500, 20)
	order := deliveryOrder(rng, cases)

	_, brokers := testenv.StartKafka(t, 4, TopicCaseEvents, TopicInternal, TopicDLQ)
	store, _ := newTestStore(t)
	w := NewWriter(brokers, quietLog())
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	publish(ctx, t, w, order, rng)
	rec := newRecorder()
	cfg := IngestConfig{Brokers: brokers, GroupID: "e2e", BatchSize: 200}
	start := func() (context.CancelFunc, chan error) {
		c, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		in := NewIngest(cfg, store, rec, NewWriter(brokers, quietLog()), quietLog(), NewStats(nil))
		go func() { done <- in.Run(c) }()
		return stop, done
	}

	stopA, doneA := start()
	waitFor(t, ctx, func() bool { return rec.distinct() >= 3000 })
	stopB, doneB := start() // a second instance joins: rebalance
	waitFor(t, ctx, func() bool { return rec.distinct() >= 6000 })
	stopA() // the first one stops mid-way: its partitions move to B
	if err := <-doneA; err != nil {
		t.Fatalf("consumer A: %v", err)
	}
	waitFor(t, ctx, func() bool { return rec.distinct() == 10000 })
	stopB()
	if err := <-doneB; err != nil {
		t.Fatalf("consumer B: %v", err)
	}

	for id, n := range rec.applied {
		if n > 1 {
			t.Errorf("event %s applied as new %d times", id, n)
		}
	}
	checkCasesMatchModel(ctx, t, store, cases)
	t.Logf("delivered %d messages (%d distinct events, %d duplicates, %d malformed); handled %d items",
		len(order)+len(malformed), 10000, len(order)-10000, len(malformed), rec.seen)
	checkDLQ(ctx, t, brokers)
}

func publish(ctx context.Context, t *testing.T, w *kafka.Writer, order []event.Event, rng *rand.Rand) {
	t.Helper()
	msgs := make([]kafka.Message, 0, len(order)+len(malformed))
	for _, e := range order {
		b, err := event.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Topic: TopicCaseEvents, Key: []byte(e.CaseID), Value: b})
	}
	for i, b := range malformed {
		at := rng.IntN(len(msgs))
		m := kafka.Message{Topic: TopicCaseEvents, Key: []byte(fmt.Sprintf("C-X%d", i)), Value: b,
			Headers: []kafka.Header{{Key: "producer", Value: []byte("e2e")}}}
		msgs = append(msgs[:at], append([]kafka.Message{m}, msgs[at:]...)...)
	}
	for len(msgs) > 0 {
		n := min(len(msgs), 1000)
		if err := w.WriteMessages(ctx, msgs[:n]...); err != nil {
			t.Fatalf("publish: %v", err)
		}
		msgs = msgs[n:]
	}
}

func checkDLQ(ctx context.Context, t *testing.T, brokers []string) {
	t.Helper()
	r := newTopicReader(t, brokers, TopicDLQ)
	defer r.Close()
	got := map[string]string{}
	for len(got) < len(malformed) {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read dlq after %d: %v", len(got), err)
		}
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		if h[HeaderSourceTopic] != TopicCaseEvents || h[HeaderSourcePartition] == "" || h[HeaderSourceOffset] == "" || h["producer"] != "e2e" {
			t.Errorf("dlq headers: %v", h)
		}
		got[string(m.Value)] = h[HeaderReason]
	}
	wantField := []string{"$: invalid JSON", "type: unknown event type", "occurred_at: must be", "risk.level: unknown risk level"}
	for i, b := range malformed {
		reason, ok := got[string(b)]
		if !ok {
			t.Errorf("malformed message %d not in DLQ with its original bytes", i)
			continue
		}
		if len(reason) < len(wantField[i]) || reason[:len(wantField[i])] != wantField[i] {
			t.Errorf("dlq reason %d = %q, want prefix %q", i, reason, wantField[i])
		}
	}
}

func waitFor(t *testing.T, ctx context.Context, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting (%s)", progress(cond))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// progress is filled by tests that want their state in a timeout message.
var progress = func(func() bool) string { return "" }

// checkCasesMatchModel compares every case's stored state with the model
// computed from its events alone.
func checkCasesMatchModel(ctx context.Context, t *testing.T, store *Store, cases [][]event.Event) {
	t.Helper()
	for _, evs := range cases {
		want := expected(evs)
		got, ok, err := store.Case(ctx, want.ID)
		if err != nil || !ok {
			t.Fatalf("case %s: %v %v", want.ID, ok, err)
		}
		if !got.LastEventAt.Equal(want.LastEventAt) || !got.LastCheckinAt.Equal(want.LastCheckinAt) {
			t.Errorf("case %s times: got %v/%v want %v/%v", want.ID, got.LastEventAt, got.LastCheckinAt, want.LastEventAt, want.LastCheckinAt)
		}
		got.LastEventAt, got.LastCheckinAt, want.LastEventAt, want.LastCheckinAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if got != want {
			t.Errorf("case %s:\n got %+v\nwant %+v", want.ID, got, want)
		}
	}
}
