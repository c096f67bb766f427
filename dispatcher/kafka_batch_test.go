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

// heldFetch is a reader's FetchMessage that holds held (a fetch with an
// ended context takes them too) and delivers later, one per fetch, only
// to a fetch that may wait. It records how long each fetch that may wait
// was allowed to.
type heldFetch struct {
	held, later []kafka.Message
	waits       []time.Duration
	unbounded   bool
}

func (f *heldFetch) fetch(ctx context.Context) (kafka.Message, error) {
	if len(f.held) > 0 {
		m := f.held[0]
		f.held = f.held[1:]
		return m, nil
	}
	if ctx.Err() != nil {
		return kafka.Message{}, ctx.Err()
	}
	dl, ok := ctx.Deadline()
	if !ok {
		f.unbounded = true
		return kafka.Message{}, errors.New("no deadline: the batch would wait for ever")
	}
	f.waits = append(f.waits, time.Until(dl))
	if len(f.later) > 0 {
		m := f.later[0]
		f.later = f.later[1:]
		return m, nil
	}
	<-ctx.Done()
	return kafka.Message{}, ctx.Err()
}

func msgs(n int) []kafka.Message {
	out := make([]kafka.Message, n)
	for i := range out {
		out[i].Offset = int64(i + 1)
	}
	return out
}

// A message that comes alone is handled at once: no fetch may wait for a
// second one, not even briefly.
func TestFillBatchDoesNotHoldALoneMessage(t *testing.T) {
	f := &heldFetch{later: msgs(1)}
	if n := len(fillBatch(context.Background(), f.fetch, []kafka.Message{{}}, 500)); n != 1 || len(f.waits) > 0 || f.unbounded {
		t.Fatalf("batch of %d; a lone message waited for another %d times (%v), want at once", n, len(f.waits), f.waits)
	}
}

// A batch takes the messages already there, up to its maximum. When there
// were more than one (the load is up) it goes on taking what comes within
// batchGap of the previous one, and stops at the first gap.
func TestFillBatchTakesWhatIsThereAndGrowsUnderLoad(t *testing.T) {
	f := &heldFetch{held: msgs(3)}
	if b := fillBatch(context.Background(), f.fetch, []kafka.Message{{}}, 500); len(b) != 4 || b[3].Offset != 3 {
		t.Fatalf("batch of %d, want the 4 held messages in order", len(b))
	}
	if f.unbounded || len(f.waits) != 1 || f.waits[0] > min(batchGap, 50*time.Millisecond) {
		t.Fatalf("under load the batch waited %v (unbounded %v), want one wait of at most batchGap %v", f.waits, f.unbounded, batchGap)
	}

	f = &heldFetch{held: msgs(1), later: msgs(2)}
	if n := len(fillBatch(context.Background(), f.fetch, []kafka.Message{{}}, 500)); n != 4 {
		t.Fatalf("batch of %d, want 2 held and the 2 that came within the gap", n)
	}

	f = &heldFetch{held: msgs(10)}
	if n := len(fillBatch(context.Background(), f.fetch, []kafka.Message{{}}, 5)); n != 5 {
		t.Fatalf("batch of %d, want the maximum 5", n)
	}
}

// kafka-go's FetchMessage, given an ended context while it holds a
// message, picks one of the two at random (chanFetch does the same): a
// held message must still be taken, not left for the next batch.
func TestFillBatchTakesAHeldMessageDespiteRandomPicks(t *testing.T) {
	for i := range 20 {
		ch := make(chan kafka.Message, 1)
		ch <- kafka.Message{Offset: 1}
		if n := len(fillBatch(context.Background(), chanFetch(ch), []kafka.Message{{}}, 500)); n != 2 {
			t.Fatalf("round %d: batch of %d, want the held message taken too", i, n)
		}
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
