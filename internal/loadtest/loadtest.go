// Package loadtest is the reproducible load command of issue 9 (cmd/loadtest,
// `make load`): it starts a redis-server, a Kafka-protocol broker (kfake,
// in a child process) and the real dispatcher binary with a configuration
// that turns every event into exactly one signed webhook, publishes N
// synthetic events, and counts at a local https receiver what arrives:
// distinct alerts, duplicates, lost ones, and publish-to-POST latency;
// with the CPU time and peak memory of the dispatcher, Redis and the broker.
package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

// Modes.
const (
	ModeBurst       = "burst"       // N device alarms as fast as they can be published
	ModeSteady      = "steady"      // N device alarms paced at Rate/s
	ModeTimers      = "timers"      // N check-in deadlines due at one moment (or over Spread)
	ModeEscalations = "escalations" // N escalations opened and left open
	// ModeDecide runs the decide stage alone (DISPATCHER_STAGES=decide):
	// N device alarms in, N intents on the notifications topic out.
	ModeDecide = "decide"
)

// Config is one run.
type Config struct {
	Mode       string
	Events     int
	Rate       float64 // events/s; 0 = burst (steady needs it)
	Partitions int     // of every topic (default 6, as KAFKA_PARTITIONS)

	// Dispatcher is a built binary; empty: `go build ./cmd/dispatcher`
	// of the module around the working directory.
	Dispatcher string
	// Dir keeps the logs and configuration; empty: a temp dir removed
	// after the run unless Keep.
	Dir  string
	Keep bool

	// TimerLead is how far after the setup starts the deadlines fall
	// (timers mode); 0: 15 s + 0.3 ms per event.
	TimerLead time.Duration
	// TimerSpread spreads the deadlines evenly over this window instead of
	// one instant (timers mode; for lateness at a steady trickle).
	TimerSpread time.Duration
	// TimersOnly (timers mode) runs the dispatcher with
	// DISPATCHER_STAGES=decide and waits for the N timer events on
	// case-events.internal instead of N webhooks: firing alone, so that a
	// million timers finish without a million deliveries.
	TimersOnly bool
	// UUIDIDs gives the events ids of 36 characters shaped as UUIDs, as
	// upstream systems often use, instead of lt-<tag>-<n> (17).
	UUIDIDs bool

	// Idle ends the wait when nothing new arrived for this long (the
	// missing alerts are counted lost). Default 60 s.
	Idle time.Duration
	// Settle is how long the receiver keeps counting duplicates after
	// the last expected alert arrived. Default 3 s.
	Settle time.Duration
	// ExtraEnv is added to the dispatcher's environment (later wins).
	ExtraEnv []string
	// Profile, when set, is where a CPU profile of the dispatcher is
	// written: ProfileSeconds (default 20) from the start of the measured
	// window. The dispatcher is built with -tags loadprofile (a given
	// Dispatcher binary must be).
	Profile        string
	ProfileSeconds int

	Log io.Writer // progress lines; nil: none
}

// Result is what a run measured.
type Result struct {
	Mode   string  `json:"mode"`
	Events int     `json:"events"`
	Rate   float64 `json:"rate,omitempty"`
	// Spread is the timers mode's --timer-spread in seconds (0: one instant).
	Spread    float64   `json:"timer_spread_seconds,omitempty"`
	Date      time.Time `json:"date"`
	Delivered int64     `json:"delivered"` // distinct expected alerts received
	Lost      int64     `json:"lost"`
	Dups      int64     `json:"duplicates"`
	// Unexpected: signed POSTs of alerts the run did not publish;
	// Fallback: POSTs to the fallback agency (none expected); BadSig:
	// requests whose signature did not verify.
	Unexpected int64 `json:"unexpected"`
	Fallback   int64 `json:"fallback"`
	BadSig     int64 `json:"bad_signature"`
	// Connections the receiver accepted (each a TLS handshake) and the
	// HTTP version the dispatcher used.
	Connections int64  `json:"receiver_connections"`
	Proto       string `json:"receiver_protocol"`

	PublishSeconds float64 `json:"publish_seconds"` // writing the events (setup, for timers)
	// Seconds from the first publish (timers: the due moment) to the last
	// expected alert's first POST, and the rate over it.
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"delivered_per_second"`
	Latency     Dist    `json:"latency"`          // publish (timers: due) to first POST
	ProduceAck  Dist    `json:"produce_ack"`      // per write call: broker ack time
	TimerFiring *Timers `json:"timers,omitempty"` // timers mode

	// CPU seconds used during the measured window, per process.
	CPU map[string]float64 `json:"cpu_seconds"`
	// CPUServicePer100k is dispatcher + redis-server + broker CPU scaled
	// to 100,000 events.
	CPUServicePer100k float64          `json:"cpu_service_per_100k"`
	PeakRSS           map[string]int64 `json:"peak_rss_bytes"`

	// RedisCommands is INFO commandstats at the end of the run (the
	// whole run, setup included), most time first.
	RedisCommands []CmdStat `json:"redis_commands,omitempty"`

	Escalations *Escalations `json:"escalations,omitempty"` // escalations mode
	// LoadAvg is the machine's 1-minute load average at the start and
	// the end of the run (2 cores: anything above ~2 is other work too).
	LoadAvg [2]float64 `json:"load_average"`
	Dir     string     `json:"dir,omitempty"`
}

// Timers is the timers mode's firing: when each deadline's event was
// produced to case-events.internal, relative to its due time.
type Timers struct {
	SetupSeconds float64 `json:"setup_seconds"` // publishing and applying the setup events
	Fired        int     `json:"fired"`
	// AllFiredSeconds: from the (last) due time to the last timer event.
	AllFiredSeconds float64 `json:"all_fired_seconds"`
	Lateness        Dist    `json:"lateness"`
	FiredPerSecond  float64 `json:"fired_per_second"`
	LateSetup       int     `json:"late_setup,omitempty"` // deadlines not yet set when due
}

// Escalations is the escalations mode's memory.
type Escalations struct {
	Open                 int64      `json:"open"`
	RedisUsedBefore      int64      `json:"redis_used_memory_before"`
	RedisUsedAfter       int64      `json:"redis_used_memory_after"`
	RedisBytesPerOpen    float64    `json:"redis_bytes_per_open_escalation"`
	DispatcherRSSBefore  int64      `json:"dispatcher_rss_before"`
	DispatcherRSSAfter   int64      `json:"dispatcher_rss_after"`
	DispatcherPeakRSS    int64      `json:"dispatcher_peak_rss"`
	RedisKeys            []keyClass `json:"redis_keys"`
	ExtrapolatedRedis1M  int64      `json:"extrapolated_redis_bytes_1m"`
	DispatcherRSSPerOpen float64    `json:"dispatcher_rss_bytes_per_open"`
}

// Dist summarises durations.
type Dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func dist(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) float64 {
		i := int(p*float64(len(s))+0.5) - 1
		i = min(max(i, 0), len(s)-1)
		return float64(s[i]) / float64(time.Millisecond)
	}
	return Dist{N: len(s), P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: float64(s[len(s)-1]) / float64(time.Millisecond)}
}

func (c *Config) defaults() error {
	switch c.Mode {
	case "":
		c.Mode = ModeBurst
	case ModeBurst, ModeSteady, ModeTimers, ModeEscalations, ModeDecide:
	default:
		return fmt.Errorf("unknown mode %q: want burst, steady, timers, escalations or decide", c.Mode)
	}
	if c.Events <= 0 {
		return errors.New("events must be at least 1")
	}
	if c.Mode == ModeSteady && c.Rate <= 0 {
		return errors.New("steady mode needs a rate (events/s)")
	}
	if c.Partitions <= 0 {
		c.Partitions = 6
	}
	if c.Idle <= 0 {
		c.Idle = 60 * time.Second
	}
	if c.Settle <= 0 {
		c.Settle = 3 * time.Second
	}
	if c.TimerLead <= 0 {
		c.TimerLead = 15*time.Second + time.Duration(c.Events)*300*time.Microsecond
	}
	return nil
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
}

// run holds one run's servers.
type run struct {
	cfg      Config
	dir      string
	redis    *child
	redisURL string
	rc       *redis.Client
	broker   *child
	brokers  string
	disp     *child
	recv     *receiver
	watch    []watched
	prof     *profiler
}

func (r *run) close() {
	if r.disp != nil {
		r.disp.stop(syscall.SIGTERM, 25*time.Second)
	}
	if r.recv != nil {
		r.recv.close()
	}
	if r.rc != nil {
		_ = r.rc.Close()
	}
	r.broker.stop(syscall.SIGTERM, 5*time.Second)
	r.redis.stop(syscall.SIGINT, 5*time.Second)
}

// Run starts the stack, runs the load and stops everything.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "loadtest-")
		if err != nil {
			return nil, err
		}
		dir = d
		if !cfg.Keep {
			defer os.RemoveAll(d)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r.dir = dir
	defer r.close()

	bin := cfg.Dispatcher
	if bin == "" {
		wd, _ := os.Getwd()
		root, err := moduleRoot(wd)
		if err != nil {
			return nil, err
		}
		cfg.logf("building ./cmd/dispatcher in %s", root)
		var tags []string
		if cfg.Profile != "" {
			tags = []string{"-tags", "loadprofile"}
		}
		if bin, err = buildDispatcher(root, dir, tags...); err != nil {
			return nil, err
		}
	}

	tagb := make([]byte, 3)
	_, _ = rand.Read(tagb)
	tag := hex.EncodeToString(tagb)
	var due time.Time // timers mode: set below, before publishing
	setupStart := time.Now()
	dueOf := func(i int) time.Time {
		if cfg.TimerSpread > 0 && cfg.Events > 1 {
			return due.Add(time.Duration(int64(cfg.TimerSpread) * int64(i) / int64(cfg.Events-1)))
		}
		return due
	}
	// The plan of timers needs the due moment: fix it relative to the
	// time servers are up (below); other modes build it now.
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	secretHex := hex.EncodeToString(secret)

	var err error
	if r.redis, r.redisURL, err = startRedis(dir); err != nil {
		return nil, err
	}
	r.rc = redis.NewClient(&redis.Options{Addr: r.redisURL})
	if r.broker, r.brokers, err = startBroker(dir, cfg.Partitions); err != nil {
		return nil, err
	}
	setupStart = time.Now()
	due = setupStart.Add(cfg.TimerLead).Truncate(time.Second)
	p := newPlan(cfg.Mode, tag, cfg.Events, dueOf, cfg.UUIDIDs)
	if r.recv, err = newReceiver(dir, []byte(secretHex), p.ids); err != nil {
		return nil, err
	}
	conf, err := writeConfig(dir, r.recv.url)
	if err != nil {
		return nil, err
	}
	extra := cfg.ExtraEnv
	if cfg.Mode == ModeDecide || (cfg.Mode == ModeTimers && cfg.TimersOnly) {
		extra = append([]string{"DISPATCHER_STAGES=decide"}, extra...)
	}
	if cfg.Profile != "" {
		if r.prof, err = newProfiler(cfg.Profile, cfg.ProfileSeconds); err != nil {
			return nil, err
		}
		extra = append(r.prof.env(), extra...)
	}
	if r.disp, err = startDispatcher(bin, dir, conf, r.brokers, "redis://"+r.redisURL+"/0", r.recv.caFile, secretHex, extra); err != nil {
		return nil, err
	}
	r.watch = []watched{{"dispatcher", r.disp.pid()}, {"redis-server", r.redis.pid()}, {"broker", r.broker.pid()}}
	cfg.logf("stack up in %s: dispatcher pid %d, redis-server pid %d, broker pid %d, receiver %s, logs in %s",
		time.Since(setupStart).Round(time.Millisecond), r.disp.pid(), r.redis.pid(), r.broker.pid(), r.recv.url, dir)

	res := &Result{Mode: cfg.Mode, Events: cfg.Events, Rate: cfg.Rate, Date: time.Now().UTC(), CPU: map[string]float64{}, PeakRSS: map[string]int64{}}
	res.LoadAvg[0] = loadAvg()
	res.Spread = cfg.TimerSpread.Seconds()
	if cfg.Keep || cfg.Dir != "" {
		res.Dir = dir
	}
	switch cfg.Mode {
	case ModeTimers:
		err = r.timers(ctx, p, res, due, dueOf)
	default:
		err = r.flow(ctx, p, res)
	}
	if err != nil {
		return res, err
	}
	if err := r.prof.wait(); err != nil {
		return res, err
	}
	res.LoadAvg[1] = loadAvg()
	if cs, err := CommandStats(ctx, r.rc); err == nil {
		res.RedisCommands = cs
	}
	for _, w := range r.watch {
		if _, peak, err := procMem(w.pid); err == nil {
			res.PeakRSS[w.name] = peak
		}
	}
	res.PeakRSS["loadtest"] = selfPeakRSS()
	return res, nil
}

// measure brackets the measured window: CPU of every process.
func (r *run) measure(res *Result, before map[string]time.Duration) {
	after := cpuSnapshot(r.watch)
	var svc time.Duration
	for k, a := range after {
		d := a - before[k]
		res.CPU[k] = d.Seconds()
		if k != "loadtest" {
			svc += d
		}
	}
	res.CPUServicePer100k = svc.Seconds() * 100_000 / float64(res.Events)
}

// wait polls the receiver until every expected alert came or nothing new
// came for Idle; then it keeps counting duplicates for Settle.
func (r *run) wait(ctx context.Context, n int) (lastAt time.Time, err error) {
	lastN, lastChange := int64(-1), time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	report := time.Now()
	for {
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-tick.C:
		}
		got := r.recv.distinct.Load()
		if got != lastN {
			lastN, lastChange = got, time.Now()
		}
		if time.Since(report) >= 5*time.Second {
			report = time.Now()
			// Intents written = what the decide stage has finished.
			intents, _ := topicEnd(ctx, r.brokers, r.cfg.Partitions, "notifications")
			r.cfg.logf("delivered %d/%d (duplicates %d); intents written %d", got, n, r.recv.dups.Load(), intents)
		}
		if got >= int64(n) || time.Since(lastChange) > r.cfg.Idle {
			break
		}
		if !r.disp.running() {
			return time.Time{}, fmt.Errorf("the dispatcher exited:\n%s", tailFile(filepath.Join(r.dir, "dispatcher.log"), 15))
		}
	}
	return time.Unix(0, r.recv.last.Load()), nil
}

func (r *run) counts(res *Result) {
	res.Delivered = r.recv.distinct.Load()
	res.Lost = int64(res.Events) - res.Delivered
	res.Dups = r.recv.dups.Load()
	res.Unexpected = r.recv.unexpected.Load()
	res.Fallback = r.recv.fallback.Load()
	res.BadSig = r.recv.badSig.Load()
	res.Connections = r.recv.conns.Load()
	res.Proto, _ = r.recv.proto.Load().(string)
}

// flow is burst, steady and escalations: publish, wait for every alert.
func (r *run) flow(ctx context.Context, p plan, res *Result) error {
	cfg := r.cfg
	var memBefore, rssBefore int64
	if cfg.Mode == ModeEscalations {
		var err error
		if memBefore, err = usedMemory(ctx, r.rc); err != nil {
			return err
		}
		rssBefore, _, _ = procMem(r.disp.pid())
	}
	w := newWriter(r.brokers, 500)
	if cfg.Rate > 0 {
		w.BatchSize = 1 // paced: each event leaves at once, no linger
	}
	defer w.Close()
	before := cpuSnapshot(r.watch)
	r.prof.start()
	cfg.logf("publishing %d events (%s, rate %g/s)", cfg.Events, cfg.Mode, cfg.Rate)
	st, err := publish(ctx, w, p, cfg.Rate, r.recv.setRef)
	if err != nil {
		return err
	}
	res.PublishSeconds = st.end.Sub(st.start).Seconds()
	res.ProduceAck = dist(st.produce)
	cfg.logf("published in %.2fs", res.PublishSeconds)
	if cfg.Mode == ModeDecide {
		return r.decided(ctx, p, res, before, st.start)
	}
	last, err := r.wait(ctx, cfg.Events)
	if err != nil {
		return err
	}
	r.measure(res, before)
	time.Sleep(cfg.Settle)
	r.counts(res)
	res.Latency = dist(r.recv.latencies())
	if res.Delivered > 0 {
		res.Seconds = last.Sub(st.start).Seconds()
		res.PerSecond = float64(res.Delivered) / res.Seconds
	}
	if cfg.Mode == ModeEscalations {
		return r.escalations(ctx, res, memBefore, rssBefore)
	}
	return nil
}

// escalations waits until every escalation is open and every delivery
// finished, then measures memory.
func (r *run) escalations(ctx context.Context, res *Result, memBefore, rssBefore int64) error {
	e := &Escalations{RedisUsedBefore: memBefore, DispatcherRSSBefore: rssBefore}
	res.Escalations = e
	deadline := time.Now().Add(r.cfg.Idle)
	for {
		open, err := zcardAll(ctx, r.rc, "esc:open")
		if err != nil {
			return err
		}
		e.Open = open
		if (open >= int64(res.Events) && queuedDeliveries(ctx, r.rc) == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // let audit writes and lease renewals settle
	var err error
	if e.RedisUsedAfter, err = usedMemory(ctx, r.rc); err != nil {
		return err
	}
	e.DispatcherRSSAfter, e.DispatcherPeakRSS, _ = procMem(r.disp.pid())
	if e.Open > 0 {
		e.RedisBytesPerOpen = float64(e.RedisUsedAfter-e.RedisUsedBefore) / float64(e.Open)
		e.ExtrapolatedRedis1M = int64(e.RedisBytesPerOpen * 1_000_000)
		e.DispatcherRSSPerOpen = float64(e.DispatcherRSSAfter-e.DispatcherRSSBefore) / float64(e.Open)
	}
	r.cfg.logf("scanning Redis keys for the breakdown")
	e.RedisKeys, err = keyBreakdown(ctx, r.rc, 200)
	return err
}

// timers publishes the setup (one extremo assessment per case, putting
// its check-in deadline at due), waits until every deadline is in the
// timer sets, then measures from the due moment until every timer fired
// and every checkin.missed alert arrived.
func (r *run) timers(ctx context.Context, p plan, res *Result, due time.Time, dueOf func(int) time.Time) error {
	cfg := r.cfg
	for i := range p.ids {
		r.recv.setRef(i, p.due[i])
	}
	w := newWriter(r.brokers, 500)
	defer w.Close()
	cfg.logf("setup: publishing %d extremo assessments, deadlines due at %s (spread %s)", cfg.Events, due.Format("15:04:05.000"), cfg.TimerSpread)
	st, err := publish(ctx, w, p, 0, nil)
	if err != nil {
		return err
	}
	res.PublishSeconds = st.end.Sub(st.start).Seconds()
	res.ProduceAck = dist(st.produce)
	tm := &Timers{}
	res.TimerFiring = tm
	for {
		n, err := zcardAll(ctx, r.rc, "timers:checkin")
		if err != nil {
			return err
		}
		if n >= int64(cfg.Events) || time.Now().After(due) {
			tm.LateSetup = cfg.Events - int(n)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	tm.SetupSeconds = time.Since(st.start).Seconds()
	if tm.LateSetup > 0 {
		cfg.logf("WARNING: %d deadlines were not set yet when the first fell due: raise --timer-lead", tm.LateSetup)
	} else {
		cfg.logf("setup done in %.2fs; %s until the deadlines", tm.SetupSeconds, time.Until(due).Round(time.Millisecond))
	}
	if d := time.Until(due.Add(-500 * time.Millisecond)); d > 0 {
		time.Sleep(d)
	}
	before := cpuSnapshot(r.watch)
	r.prof.start()
	var last time.Time
	if cfg.TimersOnly {
		if err := r.waitTopic(ctx, "case-events.internal", cfg.Events); err != nil {
			return err
		}
		r.measure(res, before)
	} else {
		if last, err = r.wait(ctx, cfg.Events); err != nil {
			return err
		}
		r.measure(res, before)
		time.Sleep(cfg.Settle)
		r.counts(res)
		res.Latency = dist(r.recv.latencies())
	}
	lastDue := dueOf(cfg.Events - 1)
	if res.Delivered > 0 {
		res.Seconds = last.Sub(due).Seconds()
		res.PerSecond = float64(res.Delivered) / res.Seconds
	}
	fired, err := readFired(ctx, r.brokers, cfg.Partitions)
	if err != nil {
		return err
	}
	tm.Fired = len(fired)
	late := make([]time.Duration, 0, len(fired))
	var lastFired time.Time
	for _, f := range fired {
		late = append(late, f.written.Sub(f.due))
		if f.written.After(lastFired) {
			lastFired = f.written
		}
	}
	tm.Lateness = dist(late)
	if cfg.TimersOnly {
		// No deliveries: a fired timer is the count.
		res.Delivered, res.Lost = int64(len(fired)), int64(cfg.Events-len(fired))
		res.Seconds, res.PerSecond = 0, 0
	}
	if len(fired) > 0 {
		tm.AllFiredSeconds = lastFired.Sub(lastDue).Seconds()
		if s := lastFired.Sub(due).Seconds(); s > 0 {
			tm.FiredPerSecond = float64(len(fired)) / s
		}
	}
	return nil
}

// decided waits until the decide stage has written an intent for every
// event (or nothing new came for Idle), then reads the intents: their
// Kafka timestamps give publish-to-intent latency.
func (r *run) decided(ctx context.Context, p plan, res *Result, before map[string]time.Duration, start time.Time) error {
	var n, lastN int64 = 0, -1
	lastChange := time.Now()
	for n < int64(res.Events) && time.Since(lastChange) < r.cfg.Idle {
		time.Sleep(20 * time.Millisecond)
		var err error
		if n, err = topicEnd(ctx, r.brokers, r.cfg.Partitions, "notifications"); err != nil {
			return err
		}
		if n != lastN {
			lastN, lastChange = n, time.Now()
		}
		if !r.disp.running() {
			return fmt.Errorf("the dispatcher exited:\n%s", tailFile(filepath.Join(r.dir, "dispatcher.log"), 15))
		}
	}
	r.measure(res, before)
	byCase := make(map[string]int, len(p.events))
	for i, e := range p.events {
		byCase[e.CaseID] = i
	}
	var lat []time.Duration
	var last time.Time
	seen := make(map[int]bool, len(p.events))
	err := readTopic(ctx, r.brokers, r.cfg.Partitions, "notifications", func(m kafka.Message) {
		i, ok := byCase[string(m.Key)]
		if !ok {
			res.Unexpected++
			return
		}
		if seen[i] {
			res.Dups++
			return
		}
		seen[i] = true
		lat = append(lat, m.Time.Sub(time.Unix(0, r.recv.ref[i].Load())))
		if m.Time.After(last) {
			last = m.Time
		}
	})
	if err != nil {
		return err
	}
	res.Delivered = int64(len(seen))
	res.Lost = int64(res.Events) - res.Delivered
	res.Latency = dist(lat)
	if res.Delivered > 0 {
		res.Seconds = last.Sub(start).Seconds()
		res.PerSecond = float64(res.Delivered) / res.Seconds
	}
	return nil
}

// waitTopic waits until topic holds n messages, or nothing new came for Idle.
func (r *run) waitTopic(ctx context.Context, topic string, n int) error {
	var got, lastN int64 = 0, -1
	lastChange, report := time.Now(), time.Now()
	for got < int64(n) && time.Since(lastChange) < r.cfg.Idle {
		time.Sleep(20 * time.Millisecond)
		var err error
		if got, err = topicEnd(ctx, r.brokers, r.cfg.Partitions, topic); err != nil {
			return err
		}
		if got != lastN {
			lastN, lastChange = got, time.Now()
		}
		if time.Since(report) >= 5*time.Second {
			report = time.Now()
			r.cfg.logf("%s holds %d/%d", topic, got, n)
		}
		if !r.disp.running() {
			return fmt.Errorf("the dispatcher exited:\n%s", tailFile(filepath.Join(r.dir, "dispatcher.log"), 15))
		}
	}
	return nil
}
