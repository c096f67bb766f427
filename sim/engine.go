package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/rules"
	"github.com/viogen-alerts/dispatcher/templates"
)

// Options configure a simulation.
type Options struct {
	Config    *rules.Config
	Templates *templates.Set
	// Start is where the virtual clock begins.
	Start time.Time
	// Log receives the pipeline's own log lines (nil: none).
	Log io.Writer
}

// Engine is one simulation: the decide pipeline, its timers and
// schedules, on an embedded Redis and in-memory topics, with a virtual
// clock. Not safe for concurrent use.
type Engine struct {
	cfg    *rules.Config
	tmpl   *templates.Set
	clock  *dispatcher.ManualClock
	redis  *embedded
	rdb    *redis.Client
	topics *topics
	ingest *dispatcher.Ingest
	timers *dispatcher.Timers
	sched  *dispatcher.Scheduler
	acks   *dispatcher.Acknowledger
	esc    *dispatcher.EscalationStore

	next []time.Time // per schedule of cfg: its next firing
	// timerDue is the earliest timer deadline when last read.
	timerDue time.Time
	watch    map[string]map[string]escState
	touched  map[string]bool
	records  []Record
	// Counts of what the run handled (for the closing summary).
	Events, Timers, Notifications int
}

// New starts an embedded Redis and wires the pipeline to it.
func New(o Options) (*Engine, error) {
	if o.Config == nil || o.Templates == nil {
		return nil, errors.New("simulation needs a configuration and templates")
	}
	// In-process connections (no TCP): a simulation is a long run of
	// short round trips.
	emb, err := startEmbedded(o.Start)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: "embedded", PoolSize: 4,
		Dialer: func(context.Context, string, string) (net.Conn, error) { return emb.mr.Dial() }})
	e := &Engine{cfg: o.Config, tmpl: o.Templates, clock: dispatcher.NewManualClock(o.Start), redis: emb,
		rdb: rdb, topics: newTopics(),
		watch: map[string]map[string]escState{}, touched: map[string]bool{}}
	e.topics.seen = e.written
	e.wire(e.logger(o.Log))
	for i := range e.cfg.Schedules {
		e.next = append(e.next, e.cfg.Schedules[i].NextFire(o.Start.Add(-time.Nanosecond)))
	}
	return e, nil
}

// logger sends the pipeline's log lines to w and its decisions to the
// timeline.
func (e *Engine) logger(w io.Writer) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(io.Discard)
	if w != nil {
		log.SetOutput(w)
	}
	log.SetLevel(logrus.InfoLevel)
	log.AddHook(&decisionHook{e: e})
	return log
}

// wire builds the stages as cmd/dispatcher's wiring does (the decide
// stage by the same constructor), with the virtual clock and the
// in-memory topics.
func (e *Engine) wire(log *logrus.Logger) {
	now := e.clock.Now
	e.esc = dispatcher.NewEscalationStore(e.rdb, 0)
	decider := dispatcher.NewDecider(dispatcher.DecideDeps{Rules: e.cfg, Engine: rules.NewEngine(e.cfg), Redis: e.rdb,
		Writer: e.topics, Store: e.esc, Log: log, Now: now})
	store := dispatcher.NewStore(e.rdb, 0)
	store.Periods = dispatcher.PeriodsFrom(e.cfg)
	e.ingest = dispatcher.NewIngest(dispatcher.IngestConfig{Now: now}, store, recordStage{e: e, next: decider},
		e.topics, log, dispatcher.NewStats(prometheus.NewRegistry()))
	e.timers = &dispatcher.Timers{Redis: e.rdb, Writer: e.topics, Store: e.esc, Now: now, Log: log.WithField("component", "timers"),
		Deadlines: e.redis.deadlines}
	e.sched = &dispatcher.Scheduler{Rules: e.cfg, Redis: e.rdb, Writer: e.topics, Topic: dispatcher.TopicIntents,
		Clock: e.clock, Log: log.WithField("component", "schedules"), Instance: "simulator"}
	e.acks = &dispatcher.Acknowledger{Store: e.esc, Writer: e.topics, Now: now}
}

// Close stops the embedded Redis.
func (e *Engine) Close() {
	_ = e.rdb.Close()
	e.redis.mr.Close()
}

// Now is the virtual time.
func (e *Engine) Now() time.Time { return e.clock.Now() }

// Records is the timeline so far, in order.
func (e *Engine) Records() []Record { return e.records }

func (e *Engine) add(r Record) {
	if r.At.IsZero() {
		r.At = e.clock.Now()
	}
	e.records = append(e.records, r)
}

// maxSteps bounds the work at one instant: a configuration whose timers
// fire again at once would otherwise never let time move.
const maxSteps = 10000

// Run plays inputs (sorted by time, stable) and everything they cause
// until the clock reaches until, jumping from one due input, timer or
// schedule firing to the next.
func (e *Engine) Run(ctx context.Context, inputs []Input, until time.Time) error {
	sort.SliceStable(inputs, func(i, j int) bool { return inputs[i].At.Before(inputs[j].At) })
	i, steps, last := 0, 0, time.Time{}
	for {
		next, err := e.nextDue(ctx)
		if err != nil {
			return err
		}
		if i < len(inputs) && (next.IsZero() || inputs[i].At.Before(next)) {
			next = inputs[i].At
		}
		if next.IsZero() || next.After(until) {
			e.advance(until)
			return nil
		}
		e.advance(next)
		if now := e.clock.Now(); now.Equal(last) {
			if steps++; steps > maxSteps {
				return fmt.Errorf("at %s: over %d steps without time moving (a timer firing again at once?)", now.Format(time.RFC3339), maxSteps)
			}
		} else {
			last, steps = now, 0
		}
		for i < len(inputs) && !inputs[i].At.After(e.clock.Now()) {
			if err := e.input(ctx, inputs[i]); err != nil {
				return err
			}
			i++
		}
		if err := e.step(ctx); err != nil {
			return err
		}
	}
}

// advance moves the virtual clock (never backwards), and the embedded
// Redis's clock and TTLs with it.
func (e *Engine) advance(t time.Time) {
	if !t.After(e.clock.Now()) {
		return
	}
	e.clock.Set(t)
	e.redis.advance(t)
}

// step handles what is queued, then fires due timers and schedules, each
// followed by handling what they queued.
func (e *Engine) step(ctx context.Context) error {
	if err := e.drain(ctx); err != nil {
		return err
	}
	if !e.timerDue.IsZero() && !e.timerDue.After(e.clock.Now()) {
		// (One the inputs made due is found by the next round, at this
		// same instant.)
		n, err := e.timers.FireAllDue(ctx)
		if err != nil {
			return err
		}
		e.Timers += n
	}
	if err := e.drain(ctx); err != nil {
		return err
	}
	if err := e.fireSchedules(ctx); err != nil {
		return err
	}
	if err := e.drain(ctx); err != nil {
		return err
	}
	if err := e.redis.ttl.failed(); err != nil {
		return fmt.Errorf("at %s: %w", e.clock.Now().Format(time.RFC3339), err)
	}
	return nil
}

// drain handles the queued case events, upstream and internal, as one
// batch each round, until none are left; then reports escalation changes.
func (e *Engine) drain(ctx context.Context) error {
	for {
		batch := append(e.topics.take(dispatcher.TopicCaseEvents), e.topics.take(dispatcher.TopicInternal)...)
		e.topics.take(dispatcher.TopicIntents) // recorded when written; nothing consumes them here
		e.topics.take(dispatcher.TopicResults)
		e.topics.take(dispatcher.TopicDLQ)
		if len(batch) == 0 {
			return e.escalationChanges(ctx)
		}
		if err := e.ingest.Process(ctx, batch); err != nil {
			return fmt.Errorf("at %s: %w", e.clock.Now().Format(time.RFC3339), err)
		}
	}
}

// publish queues an upstream event as a producer would: keyed by case.
func (e *Engine) publish(ctx context.Context, caseID string, value []byte) error {
	return e.topics.WriteMessages(ctx, kafka.Message{Topic: dispatcher.TopicCaseEvents, Key: []byte(caseID), Value: value})
}

// fireSchedules fires every schedule whose next firing is due, as the
// scheduler's loop does (its lock included), and arms the next one.
func (e *Engine) fireSchedules(ctx context.Context) error {
	now := e.clock.Now()
	for i := range e.cfg.Schedules {
		s := &e.cfg.Schedules[i]
		for !e.next[i].IsZero() && !e.next[i].After(now) {
			if _, err := e.sched.Fire(ctx, s, e.next[i]); err != nil {
				return fmt.Errorf("schedule %s: %w", s.ID, err)
			}
			e.next[i] = s.NextFire(e.next[i])
		}
	}
	return nil
}

// nextDue is the earliest pending timer or schedule firing (zero: none);
// one already due reads as now.
func (e *Engine) nextDue(ctx context.Context) (time.Time, error) {
	next, err := e.timers.NextDue(ctx)
	if err != nil {
		return next, err
	}
	e.timerDue = next
	for _, t := range e.next {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if now := e.clock.Now(); !next.IsZero() && next.Before(now) {
		next = now
	}
	return next, nil
}
