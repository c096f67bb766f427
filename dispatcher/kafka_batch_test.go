package dispatcher

import (
	"context"
	"errors"
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

// A batch takes the messages already there, up to its maximum, and does
// not wait for one that comes later: nothing lingers.
func TestFillBatchTakesWhatIsThereWithoutLingering(t *testing.T) {
	ch := make(chan kafka.Message, 10)
	for i := range 3 {
		ch <- kafka.Message{Offset: int64(i + 1)}
	}
	if b := fillBatch(context.Background(), chanFetch(ch), []kafka.Message{{Offset: 0}}, 500); len(b) != 4 {
		t.Fatalf("batch of %d, want the 4 ready messages", len(b))
	}

	// A message that comes later: the fetch delivers nothing before its
	// deadline. Not a message sent 50 ms later: a loaded machine may not
	// run fillBatch within 50 ms, and it would then take that message.
	var (
		bounded bool
		gap     time.Duration // left before the deadline when fetch was called
	)
	late := func(ctx context.Context) (kafka.Message, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			return kafka.Message{}, errors.New("no deadline: the batch would wait for ever")
		}
		bounded, gap = true, time.Until(dl)
		<-ctx.Done()
		return kafka.Message{}, ctx.Err()
	}
	if n := len(fillBatch(context.Background(), late, []kafka.Message{{}}, 500)); n != 1 || !bounded || gap > min(batchGap, 50*time.Millisecond) {
		t.Fatalf("the batch would wait %v for a second message, want at most batchGap %v and under 50 ms (batch of %d)", gap, batchGap, n)
	}

	ch = make(chan kafka.Message, 10)
	for range 10 {
		ch <- kafka.Message{}
	}
	if n := len(fillBatch(context.Background(), chanFetch(ch), []kafka.Message{{}}, 5)); n != 5 {
		t.Fatalf("batch of %d, want the maximum 5", n)
	}
}

// A lone event is handled at once.
func TestIngestDoesNotHoldALoneEvent(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	p := startPipeline(t, newFakeNow(t0).Now)
	op := ev("lone-1", event.CaseOpened, "C-LONE", 1, event.Alto)
	op.OccurredAt = t0
	p.publish(t, op)
	p.waitProcessed(t)
	if _, ok, err := p.store.Case(context.Background(), "C-LONE"); err != nil || !ok {
		t.Fatalf("case not applied: %v %v", ok, err)
	}
}
