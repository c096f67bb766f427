package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/console"
	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/rules"
	"github.com/viogen-alerts/dispatcher/templates"
)

// app is the loaded configuration and message templates.
type app struct {
	cfg    *rules.Config
	engine *rules.Engine
	tmpl   *templates.Set
	// live, when set (serve), is where the running service reads the
	// configuration: a reload swaps it.
	live *dispatcher.Live
}

// snapshot is a as one swappable configuration.
func (a *app) snapshot() *dispatcher.Snapshot {
	return &dispatcher.Snapshot{Config: a.cfg, Engine: a.engine, Templates: a.tmpl}
}

// loadApp reads templates first, so the configuration can be checked
// against the template names; errors list every problem with file:line.
func loadApp(configPath, templateDir string) (*app, error) {
	if configPath == "" {
		return nil, fmt.Errorf("no configuration: pass --config or set DISPATCHER_CONFIG")
	}
	tmpl, err := templates.New(templateDir)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	cfg, err := rules.LoadFile(configPath, rules.LoadOptions{Templates: tmpl.Has, TemplateChannel: tmpl.HasChannel})
	if err != nil {
		return nil, err
	}
	return &app{cfg: cfg, engine: rules.NewEngine(cfg), tmpl: tmpl}, nil
}

// decider builds the decide stage writing intents with w, with its
// escalation ladder (the simulator builds it the same way).
func (a *app) decider(rdb redis.UniversalClient, w *kafka.Writer, esc *dispatcher.EscalationStore, log logrus.FieldLogger) *dispatcher.Decider {
	return dispatcher.NewDecider(dispatcher.DecideDeps{Rules: a.cfg, Engine: a.engine, Live: a.live, Redis: rdb, Writer: w,
		Store: esc, Log: log, Now: time.Now, Silences: dispatcher.NewSilenceStore(rdb)})
}

// addDecide adds the timers and the acknowledgement API of the decide
// stage to opts.
func (a *app) addDecide(opts *dispatcher.Options, esc *dispatcher.EscalationStore, getenv env, log *logrus.Logger, devOperators []rules.Operator) {
	timers := &dispatcher.Timers{Redis: opts.Redis, Writer: opts.Writer, Store: esc, Now: time.Now, Log: log.WithField("component", "timers"),
		Metrics: dispatcher.NewTimerMetrics(opts.Registry)}
	if opts.Registry != nil {
		opts.Registry.MustRegister(dispatcher.NewEscalationsCollector(esc), &dispatcher.TimersDueCollector{Redis: opts.Redis, Now: time.Now})
	}
	sched := &dispatcher.Scheduler{Rules: a.cfg, Live: a.live, Redis: opts.Redis, Writer: opts.Writer, Topic: dispatcher.TopicIntents,
		Clock: dispatcher.RealClock{}, Log: log.WithField("component", "schedules")}
	opts.Extra = append(opts.Extra, timers.Run, sched.Run)
	if opts.Checks == nil {
		opts.Checks = map[string]func() error{}
	}
	opts.Checks["timers"], opts.Checks["schedules"] = timers.Check, sched.Check
	acks := &dispatcher.Acknowledger{Store: esc, Writer: opts.Writer, Now: time.Now}
	api := &dispatcher.AckAPI{Rules: a.cfg, Live: a.live, Store: esc, Log: log.WithField("component", "ack-api"),
		Acks:        acks,
		TwilioToken: getenv("TWILIO_AUTH_TOKEN"), InboundURL: getenv("TWILIO_INBOUND_URL"),
		PagerDutySecret: getenv("PAGERDUTY_WEBHOOK_SECRET")}
	con := &console.Console{Rules: a.liveConfig, Store: esc, Acks: acks, Redis: opts.Redis, Silences: dispatcher.NewSilenceStore(opts.Redis),
		Audit: &dispatcher.ConsoleAudit{Writer: opts.Writer, Topic: dispatcher.TopicResults},
		Log:   log.WithField("component", "console"), Extra: devOperators}
	opts.Routes = chainRoutes(opts.Routes, api.Register, con.Register)
}

// liveConfig is the configuration in use.
func (a *app) liveConfig() *rules.Config {
	if a.live != nil {
		return a.live.Load().Config
	}
	return a.cfg
}

func chainRoutes(fns ...func(*http.ServeMux)) func(*http.ServeMux) {
	return func(mux *http.ServeMux) {
		for _, fn := range fns {
			if fn != nil {
				fn(mux)
			}
		}
	}
}

// addDelivery adds the deliver stage and its HTTP routes to opts, and
// returns it.
func (a *app) addDelivery(opts *dispatcher.Options, getenv env, log *logrus.Logger, dev bool) (*dispatcher.Deliverer, error) {
	dcfg, err := deliverConfig(getenv, opts.Ingest.Brokers)
	if err != nil {
		return nil, err
	}
	cs, err := buildChannels(getenv, log, dev, dcfg.SendsAtOnce)
	if err != nil {
		return nil, err
	}
	dcfg.Security, dcfg.CreateTopics = opts.Ingest.Security, opts.Ingest.CreateTopics
	timeout := dcfg.ReceiptTimeout
	if msg := settleReceipts(&dcfg, getenv("TWILIO_AUTH_TOKEN") != "" && getenv("TWILIO_STATUS_CALLBACK_URL") != ""); msg != "" {
		l := log.WithField("sms_receipt_timeout", timeout.String())
		if dev {
			l.Info(msg) // the dev sinks send no receipts
		} else {
			l.Warn(msg)
		}
	}
	d := dispatcher.NewDeliverer(dcfg, dispatcher.DeliverDeps{
		Rules: a.cfg, Templates: a.tmpl, Live: a.live, Channels: cs.chans,
		Limits: dispatcher.NewRateLimiter(dispatcher.RateLimiterConfig{
			Redis: opts.Redis, Overrides: cs.rates, Log: log, Registry: opts.Registry,
		}),
		Directory: dispatcher.ConfigDirectory{Cfg: a.cfg, Live: a.live, Secret: secrets(getenv, cs)},
		Redis:     opts.Redis, Writer: opts.Writer, Log: log, MarkerTTL: opts.DedupTTL, MarkerFormat: opts.WriteFormat, Registry: opts.Registry,
	})
	opts.Extra = append(opts.Extra, d.Run)
	if opts.Checks == nil {
		opts.Checks = map[string]func() error{}
	}
	opts.Checks["deliver"] = d.Ready
	opts.Routes = chainRoutes(opts.Routes, func(mux *http.ServeMux) {
		if dev {
			mux.HandleFunc("GET /outbox", cs.outbox)
		}
		if tok, url := getenv("TWILIO_AUTH_TOKEN"), getenv("TWILIO_STATUS_CALLBACK_URL"); tok != "" && url != "" {
			mux.Handle("POST /v1/twilio/status", d.StatusHandler(tok, url))
		}
	})
	return d, nil
}

// secrets reads pager routing keys from the environment; when the pager
// channel is a dev log sink, an unset key reads as a placeholder so the
// page still shows in /outbox.
func secrets(getenv env, cs *channelSet) func(string) string {
	devPager := false
	for _, s := range cs.sinks {
		devPager = devPager || s.Name() == "pager"
	}
	return func(name string) string {
		if v := getenv(name); v != "" || !devPager {
			return v
		}
		return "dev-placeholder-" + name
	}
}

// settleReceipts fits the SMS receipt check to whether status callbacks
// can arrive, and returns what to log when it turns the check off.
func settleReceipts(c *dispatcher.DeliverConfig, callbacks bool) string {
	switch {
	case c.ReceiptTimeout > 0 && !callbacks:
		// No status callback route: no receipt can ever arrive, and every
		// SMS would be declared unconfirmed.
		c.ReceiptTimeout = 0
		return "SMS receipt check off: TWILIO_STATUS_CALLBACK_URL (and TWILIO_AUTH_TOKEN) must be set for delivery receipts to arrive"
	case c.ReceiptTimeout == 0 && callbacks:
		// Off by choice, with callbacks on: a callback that fails half-way
		// is still finished (its fallback or notice); nothing is marked
		// unconfirmed.
		c.ReceiptSweep = defaultReceiptTimeout
	}
	return ""
}
