package dispatcher

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// gatedStage holds its first call until release is closed, and records
// the offsets of every call's items in order.
type gatedStage struct {
	mu      sync.Mutex
	calls   [][]int64
	first   chan struct{} // closed when the first call arrives
	release chan struct{}
}

func (s *gatedStage) Handle(ctx context.Context, items []Item) error {
	offs := make([]int64, len(items))
	for i, it := range items {
		offs[i] = it.Msg.Offset
	}
	s.mu.Lock()
	s.calls = append(s.calls, offs)
	n := len(s.calls)
	s.mu.Unlock()
	if n == 1 {
		close(s.first)
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// TestIngestPipelineCommitsOnlyWhatWasDecidedInOrder, against the real
// broker and redis-server: while the next stage holds the first batch, the
// following batches are fetched and applied to case state (the pipeline),
// yet no offset is committed; released, every event reaches the next stage
// once, in offset order, one batch at a time, and all are committed.
func TestIngestPipelineCommitsOnlyWhatWasDecidedInOrder(t *testing.T) {
	_, brokers := testenv.StartKafka(t, 1, TopicCaseEvents, TopicInternal, TopicDLQ)
	store, _ := newTestStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := NewWriter(brokers, quietLog())
	defer w.Close()
	msgs := normalEvents(t, "PL", 40)
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	stage := &gatedStage{first: make(chan struct{}), release: make(chan struct{})}
	cfg := IngestConfig{Brokers: brokers, GroupID: "pipeline", BatchSize: 5, Backoff: Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}}
	in := NewIngest(cfg, store, stage, NewWriter(brokers, quietLog()), quietLog(), NewStats(nil))
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- in.Run(rctx) }()

	select {
	case <-stage.first:
	case <-ctx.Done():
		t.Fatal("the next stage was never called")
	}
	stage.mu.Lock()
	held := len(stage.calls[0])
	stage.mu.Unlock()
	if held >= len(msgs) {
		t.Fatalf("one batch of %d took every message: the test needs several", held)
	}
	// A case of a later batch reaches case state while the first is held.
	waitFor(t, ctx, func() bool {
		_, ok, err := store.Case(ctx, "C-PL"+twoDigits(held))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	})
	if n := committed(ctx, t, brokers, "pipeline"); n != 0 {
		t.Fatalf("%d offsets committed while the first batch was still being decided", n)
	}
	close(stage.release)
	waitFor(t, ctx, func() bool { return committed(ctx, t, brokers, "pipeline") == int64(len(msgs)) })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stage.mu.Lock()
	defer stage.mu.Unlock()
	next := int64(0)
	for i, offs := range stage.calls {
		for _, o := range offs {
			if o != next {
				t.Fatalf("call %d: offset %d reached the next stage, want %d (calls %v)", i, o, next, stage.calls)
			}
			next++
		}
	}
	if next != int64(len(msgs)) {
		t.Errorf("%d events reached the next stage, want %d", next, len(msgs))
	}
}

func twoDigits(i int) string { return string([]byte{byte('0' + i/10), byte('0' + i%10)}) }
