package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/dispatcher"
)

func cmdRun(ctx context.Context, args []string, io stdio, getenv env) int {
	fs := newFlagSet("run", "Usage: dispatcher run [flags]\n\nConsume case events from Kafka and dispatch alerts."+envHelp+kafkaEnvHelp+channelEnvHelp+deliverEnvHelp, io.err)
	var s settings
	s.register(fs, getenv, settings{httpAddr: ":8080", logFormat: "json"})
	if code, done := parseFlags(fs, args); done {
		return code
	}
	log, err := s.logger(io.err)
	if err != nil {
		fmt.Fprintln(io.err, "dispatcher run:", err)
		return 2
	}
	// SIGHUP reloads the configuration and templates (see reload.go).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default: // a reload is already pending
			}
		}
	}()
	if err := serveReload(ctx, s, getenv, log, false, nil, reload); err != nil {
		log.WithError(err).Error("dispatcher stopped")
		return 1
	}
	return 0
}

// serve wires and runs one dispatcher until ctx ends or it fails. ready,
// when set, is called with the service once it listens.
func serve(ctx context.Context, s settings, getenv env, log *logrus.Logger, dev bool, ready func(*dispatcher.Service)) error {
	return serveReload(ctx, s, getenv, log, dev, ready, nil)
}

// serveReload is serve that reloads the configuration and templates on
// every receive from reload (nil: never).
func serveReload(ctx context.Context, s settings, getenv env, log *logrus.Logger, dev bool, ready func(*dispatcher.Service), reload <-chan struct{}) error {
	if err := s.checkStages(); err != nil {
		return err
	}
	sec, err := kafkaSecurity(getenv, log, dev)
	if err != nil {
		return err
	}
	a, err := loadApp(s.config, s.templateDir)
	if err != nil {
		return err
	}
	a.live = dispatcher.NewLive(a.snapshot())
	rdb, err := s.redisClient()
	if err != nil {
		return err
	}
	defer rdb.Close()
	if specs := s.topicSpecs(); len(specs) > 0 {
		// A broker that is down now is not fatal: the consumer creates the
		// topics when it finds them missing.
		if err := sec.EnsureTopics(ctx, s.brokerList(), specs); err != nil {
			log.WithError(err).Warn("creating topics failed; will retry when the broker answers")
		}
	}
	reg := prometheus.NewRegistry()
	dispatcher.RegisterRuntimeMetrics(reg)
	cm := dispatcher.NewConfigMetrics(reg)
	if hash, err := dispatcher.ConfigHash(s.config); err == nil {
		cm.Loaded(hash)
	}
	w := sec.NewWriter(s.brokerList(), log)
	esc := dispatcher.NewEscalationStore(rdb, s.dedupTTL)
	esc.Format = s.writeFormat
	dec := a.decider(rdb, w, esc, log)
	periods := dispatcher.PeriodsFrom(a.cfg)
	opts := dispatcher.Options{
		Periods:     &periods,
		Live:        a.live,
		Ingest:      dispatcher.IngestConfig{Brokers: s.brokerList(), Security: sec, GroupID: s.group, Topic: s.topic, CreateTopics: s.topicSpecs()},
		Checks:      map[string]func() error{}, // stages add theirs
		Redis:       rdb,
		Writer:      w,
		Decide:      dec,
		NoIngest:    !s.runs("decide"),
		DedupTTL:    s.dedupTTL,
		WriteFormat: s.writeFormat,
		HTTPAddr:    s.httpAddr,
		Log:         log,
		Registry:    reg,
	}
	if s.runs("decide") {
		a.addDecide(&opts, esc, getenv, log, s.devOperators)
	}
	if s.runs("deliver") {
		d, err := a.addDelivery(&opts, getenv, log, dev)
		if err != nil {
			return err
		}
		if s.runs("decide") {
			dec.Handoff = d.Handoff // both stages here: no broker round trip between them
		}
	}
	svc, err := dispatcher.NewService(opts)
	if err != nil {
		return err
	}
	log.WithFields(logrus.Fields{"brokers": s.brokerList(), "kafka_security": sec.String(), "group": s.group, "topic": s.topic, "stages": s.stages,
		"http": svc.HTTPAddr(), "config": s.config}).Info("dispatcher started")
	if reload != nil {
		rctx, stop := context.WithCancel(ctx)
		defer stop()
		go reloadLoop(rctx, reload, s, a.live, cm, log)
	}
	if ready != nil {
		ready(svc)
	}
	return svc.Run(ctx)
}
