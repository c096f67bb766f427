package dispatcher

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"
)

// consume moves intents from Kafka into the job queue until ctx ends. An
// offset is committed only once its jobs are durable in Redis; from then
// on the queue, not Kafka, is what makes sure each job is finished.
// Broker or Redis failures are retried with bounded backoff for as long
// as ctx lives, with the stage reported not ready meanwhile. When the
// probe had to create missing topics (a broker back empty), the reader
// joins its group again so that it is assigned their partitions.
func (d *Deliverer) consume(ctx context.Context) {
	rejoin := make(chan struct{}, 1)
	pctx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	defer func() { stopProbe(); <-probeDone }()
	go func() { defer close(probeDone); d.probe(pctx, rejoin) }()
	d.stall = &stallWatch{after: d.cfg.StallAfter}
	defer d.stall.start(ctx, rejoin, func(lag int64, waited time.Duration) {
		d.metrics.stallRejoins.Inc()
		d.log.WithFields(logrus.Fields{"lag": lag, "waiting_seconds": waited.Seconds()}).
			Warn("intents consumer stalled: intents are waiting and none came; rejoining the deliver group")
	})()
	defer startLagWatch(ctx, d.cfg.Security, d.cfg.Brokers, d.cfg.GroupID, []string{d.cfg.IntentsTopic}, d.metrics.lag, lagEvery, d.stall.sawLag)()
	defer d.registerQueueMetrics()()
	for ctx.Err() == nil {
		r := d.cfg.Security.newReader(d.cfg.Brokers, d.cfg.GroupID, []string{d.cfg.IntentsTopic}, d.log)
		rctx, stop := context.WithCancel(ctx)
		go func() {
			select {
			case <-rejoin:
				d.log.Info("rejoining the deliver group")
				stop()
			case <-rctx.Done():
			}
		}()
		more := d.consumeWith(rctx, r)
		stop()
		_ = r.Close()
		if !more {
			return
		}
	}
}

// consumeWith runs one reader until its ctx ends; false when the stage
// must stop (a test hook stopped it).
func (d *Deliverer) consumeWith(ctx context.Context, r Source) bool {
	for attempt := 0; ctx.Err() == nil; {
		batch, err := d.fetch(ctx, r)
		if ctx.Err() != nil {
			return true
		}
		if err != nil {
			d.health.set("kafka", err)
			d.log.WithError(err).Warn("fetching intents failed; retrying")
			pause(ctx, d.cfg.Batch.Delay(attempt))
			attempt++
			continue
		}
		attempt = 0
		d.health.set("kafka", nil)
		if !d.intake(ctx, r, batch) {
			return ctx.Err() != nil
		}
	}
	return true
}

// fetch blocks for one intent, then takes what else is there (up to
// 500) without lingering (see fillBatch).
func (d *Deliverer) fetch(ctx context.Context, r Source) ([]kafka.Message, error) {
	if d.stall != nil {
		d.stall.fetching()
		defer d.stall.fetched()
	}
	m, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	return fillBatch(ctx, r.FetchMessage, []kafka.Message{m}, 500), nil
}

// intake queues a batch's jobs, offers them to the lanes, dead-letters
// what it could not queue and commits its offsets. False when ctx ended
// first (nothing committed).
func (d *Deliverer) intake(ctx context.Context, r Source, batch []kafka.Message) bool {
	jobs, dead := d.jobsOf(batch)
	// The copies of handed-off jobs are queued already (see Handoff).
	jobs, skipped := d.seen.skip(jobs)
	d.metrics.handoffs.copies.Add(float64(skipped))
	// A job its lane has no room for is queued due now, for whoever has
	// room first, rather than leased here and at once given back.
	held, due := d.byRoom(jobs)
	if !d.retryInfra(ctx, "queue", func() error {
		now := d.now()
		return d.queue.holdOrDue(ctx, held, due, now.Add(d.cfg.Lease), now)
	}) {
		return false
	}
	if d.crashAfterQueue != nil && d.crashAfterQueue() {
		return true
	}
	// The jobs are durable: the lanes may start on them before the commit
	// (a round trip to the broker), and a failing commit only means a
	// redelivery, which the queue and the sent-markers absorb.
	d.offer(ctx, held)
	for _, q := range due {
		d.laneOf(q.job.Channel).pending()
	}
	// After the offer: a dead-letter topic that cannot be written holds
	// back the commit, not the alerts of the batch.
	if len(dead) > 0 && !d.retryInfra(ctx, "dead letters", func() error { return d.deadLetters(ctx, dead) }) {
		return false
	}
	d.retryCommit(ctx, r, batch)
	return true
}

// byRoom splits jobs into those their lanes have room for now (critical
// first, as the lanes take them) and the rest.
func (d *Deliverer) byRoom(jobs []queued) (held, due []queued) {
	room := map[*lane]int{}
	for _, crit := range []bool{true, false} {
		for _, q := range jobs {
			if q.job.Intent.Critical != crit {
				continue
			}
			l := d.laneOf(q.job.Channel)
			r, ok := room[l]
			if !ok {
				r = l.free()
			}
			if r > 0 {
				held, room[l] = append(held, q), r-1
			} else {
				due, room[l] = append(due, q), 0
			}
		}
	}
	return held, due
}

// jobsOf decodes a batch into one job per intent and channel. An intent
// that cannot be read or queued is a bug of ours (we wrote it): retrying
// cannot mend it, so it comes back as a dead letter with the reason, to be
// written before the batch is committed.
func (d *Deliverer) jobsOf(batch []kafka.Message) (jobs []queued, dead []kafka.Message) {
	seen := map[string]bool{} // the same intent twice in a batch is one job
	for _, m := range batch {
		in, err := DecodeIntent(m.Value)
		if err != nil {
			dead = append(dead, deadLetter(m, "undeliverable intent: "+err.Error()))
			continue
		}
		for _, ch := range in.Channels {
			q, err := newQueued(retryJob{Intent: in, Channel: ch, Attempt: 1})
			if err != nil {
				dead = append(dead, deadLetter(m, "undeliverable intent: "+err.Error()))
				break
			}
			if !seen[q.raw] {
				seen[q.raw] = true
				jobs = append(jobs, q)
			}
		}
	}
	return jobs, dead
}

// deadLetters writes intents that cannot be delivered to the dead-letter
// topic, counts them and logs each at error: an alert may be lost there
// (DispatcherIntentDeadLettered pages). The log names no case or contact.
func (d *Deliverer) deadLetters(ctx context.Context, dead []kafka.Message) error {
	for len(dead) > 0 {
		m := dead[0]
		m.Topic = d.cfg.DLQTopic
		out, err := writeDeadLetter(ctx, d.writer, m)
		if err != nil {
			return err
		}
		dead = dead[1:]
		d.metrics.deadIntents.Inc()
		d.log.WithFields(logrus.Fields{"reason": headerValue(out, HeaderReason), "source_partition": headerValue(out, HeaderSourcePartition),
			"source_offset": headerValue(out, HeaderSourceOffset), "dlq_topic": d.cfg.DLQTopic}).Error("undeliverable intent dead-lettered")
	}
	return nil
}

// retryInfra runs fn until it succeeds or ctx ends, marking part failing
// meanwhile; the delay between attempts is bounded by d.cfg.Batch.
func (d *Deliverer) retryInfra(ctx context.Context, part string, fn func() error) bool {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			d.health.set(part, nil)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		d.health.set(part, err)
		d.log.WithError(err).WithField("attempt", attempt+1).Warn(part + " failed; retrying")
		if !pause(ctx, d.cfg.Batch.Delay(attempt)) {
			return false
		}
	}
}

// retryCommit tries a few times; a later batch's commit covers this one.
func (d *Deliverer) retryCommit(ctx context.Context, r Source, batch []kafka.Message) {
	for attempt := range 5 {
		err := r.CommitMessages(ctx, batch...)
		if err == nil {
			d.health.set("commit", nil)
			return
		}
		if ctx.Err() != nil {
			return
		}
		d.health.set("commit", err)
		d.log.WithError(err).WithField("attempt", attempt+1).Warn("committing intent offsets failed")
		if !pause(ctx, d.cfg.Batch.Delay(attempt)) {
			return
		}
	}
}

// probe asks a broker every second for the stage's topics: with the
// broker gone FetchMessage just waits (the reader retries inside), so this
// is what shows an outage. Missing topics are created when configured,
// and the reader then rejoins.
func (d *Deliverer) probe(ctx context.Context, rejoin chan<- struct{}) {
	everyTick(ctx, time.Second, func() {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := d.cfg.Security.Check(cctx, d.cfg.Brokers, d.cfg.IntentsTopic, d.cfg.ResultsTopic)
		cancel()
		if ctx.Err() != nil {
			return
		}
		d.health.set("kafka-broker", err)
		if isUnknownTopic(err) && len(d.cfg.CreateTopics) > 0 {
			d.cfg.Security.createForRejoin(ctx, d.cfg.Brokers, d.cfg.CreateTopics, 10*time.Second, d.log, rejoin)
		}
	})
}
