package dispatcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
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
	Security     KafkaSecurity
	GroupID      string // default "dispatcher-deliver"
	IntentsTopic string
	ResultsTopic string
	// DLQTopic receives intents that cannot be read or queued (default
	// case-events.dlq), with the reason: never dropped unseen.
	DLQTopic string
	// Workers is how many sends run at once per channel (default 128:
	// a worker spends most of its time waiting on a provider or Redis, and
	// concurrent workers share Redis round trips); the e-mail lane has its
	// own, EmailWorkers.
	Workers int
	// EmailWorkers is how many SMTP sessions run at once (default the
	// smaller of 8 and Workers): relays limit the sessions a client may
	// hold open.
	EmailWorkers int
	MaxAttempts  int           // per channel (default 8)
	MaxAge       time.Duration // give up retrying after this long since the decision (default 1h)
	Retry        Backoff       // delays between attempts (default 2s..5m)
	SendTimeout  time.Duration // per send (default 15s)
	// Lease is how long a job or an in-flight send stays someone's without
	// being renewed (default 30s): after a crash, the longest a job waits
	// before another instance takes it over.
	Lease time.Duration
	Poll  time.Duration // queue poll interval (default 250ms)
	// Grace is how long in-flight sends may finish on shutdown (default 20s).
	Grace time.Duration
	// NoticeHorizon is how long a coordinating-center notice is retried on
	// every channel before it is declared undeliverable (default 24h).
	NoticeHorizon time.Duration
	// ReceiptTimeout is how long an accepted SMS may go without a final
	// delivery receipt before it is marked unconfirmed (and, when
	// critical, its fallback channels are sent). 0 leaves it off.
	ReceiptTimeout time.Duration
	// ReceiptSweep, with ReceiptTimeout 0 and status callbacks on, is when
	// after an accepted SMS a check still finishes a status callback that
	// failed half-way (answered 500; Twilio does not retry it), without
	// marking anything unconfirmed: its fallback or notice would otherwise
	// never come. 0: no check at all (no callbacks arrive).
	ReceiptSweep time.Duration
	Batch        Backoff // transient infrastructure failures (delays)
	// CreateTopics, when set, are created if the broker lacks them (a
	// broker back empty after an outage).
	CreateTopics []TopicSpec
	// StallAfter is how long the intents reader may wait for a message
	// while the broker says intents are waiting before the group is joined
	// again (default 60s; see stallWatch).
	StallAfter time.Duration
	// NoHandoff turns the hand-off off (see Handoff): every intent then
	// waits for its Kafka copy (DELIVER_HANDOFF=off).
	NoHandoff bool
}

// Channels with a lane of their own; anything else shares "other".
var laneNames = []string{"sms", "email", "pager", "webhook", "other"}

func (c *DeliverConfig) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.GroupID == "" {
		c.GroupID = "dispatcher-deliver"
	}
	def(&c.StallAfter, time.Minute)
	if c.IntentsTopic == "" {
		c.IntentsTopic = TopicIntents
	}
	if c.ResultsTopic == "" {
		c.ResultsTopic = TopicResults
	}
	if c.DLQTopic == "" {
		c.DLQTopic = TopicDLQ
	}
	if c.Workers <= 0 {
		c.Workers = 128
	}
	if c.EmailWorkers <= 0 {
		c.EmailWorkers = min(8, c.Workers)
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	def(&c.MaxAge, time.Hour)
	def(&c.SendTimeout, 15*time.Second)
	def(&c.Lease, 30*time.Second)
	def(&c.Poll, 250*time.Millisecond)
	def(&c.Grace, 20*time.Second)
	def(&c.NoticeHorizon, 24*time.Hour)
	if c.Retry == (Backoff{}) {
		c.Retry = Backoff{Min: 2 * time.Second, Max: 5 * time.Minute}
	}
	if c.Batch == (Backoff{}) {
		c.Batch = DefaultBackoff
	}
}

// SendsAtOnce is how many sends the lane of a channel runs at once, with
// the defaults applied: an HTTP channel's connection cap must not be lower
// (a send waiting for a connection spends its timeout waiting).
func (c DeliverConfig) SendsAtOnce(channel string) int {
	c.defaults()
	return c.laneWorkers(channel)
}

// laneWorkers is how many sends a lane runs at once.
func (c *DeliverConfig) laneWorkers(lane string) int {
	if lane == "email" {
		return c.EmailWorkers
	}
	return c.Workers
}

// Deliverer is the deliver stage. It moves each intent from Kafka into a
// durable per-channel job queue in Redis (and only then commits the
// offset), sends each planned channel once, retries without blocking,
// falls back, tells the coordinating center when a target is unreachable,
// and audits every attempt.
type Deliverer struct {
	cfg     DeliverConfig
	rcfg    *rules.Config
	tmpl    *templates.Set
	live    *Live
	dir     Directory
	chans   map[string]channels.Channel
	limits  *RateLimiter
	state   *deliveryState
	queue   *jobQueue
	writer  Sink
	log     logrus.FieldLogger
	now     func() time.Time
	metrics *deliverMetrics
	health  failures
	stall   *stallWatch // the intents reader's (see stallWatch)

	owner  string // this process, in claim owners
	seq    atomic.Uint64
	lanes  map[string]*lane
	holds  *holdings
	finish chan finished
	// running is set while the stage consumes: Handoff declines otherwise.
	running atomic.Bool
	seen    *handoffSeen // handed-off jobs whose Kafka copy has not come

	// crashAfterQueue is a test hook: when it returns true, a batch's jobs
	// are queued and then neither offered to the lanes nor committed, as if
	// the process died right there; the reader reads on (the batches after
	// it die the same way while the hook says so).
	crashAfterQueue func() bool
}

// DeliverDeps are the Deliverer's collaborators.
type DeliverDeps struct {
	Rules     *rules.Config
	Templates *templates.Set
	// Live, when set, supplies the configuration and templates in use
	// instead of Rules and Templates (a reload takes effect at the next
	// send). Give the ConfigDirectory the same Live.
	Live      *Live
	Directory Directory
	Channels  map[string]channels.Channel
	// Limits keeps the rate limits per destination (nil: unlimited).
	Limits    *RateLimiter
	Redis     redis.UniversalClient
	Writer    Sink
	Log       logrus.FieldLogger
	Now       func() time.Time
	MarkerTTL time.Duration // how long sent-markers live (default 30 days)
	// MarkerFormat is the layout of the sent-markers written (WriteFormat).
	MarkerFormat WriteFormat
	// Registry takes the delivery metrics (nil: a private registry).
	Registry prometheus.Registerer
}

// config returns the configuration and templates in use, from one
// snapshot.
func (d *Deliverer) config() (*rules.Config, *templates.Set) {
	if d.live != nil {
		s := d.live.Load()
		return s.Config, s.Templates
	}
	return d.rcfg, d.tmpl
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
	var b [6]byte
	_, _ = rand.Read(b[:])
	dl := &Deliverer{
		cfg: cfg, rcfg: d.Rules, tmpl: d.Templates, live: d.Live, dir: d.Directory, chans: d.Channels, limits: d.Limits,
		state:  &deliveryState{rdb: d.Redis, ttl: d.MarkerTTL, format: d.MarkerFormat},
		queue:  &jobQueue{rdb: d.Redis, prefix: "deliver:queue:"},
		writer: d.Writer, log: d.Log.WithField("component", "deliver"), now: d.Now,
		metrics: newDeliverMetrics(d.Registry),
		owner:   hex.EncodeToString(b[:]),
		lanes:   map[string]*lane{},
		holds:   newHoldings(),
		seen:    newHandoffSeen(),
		finish:  make(chan finished, 4*cfg.Workers*len(laneNames)),
	}
	for _, n := range laneNames {
		dl.lanes[n] = newLane(n, 2*cfg.laneWorkers(n))
	}
	return dl
}

func (d *Deliverer) laneOf(channel string) *lane {
	if l, ok := d.lanes[channel]; ok {
		return l
	}
	return d.lanes["other"]
}

// newOwner names one attempt's in-flight claim.
func (d *Deliverer) newOwner() string {
	return fmt.Sprintf("%s:%d", d.owner, d.seq.Add(1))
}

// Ready reports whether delivery can fetch, queue and record.
func (d *Deliverer) Ready() error { return d.health.err() }

// Run consumes intents and works the queue until ctx ends, then drains:
// it stops taking work, gives back jobs not started, lets in-flight sends
// finish for up to Grace, and records their outcomes.
func (d *Deliverer) Run(ctx context.Context) error {
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	finDone := make(chan struct{})
	go func() { defer close(finDone); d.runFinisher(work) }()
	// Workers' begin and mark-sent calls share round trips while they run.
	batch := newPipeBatcher(d.state.rdb)
	d.state.batch.Store(batch)
	var workers, pollers sync.WaitGroup
	for _, l := range d.lanes {
		for range d.cfg.laneWorkers(l.name) {
			workers.Add(1)
			go func() { defer workers.Done(); d.work(work, l) }()
		}
		pollers.Add(1)
		go func() { defer pollers.Done(); d.poll(ctx, l) }()
	}
	renewDone := make(chan struct{})
	go func() { defer close(renewDone); d.renew(work) }()

	d.running.Store(true)
	d.consume(ctx)
	d.running.Store(false)
	pollers.Wait()
	d.drain(work, stopWork, &workers)
	close(d.finish)
	select {
	case <-finDone:
	case <-time.After(5 * time.Second):
		stopWork() // Kafka or Redis down: the unrecorded jobs run again after their lease
		<-finDone
	}
	stopWork()
	_, sends := d.holds.count()
	d.log.WithField("unfinished", sends).Info("shutdown: delivery stopped")
	<-renewDone
	d.state.batch.CompareAndSwap(batch, nil)
	return nil
}

// drain gives back the jobs not started and waits for in-flight ones.
func (d *Deliverer) drain(work context.Context, stopWork context.CancelFunc, workers *sync.WaitGroup) {
	var left []queued
	for _, l := range d.lanes {
		left = append(left, l.close()...)
	}
	_, sends := d.holds.count()
	d.log.WithFields(logrus.Fields{"in_flight": sends, "given_back": len(left), "grace": d.cfg.Grace.String()}).
		Info("shutdown: delivery draining")
	gctx, cancel := context.WithTimeout(work, 5*time.Second)
	d.releaseBegun(gctx, left) // before they are due: a claim found held puts a job off for a lease
	if err := d.queue.giveBackNow(gctx, left, d.now()); err != nil {
		d.log.WithError(err).Warn("shutdown: jobs not given back; their leases run out instead")
	}
	cancel()
	for _, q := range left {
		d.holds.drop(q)
	}
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.cfg.Grace):
		d.log.Warn("shutdown: grace period over; cancelling sends still in flight")
		stopWork()
		<-done
	}
}

// work runs jobs of one lane until it is closed.
func (d *Deliverer) work(ctx context.Context, l *lane) {
	for {
		q, ok := l.take()
		if !ok {
			return
		}
		d.run(ctx, q)
	}
}

// poll claims due jobs of one lane from Redis (retries, overflow, and
// jobs whose holder died) as the lane has room, until ctx ends.
func (d *Deliverer) poll(ctx context.Context, l *lane) {
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	for {
		for d.pollOnce(ctx, l) {
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.wake:
		}
	}
}

// pollOnce claims one round; true when it filled the lane's room (more
// may be due).
func (d *Deliverer) pollOnce(ctx context.Context, l *lane) bool {
	free := l.free()
	if free <= 0 || ctx.Err() != nil {
		return false
	}
	qs, err := d.queue.claim(ctx, l.name, d.now(), free, d.cfg.Lease)
	if errors.Is(err, errCorruptJob) {
		// Parked, and loud: it may be an alert nobody can send. The queue
		// itself works.
		d.metrics.corruptJobs.Inc()
		d.log.WithError(err).WithField("channel", l.name).Error("a delivery queue member is not a job: inspect deliver:queue:" + l.name)
		err = withoutCorrupt(err)
	}
	if err != nil && ctx.Err() == nil {
		d.log.WithError(err).WithField("channel", l.name).Warn("claiming queued deliveries failed")
	}
	if ctx.Err() == nil {
		d.health.set("queue", err)
	}
	if len(qs) == 0 {
		return false
	}
	// A full claim may have left more due; a short one emptied what was
	// due (later retries come on the tick, new overflow pokes again).
	l.due.Store(len(qs) == free)
	d.offer(ctx, qs)
	return len(qs) == free
}

// offer hands jobs to their lanes, critical first; jobs that find no room
// are made due at once in Redis for whoever has room.
func (d *Deliverer) offer(ctx context.Context, qs []queued) {
	sort.SliceStable(qs, func(i, j int) bool { return qs[i].job.Intent.Critical && !qs[j].job.Intent.Critical })
	var back []queued
	for _, q := range qs {
		d.holds.add(q)
		if !d.laneOf(q.job.Channel).offer(q) {
			d.holds.drop(q)
			back = append(back, q)
		}
	}
	if len(back) == 0 {
		return
	}
	d.releaseBegun(ctx, back)
	if err := d.queue.giveBackNow(ctx, back, d.now()); err != nil {
		d.log.WithError(err).Warn("overflow jobs not made due; their leases run out instead")
	}
	for _, q := range back {
		d.laneOf(q.job.Channel).pending()
	}
}

// renew keeps the leases of held jobs and in-flight claims alive.
func (d *Deliverer) renew(ctx context.Context) {
	everyTick(ctx, renewEvery(d.cfg.Lease), func() {
		jobs, claims := d.holds.snapshot()
		// Each renewed on its own: a failure of one must not let the
		// other run out (an expired claim mid-send means a duplicate).
		for _, err := range []error{d.queue.setScore(ctx, jobs, d.now().Add(d.cfg.Lease)), d.state.renewClaims(ctx, claims, d.cfg.Lease)} {
			if err != nil && ctx.Err() == nil {
				d.log.WithError(err).Warn("renewing delivery leases failed")
			}
		}
	})
}
