package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/event"
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
	checkOffsetOrder(t, stage, len(msgs))
}

func twoDigits(i int) string { return string([]byte{byte('0' + i/10), byte('0' + i%10)}) }

// applyWatch is a go-redis hook that sees every apply.lua pipeline: which
// cases it holds, whether it began while another ran, and any case two
// such pipelines held at once. Each is slowed by delay (a slow Redis), so
// the fetch gets ahead of case state as in a backlog.
type applyWatch struct {
	delay    time.Duration
	mu       sync.Mutex
	inFlight map[int]map[string]bool
	next     int
	overlaps int      // apply pipelines begun while another ran
	shared   []string // cases held by two apply pipelines at once
	// failBeside fails the first batch applied ahead: of the first two
	// apply pipelines found running at once, the one holding the later
	// cases (whichever began first). Its commands run; its caller gets an
	// error, as when the reply is lost.
	failBeside, failed bool
	failID             int
}

// firstCase is the lowest number among the C-AH<nn> cases of a pipeline
// (those of the later batch are all higher), -1 for none.
func firstCase(cases map[string]bool) int {
	low := -1
	for k := range cases {
		var n int
		if _, err := fmt.Sscanf(k, "case:{C-AH%d}", &n); err == nil && (low < 0 || n < low) {
			low = n
		}
	}
	return low
}

func (w *applyWatch) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (w *applyWatch) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (w *applyWatch) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		cases := map[string]bool{}
		for _, c := range cmds {
			a := c.Args()
			if n := c.Name(); (n == "evalsha" || n == "eval") && len(a) > 3 {
				if k, ok := a[3].(string); ok && strings.HasPrefix(k, "case:{") && strings.HasSuffix(k, "}") {
					cases[k] = true
				}
			}
		}
		if len(cases) == 0 {
			return next(ctx, cmds)
		}
		w.mu.Lock()
		id := w.next
		w.next++
		if len(w.inFlight) > 0 {
			w.overlaps++
		}
		for _, other := range w.inFlight {
			for k := range cases {
				if other[k] {
					w.shared = append(w.shared, k)
				}
			}
		}
		for other, oc := range w.inFlight {
			if w.failBeside && !w.failed && firstCase(cases) >= 0 && firstCase(oc) >= 0 {
				w.failed, w.failID = true, id
				if firstCase(oc) > firstCase(cases) {
					w.failID = other
				}
			}
		}
		w.inFlight[id] = cases
		w.mu.Unlock()
		time.Sleep(w.delay)
		err := next(ctx, cmds)
		w.mu.Lock()
		delete(w.inFlight, id)
		fail := w.failed && w.failID == id
		w.mu.Unlock()
		if fail {
			return errors.New("applyWatch: reply lost")
		}
		return err
	}
}

// TestIngestAppliesAheadOnlyBatchesWithNoCaseInCommon, against the real
// broker and redis-server, with every case-state round trip slowed so
// the fetch runs ahead: batches of distinct cases are applied two at a
// time (the next beside the current one), batches that share a case never
// are, and every event still reaches the next stage once, in offset
// order, and is committed. Fails if applyLoop applies a batch beside one
// it shares a case with, or never applies ahead.
// runAppliedAhead runs an ingest over 30 events of distinct cases, then 30
// events over 3 cases, in batches of 5, with watch on its Redis client,
// until every offset is committed; it returns the next stage and the
// number of events.
func runAppliedAhead(t *testing.T, watch *applyWatch, group string) (*gatedStage, int) {
	t.Helper()
	_, brokers := testenv.StartKafka(t, 1, TopicCaseEvents, TopicInternal, TopicDLQ)
	store, rdb := newTestStore(t)
	rdb.AddHook(watch)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := NewWriter(brokers, quietLog())
	defer w.Close()
	msgs := normalEvents(t, "AH", 30) // 30 cases: batches with no case in common
	for i := range 30 {               // 3 cases: every batch shares them with the next
		e := ev(fmt.Sprintf("AS-%02d", i), event.RiskAssessed, fmt.Sprintf("C-AS%d", i%3), int64(i+2), event.Level(1+i%4))
		b, err := event.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Topic: TopicCaseEvents, Key: []byte(e.CaseID), Value: b})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	stage := &gatedStage{first: make(chan struct{}), release: make(chan struct{})}
	close(stage.release)
	cfg := IngestConfig{Brokers: brokers, GroupID: group, BatchSize: 5, Backoff: Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}}
	in := NewIngest(cfg, store, stage, NewWriter(brokers, quietLog()), quietLog(), NewStats(nil))
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- in.Run(rctx) }()
	waitFor(t, ctx, func() bool { return committed(ctx, t, brokers, group) == int64(len(msgs)) })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return stage, len(msgs)
}

// checkOffsetOrder checks that every event reached stage once, in offset
// order.
func checkOffsetOrder(t *testing.T, stage *gatedStage, n int) {
	t.Helper()
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
	if next != int64(n) {
		t.Errorf("%d events reached the next stage, want %d", next, n)
	}
}

func TestIngestAppliesAheadOnlyBatchesWithNoCaseInCommon(t *testing.T) {
	watch := &applyWatch{delay: 30 * time.Millisecond, inFlight: map[int]map[string]bool{}}
	stage, n := runAppliedAhead(t, watch, "ahead")
	checkOffsetOrder(t, stage, n)
	watch.mu.Lock()
	defer watch.mu.Unlock()
	if len(watch.shared) > 0 {
		t.Errorf("cases applied by two batches at once: %v", watch.shared)
	}
	if watch.overlaps == 0 {
		t.Errorf("no batch was applied beside another (%d apply round trips)", watch.next)
	}
	t.Logf("%d apply round trips, %d begun beside another", watch.next, watch.overlaps)
}

// TestIngestRetriesABatchWhoseAttemptAheadFailed: the first batch applied
// ahead fails (its reply is lost after its scripts ran); it is applied
// again in its turn (its events now duplicates, with their outcomes), and every event still reaches the next
// stage once, in offset order, and is committed. Fails if a failed
// attempt ahead is handed on as if it had succeeded.
func TestIngestRetriesABatchWhoseAttemptAheadFailed(t *testing.T) {
	watch := &applyWatch{delay: 30 * time.Millisecond, inFlight: map[int]map[string]bool{}, failBeside: true}
	stage, n := runAppliedAhead(t, watch, "ahead-fail")
	checkOffsetOrder(t, stage, n)
	watch.mu.Lock()
	defer watch.mu.Unlock()
	if !watch.failed {
		t.Fatal("no batch was applied ahead, so none failed: the test did not test")
	}
}

// canApplyBeside lets a batch be applied beside another only with no
// dead letters (their order in the dead-letter topic is kept) and no case
// in common; an empty batch gains nothing from it.
func TestCanApplyBesideNeedsNoDeadLettersAndNoCaseInCommon(t *testing.T) {
	batch := func(dead int, cases ...string) decoded {
		d := decoded{dead: make([]kafka.Message, dead)}
		for i, c := range cases {
			d.good = append(d.good, ev(fmt.Sprintf("cb-%s-%d", c, i), event.RiskAssessed, c, 1, event.Medio))
		}
		return d
	}
	plain, withDead := batch(0, "C-1", "C-2"), batch(2, "C-1", "C-2")
	for _, c := range []struct {
		name      string
		cur, next decoded
		want      bool
	}{
		{"distinct cases", plain, batch(0, "C-3", "C-4"), true},
		{"the current batch has dead letters", withDead, batch(0, "C-3"), true},
		{"a case in common", plain, batch(0, "C-3", "C-2"), false},
		{"dead letters", plain, batch(1, "C-3"), false},
		{"no events", plain, batch(0), false},
	} {
		if got := canApplyBeside(c.cur, c.next); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
