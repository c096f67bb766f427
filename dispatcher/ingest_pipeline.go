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
// next stage decides on.
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
// case state, retrying with backoff until it succeeds.
func (in *Ingest) applyLoop(ctx context.Context, in_ <-chan decoded, out chan<- applied) {
	for d := range in_ {
		a := applied{batch: d.batch, start: time.Now()}
		if !in.retry(ctx, failApply, func() error {
			items, err := in.applyBatch(ctx, d)
			if err != nil {
				return fmt.Errorf("process batch of %d: %w", len(d.batch), err)
			}
			a.items = items
			return nil
		}) {
			return
		}
		if !send(ctx, out, a) {
			return
		}
	}
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
