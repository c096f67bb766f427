package dispatcher

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// consume runs the consumer on the current reader as a pipeline of four
// steps, each in its own goroutine and each taking the batches one at a
// time in fetch order:
//
//	fetch + decode → dead letters + case state → next stage → commit
//
// so that the next batch is fetched and decoded, and applied to case
// state, while the current one is decided, and a decided batch is
// committed while the next is decided. What the single loop guaranteed
// still holds: the next stage sees the batches in fetch order, one at a
// time, so a case's events and an acknowledgement after its alert are
// decided in order; and a batch is committed only after the next stage
// accepted it and after every batch fetched before it was committed. A
// batch applied to case state ahead of its turn is only a replay's
// situation: case state is idempotent per event and keeps the outcome the
// next stage decides on. (With a backlog, case state may lead the next
// stage by up to three batches: one waiting for it, one being applied,
// one applied beside it; see applyLoop.)
//
// consume returns true when the reader must be rebuilt (topics were
// created), after everything fetched has been decided and committed, and
// false when ctx ended.
func (in *Ingest) consume(ctx context.Context) bool {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	decodedCh := make(chan decoded, 1)
	appliedCh := make(chan applied, 1)
	decidedCh := make(chan applied, 1)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); defer close(decodedCh); in.fetchLoop(pctx, decodedCh) }()
	go func() { defer wg.Done(); defer close(appliedCh); in.applyLoop(pctx, decodedCh, appliedCh) }()
	go func() { defer wg.Done(); in.commitLoop(pctx, decidedCh) }()

	ok := true
	for a := range appliedCh {
		if ok && !in.retry(pctx, failBatch, func() error {
			if err := in.decideBatch(pctx, a.items); err != nil {
				return fmt.Errorf("process batch of %d: %w", len(a.batch), err)
			}
			return nil
		}) {
			ok = false
		}
		if ok && !send(pctx, decidedCh, a) {
			ok = false
		}
		if !ok {
			cancel() // drain: the steps before stop at their next send
		}
	}
	close(decidedCh)
	wg.Wait()
	return ctx.Err() == nil && in.rejoinNow
}

// applied is a batch past case state.
type applied struct {
	batch []kafka.Message
	items []Item
	start time.Time // when its processing began (BatchSeconds)
}

// fetchLoop fetches and decodes batches until ctx ends or a rejoin is
// asked for (rejoinNow). Fetch failures are retried with backoff.
func (in *Ingest) fetchLoop(ctx context.Context, out chan<- decoded) {
	for attempt := 0; ; {
		batch, err := in.fetch(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			in.failed(ctx, failFetch, attempt, fmt.Errorf("fetch from %s: %w", in.cfg.Topic, err))
			// kafka-go reports a failing group only every few join attempts
			// and a quiet topic gives no successful fetch to clear it: the
			// failure counts until a fetch works or no new one came for a
			// while (the probe covers an outage that goes on).
			in.health.expire(failFetch, time.Duration(float64(in.cfg.Backoff.Max)*1.2)+3*in.cfg.RejoinBackoff+2*in.cfg.ProbeInterval)
			if !pause(ctx, in.cfg.Backoff.Delay(attempt)) {
				return
			}
			attempt++
			continue
		}
		attempt = 0
		in.health.set(failFetch, nil)
		if batch != nil && !send(ctx, out, in.decodeBatch(batch)) {
			return
		}
		if in.rejoinNow {
			return
		}
	}
}

// applyLoop writes each batch's dead letters and applies its events to
// case state, retrying with backoff until it succeeds, and hands the
// batches on in fetch order.
//
// When the next batch is already waiting (the fetch is ahead: a backlog)
// and shares no case with the one about to be applied, and has no dead
// letters, it is applied beside it, on another connection: Redis runs one
// script at a time, and without this it sat idle while this loop read a
// batch's replies and wrote the next one's commands. Only batches with no
// case in common overlap, so each case's events still reach Redis in
// offset order; a batch alone (no backlog) is applied here, at once. A
// batch applied ahead is handed on only after the one before it, and one
// whose attempt failed is retried here, in its turn.
func (in *Ingest) applyLoop(ctx context.Context, in_ <-chan decoded, out chan<- applied) {
	var queue []*applyJob // oldest first; at most two
	defer func() {
		for _, j := range queue {
			j.wait()
		}
	}()
	for {
		if len(queue) == 0 {
			d, ok := <-in_
			if !ok {
				return
			}
			queue = append(queue, &applyJob{d: d})
		}
		if len(queue) == 1 {
			select {
			case d, ok := <-in_:
				if ok {
					queue = append(queue, &applyJob{d: d})
				}
			default:
			}
		}
		if len(queue) == 2 && queue[1].done == nil && canApplyBeside(queue[0].d, queue[1].d) {
			in.applyAhead(ctx, queue[1])
		}
		if !in.finishApply(ctx, queue[0], out) {
			return
		}
		queue = queue[1:]
	}
}

// applyJob is a batch on its way through applyLoop.
type applyJob struct {
	d     decoded
	start time.Time
	done  chan struct{} // nil unless applied ahead; closed when that attempt ended
	items []Item
	err   error
}

func (j *applyJob) wait() {
	if j.done != nil {
		<-j.done
	}
}

// applyAhead makes one attempt at j in a goroutine of its own, which
// applyLoop waits for (finishApply, or its return).
func (in *Ingest) applyAhead(ctx context.Context, j *applyJob) {
	j.start, j.done = time.Now(), make(chan struct{})
	go func() {
		defer close(j.done)
		j.items, j.err = in.applyBatch(ctx, j.d)
	}()
}

// finishApply completes j (applied here, or its attempt ahead awaited and,
// if it failed, retried here with backoff) and hands it on.
func (in *Ingest) finishApply(ctx context.Context, j *applyJob, out chan<- applied) bool {
	if j.done != nil {
		j.wait()
		if j.err == nil {
			in.health.set(failApply, nil)
			return send(ctx, out, applied{batch: j.d.batch, start: j.start, items: j.items})
		}
		if ctx.Err() == nil {
			in.log.WithError(j.err).Warn("ingest: a batch applied ahead failed; retrying it in its turn (nothing committed)")
		}
	} else {
		j.start = time.Now()
	}
	a := applied{batch: j.d.batch, start: j.start}
	if !in.retry(ctx, failApply, func() error {
		items, err := in.applyBatch(ctx, j.d)
		if err != nil {
			return fmt.Errorf("process batch of %d: %w", len(j.d.batch), err)
		}
		a.items = items
		return nil
	}) {
		return false
	}
	return send(ctx, out, a)
}

// canApplyBeside reports whether next may be applied while cur is: next
// writes no dead letters (they keep their order) and has no case of cur.
func canApplyBeside(cur, next decoded) bool {
	if len(next.dead) > 0 || len(next.good) == 0 {
		return false
	}
	cases := make(map[string]struct{}, len(cur.good))
	for _, e := range cur.good {
		cases[e.CaseID] = struct{}{}
	}
	for _, e := range next.good {
		if _, ok := cases[e.CaseID]; ok {
			return false
		}
	}
	return true
}

// commitLoop commits each decided batch, in order, retrying with backoff
// until it succeeds; it returns when ctx ends or in_ is closed.
func (in *Ingest) commitLoop(ctx context.Context, in_ <-chan applied) {
	for a := range in_ {
		if !in.retry(ctx, failCommit, func() error {
			cctx, cancel := context.WithTimeout(ctx, in.cfg.OpTimeout)
			defer cancel()
			if err := in.reader.CommitMessages(cctx, a.batch...); err != nil {
				return fmt.Errorf("commit batch of %d: %w", len(a.batch), err)
			}
			return nil
		}) {
			for range in_ { // ctx ended: nothing more is committed
			}
			return
		}
		in.stats.BatchSeconds.Observe(time.Since(a.start).Seconds())
	}
}

// send hands v on unless ctx ends first.
func send[T any](ctx context.Context, ch chan<- T, v T) bool {
	select {
	case ch <- v:
		return true
	case <-ctx.Done():
		return false
	}
}
