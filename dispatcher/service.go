package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"
)

// Options wire one dispatcher process.
type Options struct {
	Ingest IngestConfig
	Redis  redis.UniversalClient
	// Writer produces to Kafka (dead letters, intents, results); nil = a
	// new one. The service closes it.
	Writer   *kafka.Writer
	DedupTTL time.Duration
	// WriteFormat is the layout of the records whose format changed in
	// the 2026-12 release (see WriteFormat).
	WriteFormat WriteFormat
	// Periods set check-in and re-assessment deadlines (nil = defaults).
	Periods *Periods
	// Live, when set, supplies the periods of the configuration in use
	// (a reload changes them) instead of Periods.
	Live     *Live
	HTTPAddr string // admin HTTP; "" = none
	Log      logrus.FieldLogger
	// Decide is the stage after case state; nil logs each event.
	Decide Stage
	// NoIngest runs without the case-event consumer (a deliver-only process).
	NoIngest bool
	// Extra runs beside the consumer (delivery, timers, schedules) and
	// stops with it; each must return when ctx ends.
	Extra    []func(ctx context.Context) error
	Registry *prometheus.Registry
	// Routes adds handlers to the admin HTTP server.
	Routes func(mux *http.ServeMux)
	// Checks are named readiness checks: /readyz runs them all and is 503,
	// naming the failing ones, while any fails or has not answered within
	// a second. nil is fine; NewService adds "redis" and, unless NoIngest,
	// "ingest" (which the names given here must not use). A check must be
	// safe to call concurrently and should answer quickly.
	Checks map[string]func() error
}

// Service is one running dispatcher.
type Service struct {
	opts   Options
	Stats  *Stats
	Store  *Store
	Writer *kafka.Writer
	ingest *Ingest
	checks map[string]func() error
	ln     net.Listener
}

// NewService builds the service; Run starts it.
func NewService(o Options) (*Service, error) {
	if len(o.Ingest.Brokers) == 0 {
		return nil, errors.New("no Kafka brokers (set KAFKA_BROKERS)")
	}
	if o.Redis == nil {
		return nil, errors.New("no Redis client (set REDIS_URL)")
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	s := &Service{opts: o, Stats: NewStats(o.Registry)}
	s.Store = NewStore(o.Redis, o.DedupTTL)
	if o.Periods != nil {
		s.Store.Periods = *o.Periods
	}
	s.Store.Live = o.Live
	s.Store.Format = o.WriteFormat
	s.Writer = o.Writer
	if s.Writer == nil {
		s.Writer = o.Ingest.Security.NewWriter(o.Ingest.Brokers, o.Log)
	}
	next := o.Decide
	if d, ok := next.(*Decider); ok && d.RuleErrors == nil {
		d.RuleErrors = s.Stats.RuleErrors
	}
	if next == nil {
		next = LogStage{Log: o.Log}
	}
	s.ingest = NewIngest(o.Ingest, s.Store, next, s.Writer, o.Log, s.Stats)
	s.checks = make(map[string]func() error, len(o.Checks)+2)
	for name, fn := range o.Checks {
		if fn != nil {
			s.checks[name] = fn
		}
	}
	s.checks["redis"] = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		defer cancel()
		if err := o.Redis.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis ping: %w", err)
		}
		return nil
	}
	if !o.NoIngest {
		s.checks["ingest"] = s.ingest.Check
	}
	if o.HTTPAddr != "" {
		ln, err := net.Listen("tcp", o.HTTPAddr)
		if err != nil {
			return nil, fmt.Errorf("listen on HTTP_ADDR %s: %w", o.HTTPAddr, err)
		}
		s.ln = ln
	}
	return s, nil
}

// HTTPAddr is the admin server's bound address ("" when none).
func (s *Service) HTTPAddr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Run consumes until ctx ends or a component fails; it then stops every
// component and waits for them. The ingest does not fail on Kafka or Redis
// outages: it retries until ctx ends, reporting not-ready meanwhile.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer s.Writer.Close()
	errs := make(chan error, 2+len(s.opts.Extra))
	n := 0
	start := func(name string, fn func(context.Context) error) {
		n++
		go func() {
			err := fn(ctx)
			if err != nil && ctx.Err() == nil {
				err = fmt.Errorf("%s: %w", name, err)
			} else {
				err = nil
			}
			errs <- err
			cancel() // one component ending stops them all
		}()
	}
	if !s.opts.NoIngest {
		start("ingest", s.ingest.Run)
	}
	for i, fn := range s.opts.Extra {
		start(fmt.Sprintf("component %d", i), fn)
	}
	if s.ln != nil {
		start("http", s.serveHTTP)
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Service) serveHTTP(ctx context.Context) error {
	// Twilio's webhooks share this listener: bound every phase of a request.
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve admin HTTP: %w", err)
	}
	return nil
}
