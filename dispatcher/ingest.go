package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/event"
)

// IngestConfig says where case events come from.
type IngestConfig struct {
	Brokers       []string
	Security      KafkaSecurity // TLS and SASL of every connection to Brokers (zero: plaintext)
	GroupID       string
	Topic         string // upstream case events
	InternalTopic string // the dispatcher's own timer and ack events
	DLQTopic      string
	BatchSize     int // most messages handled per round trip
	// Backoff spaces the retries of a failing fetch, batch or commit
	// (Min, Max; default 100ms to 5s). Ingest never gives up while its
	// context lives: For is not used.
	Backoff Backoff
	// MaxFutureSkew is how far in the future an upstream event's
	// occurred_at may be (default 5m); later ones are dead-lettered: a
	// skewed producer clock would otherwise push the case's deadlines out.
	MaxFutureSkew time.Duration
	Now           func() time.Time
	// CreateTopics, when set, are created if missing when Run starts and
	// whenever ingest finds one of its topics missing (a broker that came
	// back empty).
	CreateTopics []TopicSpec
	// ProbeInterval is how often Run checks that the broker answers and
	// its topics exist (default 1s): readiness follows it.
	ProbeInterval time.Duration
	// RejoinBackoff is the consumer group's wait before joining again
	// after a failed join (default 1s).
	RejoinBackoff time.Duration
	// PartitionWatch is how often the group looks for new partitions or
	// topics that came into being (default 2s).
	PartitionWatch time.Duration
	// OpTimeout bounds one offset commit or probe (default 10s).
	OpTimeout time.Duration
	// StallAfter is how long the reader may wait for a message while the
	// broker says records are waiting before the group is joined again
	// (default 60s; see stallWatch).
	StallAfter time.Duration
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
	if c.Backoff.Min <= 0 {
		c.Backoff.Min = DefaultBackoff.Min
	}
	if c.Backoff.Max <= 0 {
		c.Backoff.Max = DefaultBackoff.Max
	}
	if c.MaxFutureSkew <= 0 {
		c.MaxFutureSkew = 5 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = time.Second
	}
	if c.RejoinBackoff <= 0 {
		c.RejoinBackoff = time.Second
	}
	if c.PartitionWatch <= 0 {
		c.PartitionWatch = 2 * time.Second
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 10 * time.Second
	}
	if c.StallAfter <= 0 {
		c.StallAfter = time.Minute
	}
}

// Ingest consumes case events: decode, dead-letter the malformed, apply
// to case state, pass to the next stage, and only then commit offsets.
type Ingest struct {
	cfg    IngestConfig
	reader Source // built by Run: a process that does not ingest never joins the group
	writer Sink   // dead letters
	store  *Store
	next   Stage
	log    logrus.FieldLogger
	stats  *Stats
	health failures
	// rejoin asks Run to rebuild its reader (topics were created);
	// rejoinNow is Run's own note that it must.
	rejoin    chan struct{}
	rejoinNow bool
	// stall tells when the reader is stuck (see stallWatch).
	stall stallWatch
}

// What Ingest reports failing (Check).
const (
	failKafka  = "kafka"  // the broker does not answer or a topic is missing
	failFetch  = "fetch"  // reading case events fails
	failApply  = "apply"  // dead-lettering or applying to case state fails
	failBatch  = "batch"  // the next stage fails
	failCommit = "commit" // committing offsets fails
)

// NewIngest builds the consumer; its Kafka reader is created by Run.
// writer sends dead letters (its Topic is left empty; each message names
// its own).
func NewIngest(cfg IngestConfig, store *Store, next Stage, writer Sink, log logrus.FieldLogger, stats *Stats) *Ingest {
	cfg.defaults()
	return &Ingest{cfg: cfg, store: store, next: next, writer: writer, log: log.WithField("component", "ingest"), stats: stats,
		rejoin: make(chan struct{}, 1), stall: stallWatch{after: cfg.StallAfter}}
}

// Ready is false while fetching, a batch, committing or the broker probe
// is failing.
func (in *Ingest) Ready() bool { return in.Check() == nil }

// Check is the ingest's readiness check (Options.Checks): nil when
// nothing is failing, else what fails.
func (in *Ingest) Check() error { return in.health.err() }

// Run consumes until ctx ends, then returns nil. Failures to fetch, to
// process a batch or to commit never end it: they are retried with
// backoff (offsets uncommitted, so nothing is lost), reported by Check,
// and logged once per retry.
func (in *Ingest) Run(ctx context.Context) error {
	if len(in.cfg.CreateTopics) > 0 {
		in.ensureTopics(ctx)
	}
	in.openReader()
	defer func() { _ = in.reader.Close() }()
	defer startLagWatch(ctx, in.cfg.Security, in.cfg.Brokers, in.cfg.GroupID, []string{in.cfg.Topic, in.cfg.InternalTopic}, in.stats.consumerLag(), lagEvery, in.stall.sawLag)()

	probeDone := make(chan struct{})
	go func() { defer close(probeDone); in.probe(ctx) }()
	defer func() { <-probeDone }()
	defer in.stall.start(ctx, in.rejoin, func(lag int64, waited time.Duration) {
		in.stats.stallRejoin()
		in.log.WithFields(logrus.Fields{"lag": lag, "waiting_seconds": waited.Seconds()}).
			Warn("consumer stalled: records are waiting and none came; rejoining the consumer group")
	})()

	for in.consume(ctx) {
		// Topics were created, or the reader stalled: join again (a member
		// that joined just before topics came would keep an empty
		// assignment).
		in.log.Info("rejoining the consumer group")
		_ = in.reader.Close()
		in.openReader()
	}
	return nil
}

// openReader builds the consumer-group reader (joining the group) and
// drops rejoin requests made before.
func (in *Ingest) openReader() {
	rc := in.cfg.Security.readerConfig(in.cfg.Brokers, in.cfg.GroupID, []string{in.cfg.Topic, in.cfg.InternalTopic}, in.log)
	rc.WatchPartitionChanges = true // partitions added later get assigned
	rc.PartitionWatchInterval = in.cfg.PartitionWatch
	rc.JoinGroupBackoff = in.cfg.RejoinBackoff
	rc.ErrorLogger = throttledLogger(in.log.WithField("component", "kafka-reader").Warnf, 5*time.Second)
	in.reader = kafka.NewReader(rc)
	in.rejoinNow = false
	select {
	case <-in.rejoin:
	default:
	}
}

// failed records a failure of one kind for readiness, logs it (once per
// backoff step: the caller waits before the next attempt) and, when a
// topic is missing, creates the topics if configured to.
func (in *Ingest) failed(ctx context.Context, what string, attempt int, err error) {
	in.health.set(what, err)
	in.stats.Retries.Inc()
	in.log.WithError(err).WithFields(logrus.Fields{"failing": what, "attempt": attempt + 1}).Warn("ingest failing; retrying with backoff (nothing committed)")
	if isUnknownTopic(err) && len(in.cfg.CreateTopics) > 0 {
		in.ensureTopics(ctx)
	}
}

// ensureTopics creates the configured topics that are missing.
func (in *Ingest) ensureTopics(ctx context.Context) {
	in.cfg.Security.createForRejoin(ctx, in.cfg.Brokers, in.cfg.CreateTopics, in.cfg.OpTimeout, in.log, in.rejoin)
}

// probe checks every ProbeInterval that a broker answers and the ingest's
// topics exist (readiness), creating them if configured to.
func (in *Ingest) probe(ctx context.Context) {
	t := time.NewTicker(in.cfg.ProbeInterval)
	defer t.Stop()
	attempt := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := in.checkBroker(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if attempt > 0 {
				in.log.WithField("failed_probes", attempt).Info("Kafka answers again")
			}
			attempt = 0
			in.health.set(failKafka, nil)
			continue
		}
		// Log at most once per backoff step: probes 1, 2, 4, 8... then one
		// every Backoff.Max.
		every := max(1, int(in.cfg.Backoff.Max/in.cfg.ProbeInterval))
		if attempt < every && attempt&(attempt-1) == 0 || attempt%every == 0 {
			in.log.WithError(err).WithField("attempt", attempt+1).Warn("Kafka probe failing; not ready")
		}
		in.health.set(failKafka, err)
		if isUnknownTopic(err) && len(in.cfg.CreateTopics) > 0 {
			in.ensureTopics(ctx)
		}
		attempt++
	}
}

// checkBroker asks the first broker that answers for the ingest's topics.
func (in *Ingest) checkBroker(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, min(in.cfg.OpTimeout, max(in.cfg.ProbeInterval, time.Second)))
	defer cancel()
	d := in.cfg.Security.Dialer(time.Second)
	var errs []error
	for _, b := range in.cfg.Brokers {
		conn, err := d.DialContext(pctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if dl, ok := pctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		_, err = conn.ReadPartitions(in.cfg.Topic, in.cfg.InternalTopic, in.cfg.DLQTopic)
		_ = conn.Close()
		if err != nil {
			return fmt.Errorf("metadata of %s, %s, %s: %w", in.cfg.Topic, in.cfg.InternalTopic, in.cfg.DLQTopic, err)
		}
		return nil
	}
	return fmt.Errorf("no broker answers: %w", errors.Join(errs...))
}

// fetch blocks for one message, then takes what else is there, up to
// BatchSize, without lingering (see fillBatch).
// A rejoin request interrupts the wait for the first one: fetch then
// returns no batch and no error, with rejoinNow set.
func (in *Ingest) fetch(ctx context.Context) ([]kafka.Message, error) {
	fctx, cancel := context.WithCancel(ctx)
	stop, asked := make(chan struct{}), make(chan bool, 1)
	go func() {
		select {
		case <-in.rejoin:
			cancel()
			asked <- true
		case <-stop:
			asked <- false
		}
	}()
	in.stall.fetching()
	m, err := in.reader.FetchMessage(fctx)
	in.stall.fetched()
	close(stop)
	in.rejoinNow = <-asked
	cancel()
	if err != nil {
		if in.rejoinNow && ctx.Err() == nil {
			return nil, nil
		}
		return nil, err
	}
	return fillBatch(ctx, in.reader.FetchMessage, []kafka.Message{m}, in.cfg.BatchSize), nil
}

// retry calls fn until it succeeds (true) or ctx ends (false), with
// backoff between attempts; failures are reported as what.
func (in *Ingest) retry(ctx context.Context, what string, fn func() error) bool {
	for attempt := 0; ; attempt++ {
		err := fn()
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			in.health.set(what, nil)
			return true
		}
		in.failed(ctx, what, attempt, err)
		if !pause(ctx, in.cfg.Backoff.Delay(attempt)) {
			return false
		}
	}
}

// process is one attempt at a batch; it is idempotent.
func (in *Ingest) process(ctx context.Context, batch []kafka.Message) error {
	d := in.decodeBatch(batch)
	items, err := in.applyBatch(ctx, d)
	if err != nil {
		return err
	}
	return in.decideBatch(ctx, items)
}

// decoded is a fetched batch, decoded: the good events with their
// messages, and the dead letters.
type decoded struct {
	batch []kafka.Message // all of it, in fetch order (what is committed)
	good  []event.Event
	msgs  []kafka.Message // the message of each good event
	dead  []kafka.Message
}

// decodeBatch decodes every message; the malformed become dead letters.
func (in *Ingest) decodeBatch(batch []kafka.Message) decoded {
	d := decoded{batch: batch, good: make([]event.Event, 0, len(batch)), msgs: make([]kafka.Message, 0, len(batch))}
	for _, m := range batch {
		ev, err := in.decode(m)
		if err != nil {
			d.dead = append(d.dead, deadLetter(m, err.Error()))
			continue
		}
		d.good, d.msgs = append(d.good, ev), append(d.msgs, m)
	}
	return d
}

// applyBatch writes the dead letters and applies the good events to case
// state; it is idempotent.
func (in *Ingest) applyBatch(ctx context.Context, d decoded) ([]Item, error) {
	if err := in.deadLetters(ctx, d.dead); err != nil {
		return nil, err
	}
	outs, err := in.store.Apply(ctx, d.good)
	if err != nil {
		return nil, err
	}
	items := make([]Item, len(d.good))
	for i := range d.good {
		items[i] = Item{Msg: d.msgs[i], Event: d.good[i], Outcome: outs[i]}
		in.stats.countEvent(items[i])
	}
	return items, nil
}

// decideBatch hands applied items to the next stage; it is idempotent.
func (in *Ingest) decideBatch(ctx context.Context, items []Item) error {
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

// deadLetters writes the dead letters one by one, so that one that cannot
// be written whole (too large for the writer or the broker) is replaced by
// its bounded copy without holding up the others.
func (in *Ingest) deadLetters(ctx context.Context, dead []kafka.Message) error {
	for _, d := range dead {
		d.Topic = in.cfg.DLQTopic
		out, err := writeDeadLetter(ctx, in.writer, d)
		if err != nil {
			return err
		}
		in.stats.DeadLetters.Inc()
		in.log.WithFields(logrus.Fields{"reason": headerValue(out, HeaderReason), "source_offset": headerValue(out, HeaderSourceOffset),
			"source_partition": headerValue(out, HeaderSourcePartition), "truncated": headerValue(out, HeaderTruncated) == "true",
			"original_size": len(d.Value)}).Warn("malformed event dead-lettered")
	}
	return nil
}

// isTooLarge reports a message refused for its size, by the writer or the
// broker.
func isTooLarge(err error) bool {
	return kafkaErrIs(err, kafka.MessageSizeTooLarge) || kafkaErrIs(err, kafka.RecordListTooLarge)
}

func headerValue(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Process handles one batch as Run does between fetch and commit: decode
// (malformed → dead letters), apply to case state, then the next stage.
// It is the seam the simulator drives with its in-memory topics: the
// caller commits (or, in the simulator, drops) the batch only after a nil
// return. Safe to call again with the same batch.
func (in *Ingest) Process(ctx context.Context, batch []kafka.Message) error {
	return in.process(ctx, batch)
}
