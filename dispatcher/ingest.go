package dispatcher

import (
	"context"

	"fmt"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/event"
)

// IngestConfig says where case events come from.
type IngestConfig struct {
	Brokers       []string
	GroupID       string
	Topic         string // upstream case events
	InternalTopic string // the dispatcher's own timer and ack events
	DLQTopic      string
	BatchSize     int           // most messages handled per round trip
	BatchWait     time.Duration // how long to wait to fill a batch after its first message
	Backoff       Backoff
	// MaxFutureSkew is how far in the future an upstream event's
	// occurred_at may be (default 5m); later ones are dead-lettered: a
	// skewed producer clock would otherwise push the case's deadlines out.
	MaxFutureSkew time.Duration
	Now           func() time.Time
}

func (c *IngestConfig) defaults() {
	if c.GroupID == "" {
		c.GroupID = "dispatcher"
	}
	if c.Topic == "" {
		c.Topic = TopicCaseEvents
	}
	if c.InternalTopic == "" {
		c.InternalTopic = TopicInternal
	}
	if c.DLQTopic == "" {
		c.DLQTopic = TopicDLQ
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.BatchWait <= 0 {
		c.BatchWait = 5 * time.Millisecond
	}
	if c.Backoff == (Backoff{}) {
		c.Backoff = DefaultBackoff
	}
	if c.MaxFutureSkew <= 0 {
		c.MaxFutureSkew = 5 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Ingest consumes case events: decode, dead-letter the malformed, apply
// to case state, pass to the next stage, and only then commit offsets.
type Ingest struct {
	cfg    IngestConfig
	reader *kafka.Reader
	writer *kafka.Writer // dead letters
	store  *Store
	next   Stage
	log    logrus.FieldLogger
	stats  *Stats
	ready  atomic.Bool
}

// NewIngest builds the consumer. writer sends dead letters (its Topic is
// left empty; each message names its own).
func NewIngest(cfg IngestConfig, store *Store, next Stage, writer *kafka.Writer, log logrus.FieldLogger, stats *Stats) *Ingest {
	cfg.defaults()
	in := &Ingest{cfg: cfg, store: store, next: next, writer: writer, log: log.WithField("component", "ingest"), stats: stats}
	in.reader = newReader(cfg.Brokers, cfg.GroupID, []string{cfg.Topic, cfg.InternalTopic}, in.log)
	in.ready.Store(true)
	return in
}

// Ready is false while a batch is failing and being retried.
func (in *Ingest) Ready() bool { return in.ready.Load() }

// Run consumes until ctx ends (returns nil) or a batch keeps failing past
// the backoff budget (returns the error, offsets uncommitted, so another
// instance or a restart takes over without losing anything).
func (in *Ingest) Run(ctx context.Context) error {
	defer in.reader.Close()
	for {
		batch, err := in.fetch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("fetch from %s: %w", in.cfg.Topic, err)
		}
		if err := in.handle(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// fetch blocks for one message, then takes what else arrives within
// BatchWait, up to BatchSize.
func (in *Ingest) fetch(ctx context.Context) ([]kafka.Message, error) {
	m, err := in.reader.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	batch := []kafka.Message{m}
	wctx, cancel := context.WithTimeout(ctx, in.cfg.BatchWait)
	defer cancel()
	for len(batch) < in.cfg.BatchSize {
		m, err := in.reader.FetchMessage(wctx)
		if err != nil {
			break // the wait ran out (or ctx ended): handle what we have
		}
		batch = append(batch, m)
	}
	return batch, nil
}

func (in *Ingest) handle(ctx context.Context, batch []kafka.Message) error {
	start := time.Now()
	err := in.cfg.Backoff.Retry(ctx, func() error { return in.process(ctx, batch) }, func(attempt int, err error) {
		in.ready.Store(false)
		in.stats.Retries.Inc()
		in.log.WithError(err).WithField("attempt", attempt+1).Warn("batch failed; retrying (nothing committed)")
	})
	if err != nil {
		return fmt.Errorf("process batch of %d: %w", len(batch), err)
	}
	in.ready.Store(true)
	err = in.cfg.Backoff.Retry(ctx, func() error { return in.reader.CommitMessages(ctx, batch...) }, func(attempt int, err error) {
		in.log.WithError(err).WithField("attempt", attempt+1).Warn("offset commit failed; retrying")
	})
	if err != nil {
		return fmt.Errorf("commit batch of %d: %w", len(batch), err)
	}
	in.stats.BatchSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// process is one attempt at a batch; it is idempotent.
func (in *Ingest) process(ctx context.Context, batch []kafka.Message) error {
	var good []event.Event
	var msgs []kafka.Message
	var dead []kafka.Message
	for _, m := range batch {
		ev, err := in.decode(m)
		if err != nil {
			dead = append(dead, deadLetter(m, err.Error()))
			continue
		}
		good, msgs = append(good, ev), append(msgs, m)
	}
	if err := in.deadLetters(ctx, dead); err != nil {
		return err
	}
	outs, err := in.store.Apply(ctx, good)
	if err != nil {
		return err
	}
	items := make([]Item, len(good))
	for i := range good {
		items[i] = Item{Msg: msgs[i], Event: good[i], Outcome: outs[i]}
		in.stats.countEvent(items[i])
	}
	if err := in.next.Handle(ctx, items); err != nil {
		return fmt.Errorf("next stage: %w", err)
	}
	return nil
}

func (in *Ingest) decode(m kafka.Message) (event.Event, error) {
	if m.Topic == in.cfg.InternalTopic {
		return event.DecodeInternal(m.Value)
	}
	ev, err := event.Decode(m.Value)
	switch {
	case err != nil:
		return ev, err
	case string(m.Key) != ev.CaseID:
		// A wrong key puts the case on another partition, breaking per-case
		// order; refuse it so the producer is fixed.
		return ev, &event.Error{Field: "$key", Reason: "message key must equal case_id"}
	case ev.OccurredAt.After(in.cfg.Now().Add(in.cfg.MaxFutureSkew)):
		return ev, &event.Error{Field: "occurred_at", Reason: fmt.Sprintf("is more than %s in the future: check the producer's clock", in.cfg.MaxFutureSkew)}
	}
	return ev, nil
}

func (in *Ingest) deadLetters(ctx context.Context, dead []kafka.Message) error {
	if len(dead) == 0 {
		return nil
	}
	for i := range dead {
		dead[i].Topic = in.cfg.DLQTopic
	}
	if err := in.writer.WriteMessages(ctx, dead...); err != nil {
		return fmt.Errorf("write %d dead letters to %s: %w", len(dead), in.cfg.DLQTopic, err)
	}
	for _, d := range dead {
		in.stats.DeadLetters.Inc()
		in.log.WithFields(logrus.Fields{"reason": headerValue(d, HeaderReason), "source_offset": headerValue(d, HeaderSourceOffset),
			"source_partition": headerValue(d, HeaderSourcePartition)}).Warn("malformed event dead-lettered")
	}
	return nil
}

func headerValue(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
