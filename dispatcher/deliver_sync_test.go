package dispatcher

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// handleBatch runs a batch of intents to completion synchronously, as
// the running stage would: queue the jobs, attempt each (up to Workers at
// once), record the outcomes, then work whatever became due meanwhile
// (fallbacks). Retries scheduled later stay queued. An attempt that fails
// on our side leaves its job due and is reported.
func (d *Deliverer) handleBatch(ctx context.Context, batch []kafka.Message) error {
	jobs, _ := d.jobsOf(batch)
	if err := d.queue.hold(ctx, jobs, d.now().Add(d.cfg.Lease)); err != nil {
		return err
	}
	if err := d.attemptAll(ctx, jobs); err != nil {
		return err
	}
	return d.workDue(ctx)
}

// workDue claims and runs due jobs of every lane until none is due.
func (d *Deliverer) workDue(ctx context.Context) error {
	for range 100 {
		var all []queued
		for _, n := range laneNames {
			qs, err := d.queue.claim(ctx, n, d.now(), 100, d.cfg.Lease)
			if err != nil {
				return err
			}
			all = append(all, qs...)
		}
		if len(all) == 0 {
			return nil
		}
		if err := d.attemptAll(ctx, all); err != nil {
			return err
		}
	}
	return errors.New("queue never emptied")
}

func (d *Deliverer) attemptAll(ctx context.Context, jobs []queued) error {
	var (
		mu   sync.Mutex
		errs []error
		fs   []finished
		wg   sync.WaitGroup
		sem  = make(chan struct{}, d.cfg.Workers)
	)
	for _, q := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		d.holds.add(q)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f, err := d.attempt(ctx, q)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				_ = d.queue.setScore(ctx, []queued{q}, d.now())
				errs = append(errs, err)
				return
			}
			fs = append(fs, f)
		}()
	}
	wg.Wait()
	if len(fs) > 0 {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		d.record(rctx, fs)
	}
	return errors.Join(errs...)
}
