package dispatcher

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// finished is what one attempt leaves to record: audit records to publish
// and, once they are durable, jobs to remove from the queue.
type finished struct {
	results []Result
	done    []queued
}

// runFinisher publishes audit records and then removes their jobs from
// the queue, batching whatever is ready (no linger). Until both are
// durable the jobs stay queued and leased: a crash here re-runs them, the
// sent-markers turn the re-run into the same audit record again.
func (d *Deliverer) runFinisher(ctx context.Context) {
	for {
		f, ok := <-d.finish
		if !ok {
			return
		}
		batch := []finished{f}
	more:
		for len(batch) < 500 {
			select {
			case f, ok := <-d.finish:
				if !ok {
					break more
				}
				batch = append(batch, f)
			default:
				break more
			}
		}
		d.record(ctx, batch)
	}
}

// record makes one batch durable, retrying until it is or ctx ends (the
// jobs then stay queued, and are re-run after their lease).
func (d *Deliverer) record(ctx context.Context, batch []finished) {
	var results []Result
	var done []queued
	for _, f := range batch {
		results = append(results, f.results...)
		done = append(done, f.done...)
	}
	ok := d.retryInfra(ctx, "audit", func() error { return d.publish(ctx, results) })
	if ok {
		ok = d.retryInfra(ctx, "queue", func() error { return d.queue.done(ctx, done) })
	}
	if !ok {
		d.log.WithField("jobs", len(done)).Warn("shutdown: outcomes not recorded; these jobs will run again")
	}
	for _, q := range done {
		d.holds.drop(q)
	}
}

// complete hands an attempt's outcome to the finisher (blocking while it
// is busy: back-pressure on the lanes, never a drop).
func (d *Deliverer) complete(ctx context.Context, f finished) {
	if len(f.results) == 0 && len(f.done) == 0 {
		return
	}
	select {
	case d.finish <- f:
	case <-ctx.Done():
		// Shutting down past the grace period: the jobs stay queued and
		// run again elsewhere; only the audit of this attempt may repeat.
		for _, q := range f.done {
			d.holds.drop(q)
		}
	}
}

func (d *Deliverer) publish(ctx context.Context, results []Result) error {
	if len(results) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, 0, len(results))
	for _, r := range results {
		m, err := r.message(d.cfg.ResultsTopic)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	if err := d.writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("write %d results: %w", len(msgs), err)
	}
	return nil
}
