package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/channels"
	"github.com/viogen-alerts/dispatcher/rules"
	"github.com/viogen-alerts/dispatcher/templates"
)

// Directory gives a contact's address on a channel (phone, email, pager
// routing key, webhook URL). Addresses never leave this lookup except to
// the provider.
type Directory interface {
	Address(contactID, channel string) (string, error)
	// SigningSecret is the contact's own webhook key (nil: the default).
	SigningSecret(contactID string) ([]byte, error)
}

// DeliverConfig tunes delivery.
type DeliverConfig struct {
	Brokers      []string
	GroupID      string // default "dispatcher-deliver"
	IntentsTopic string
	ResultsTopic string
	Workers      int           // concurrent sends per batch (default 8)
	MaxAttempts  int           // per channel (default 8)
	MaxAge       time.Duration // give up retrying after this long since the decision (default 1h)
	Retry        Backoff       // delays between attempts (default 2s..5m)
	SendTimeout  time.Duration // per send (default 15s)
	Lease        time.Duration // how long a claimed retry is hidden (default 2m)
	Poll         time.Duration // retry queue poll interval (default 250ms)
	Batch        Backoff       // transient infrastructure failures
}

func (c *DeliverConfig) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.GroupID == "" {
		c.GroupID = "dispatcher-deliver"
	}
	if c.IntentsTopic == "" {
		c.IntentsTopic = TopicIntents
	}
	if c.ResultsTopic == "" {
		c.ResultsTopic = TopicResults
	}
	if c.Workers <= 0 {
		c.Workers = 8
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	def(&c.MaxAge, time.Hour)
	def(&c.SendTimeout, 15*time.Second)
	def(&c.Lease, 2*time.Minute)
	def(&c.Poll, 250*time.Millisecond)
	if c.Retry == (Backoff{}) {
		c.Retry = Backoff{Min: 2 * time.Second, Max: 5 * time.Minute}
	}
	if c.Batch == (Backoff{}) {
		c.Batch = DefaultBackoff
	}
}

// Deliverer is the deliver stage: it consumes intents, sends each planned
// channel once, retries without blocking, falls back, and audits.
type Deliverer struct {
	cfg     DeliverConfig
	rcfg    *rules.Config
	tmpl    *templates.Set
	dir     Directory
	chans   map[string]channels.Channel
	limits  map[string]*Limiter
	state   *deliveryState
	retries *retryQueue
	writer  *kafka.Writer
	log     logrus.FieldLogger
	now     func() time.Time
	// crashBeforeCommit is a test hook: when it returns true the consumer
	// stops after handling a batch without committing it, as a crash would.
	crashBeforeCommit func() bool
}

// DeliverDeps are the Deliverer's collaborators.
type DeliverDeps struct {
	Rules     *rules.Config
	Templates *templates.Set
	Directory Directory
	Channels  map[string]channels.Channel
	Limits    map[string]*Limiter
	Redis     redis.UniversalClient
	Writer    *kafka.Writer
	Log       logrus.FieldLogger
	Now       func() time.Time
	MarkerTTL time.Duration // how long sent-markers live (default 30 days)
}

// NewDeliverer builds the deliver stage.
func NewDeliverer(cfg DeliverConfig, d DeliverDeps) *Deliverer {
	cfg.defaults()
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.MarkerTTL <= 0 {
		d.MarkerTTL = 30 * 24 * time.Hour
	}
	return &Deliverer{
		cfg: cfg, rcfg: d.Rules, tmpl: d.Templates, dir: d.Directory, chans: d.Channels, limits: d.Limits,
		state:   &deliveryState{rdb: d.Redis, ttl: d.MarkerTTL},
		retries: &retryQueue{rdb: d.Redis, key: "deliver:retries"},
		writer:  d.Writer, log: d.Log.WithField("component", "deliver"), now: d.Now,
	}
}

// Run consumes intents and drives the retry queue until ctx ends.
func (d *Deliverer) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- d.runRetries(ctx) }()
	err := d.consume(ctx)
	cancel()
	if rerr := <-errc; err == nil {
		err = rerr
	}
	return err
}

func (d *Deliverer) consume(ctx context.Context) error {
	r := newReader(d.cfg.Brokers, d.cfg.GroupID, []string{d.cfg.IntentsTopic}, d.log)
	defer r.Close()
	for {
		m, err := r.FetchMessage(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("fetch intents: %w", err)
		}
		batch := d.fill(ctx, r, m)
		err = d.cfg.Batch.Retry(ctx, func() error { return d.handleBatch(ctx, batch) }, func(attempt int, err error) {
			d.log.WithError(err).WithField("attempt", attempt+1).Warn("intent batch failed; retrying (nothing committed)")
		})
		if err != nil {
			return ctxNil(ctx, fmt.Errorf("deliver batch of %d: %w", len(batch), err))
		}
		if d.crashBeforeCommit != nil && d.crashBeforeCommit() {
			return nil
		}
		if err := r.CommitMessages(ctx, batch...); err != nil {
			return ctxNil(ctx, fmt.Errorf("commit intents: %w", err))
		}
	}
}

// fill takes what else is already fetched, up to 100 intents.
func (d *Deliverer) fill(ctx context.Context, r *kafka.Reader, first kafka.Message) []kafka.Message {
	batch := []kafka.Message{first}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Millisecond)
	defer cancel()
	for len(batch) < 100 {
		m, err := r.FetchMessage(wctx)
		if err != nil {
			break
		}
		batch = append(batch, m)
	}
	return batch
}

func ctxNil(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// handleBatch sends every channel of every intent, critical ones first,
// with bounded concurrency, then writes the audit records.
func (d *Deliverer) handleBatch(ctx context.Context, batch []kafka.Message) error {
	var jobs []retryJob
	seen := map[string]bool{} // the same intent twice in a batch is sent once
	for _, m := range batch {
		in, err := DecodeIntent(m.Value)
		if err != nil {
			// We wrote it ourselves; a bad one is a bug, logged, not retried forever.
			d.log.WithError(err).WithField("offset", m.Offset).Error("undecodable intent skipped")
			continue
		}
		for _, ch := range in.Channels {
			if key := in.ID + "\x00" + ch; !seen[key] {
				seen[key] = true
				jobs = append(jobs, retryJob{Intent: in, Channel: ch, Attempt: 1})
			}
		}
	}
	sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].Intent.Critical && !jobs[j].Intent.Critical })
	results, err := d.runJobs(ctx, jobs)
	if err != nil {
		return err
	}
	return d.publish(ctx, results)
}

// runJobs runs jobs on up to Workers goroutines; any infrastructure error
// fails the lot (they are idempotent and will run again).
func (d *Deliverer) runJobs(ctx context.Context, jobs []retryJob) ([]Result, error) {
	var (
		mu      sync.Mutex
		results []Result
		errs    []error
		wg      sync.WaitGroup
		sem     = make(chan struct{}, d.cfg.Workers)
	)
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			rs, err := d.deliver(ctx, j)
			mu.Lock()
			defer mu.Unlock()
			results = append(results, rs...)
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return results, errors.Join(errs...)
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
