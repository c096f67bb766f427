package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/event"
)

// chanFetch is a reader's FetchMessage over a channel.
func chanFetch(ch <-chan kafka.Message) func(context.Context) (kafka.Message, error) {
	return func(ctx context.Context) (kafka.Message, error) {
		select {
		case m := <-ch:
			return m, nil
		case <-ctx.Done():
			return kafka.Message{}, ctx.Err()
		}
	}
}

// Not under load, a batch takes what is already there and does not wait
// out its limit; under load it waits (within the limit) for more.
func TestFillBatchLingersOnlyUnderLoad(t *testing.T) {
	ch := make(chan kafka.Message, 10)
	for i := range 3 {
		ch <- kafka.Message{Offset: int64(i + 1)}
	}
	done := make(chan []kafka.Message, 1)
	go func() {
		done <- fillBatch(context.Background(), chanFetch(ch), []kafka.Message{{Offset: 0}}, 500, time.Hour, false)
	}()
	select {
	case b := <-done:
		if len(b) != 4 {
			t.Fatalf("batch of %d, want the 4 ready messages", len(b))
		}
	case <-time.After(waitLimit):
		t.Fatal("a batch not under load waited for its limit (an hour)")
	}

	late := func(busy bool) int {
		ch := make(chan kafka.Message, 1)
		go func() { time.Sleep(50 * time.Millisecond); ch <- kafka.Message{Offset: 9} }()
		return len(fillBatch(context.Background(), chanFetch(ch), []kafka.Message{{}}, 500, time.Second, busy))
	}
	if n := late(true); n != 2 {
		t.Fatalf("under load, a message 50 ms later was not waited for (batch of %d)", n)
	}
	if n := late(false); n != 1 {
		t.Fatalf("not under load, the batch waited 50 ms for a second message (batch of %d)", n)
	}
	ch = make(chan kafka.Message, 10)
	for range 10 {
		ch <- kafka.Message{}
	}
	if n := len(fillBatch(context.Background(), chanFetch(ch), []kafka.Message{{}}, 5, time.Hour, true)); n != 5 {
		t.Fatalf("batch of %d, want the maximum 5", n)
	}
}

// A lone event is handled at once even with a batch wait of an hour.
func TestIngestDoesNotHoldALoneEvent(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	p := startPipelineWith(t, newFakeNow(t0).Now, time.Hour)
	op := ev("lone-1", event.CaseOpened, "C-LONE", 1, event.Alto)
	op.OccurredAt = t0
	p.publish(t, op)
	p.waitProcessed(t)
	if _, ok, err := p.store.Case(context.Background(), "C-LONE"); err != nil || !ok {
		t.Fatalf("case not applied: %v %v", ok, err)
	}
}
