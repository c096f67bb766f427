package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/viogen-alerts/dispatcher/console"
	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/rules"
)

var devTopics = []string{dispatcher.TopicCaseEvents, dispatcher.TopicInternal, dispatcher.TopicDLQ,
	dispatcher.TopicIntents, dispatcher.TopicResults}

func cmdDev(ctx context.Context, args []string, io stdio, getenv env) int {
	fs := newFlagSet("dev", `Usage: dispatcher dev [flags]

Run the dispatcher with an embedded Kafka-protocol broker (kfake, in memory)
on 127.0.0.1:9092 with its topics created, and an embedded Redis (miniredis)
unless REDIS_URL is set. Nothing persists across restarts. Not for production.
Channels without settings are log sinks; GET /outbox on the admin address
shows what they would have sent.`+envHelp+channelEnvHelp+deliverEnvHelp, io.err)
	var s settings
	s.register(fs, getenv, settings{httpAddr: "127.0.0.1:8080", logFormat: "text", config: "deploy/config/viogen.yaml"})
	port := fs.Int("kafka-port", 9092, "port of the embedded broker")
	demo := fs.String("demo", "", "JSON-lines events to publish once the dispatcher runs (e.g. deploy/examples/events.jsonl)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	log, err := s.logger(io.err)
	if err != nil {
		fmt.Fprintln(io.err, "dispatcher dev:", err)
		return 2
	}
	logins, err := devConsoleLogins(&s)
	if err != nil {
		fmt.Fprintln(io.err, "dispatcher dev:", err)
		return 1
	}
	broker, err := kfake.NewCluster(kfake.Ports(*port), kfake.SeedTopics(4, devTopics...))
	if err != nil {
		fmt.Fprintf(io.err, "dispatcher dev: start embedded Kafka on port %d: %v\n", *port, err)
		return 1
	}
	defer broker.Close()
	s.brokers = "127.0.0.1:" + strconv.Itoa(*port)
	if s.redisURL == "" && s.redisAddrs == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			fmt.Fprintln(io.err, "dispatcher dev: start embedded Redis:", err)
			return 1
		}
		defer mr.Close()
		s.redisURL = "redis://" + mr.Addr()
	}
	ready := func(svc *dispatcher.Service) {
		fmt.Fprintf(io.out, "\ndispatcher dev: Kafka on %s, Redis on %s, admin on http://%s\n", s.brokers, s.redisURL, svc.HTTPAddr())
		fmt.Fprintf(io.out, "what would have been sent:  curl http://%s/outbox\n", svc.HTTPAddr())
		printDevLogins(io.out, "http://"+svc.HTTPAddr()+console.Prefix, logins)
		fmt.Fprintf(io.out, "publish events with:  go run ./cmd/dispatcher publish deploy/examples/events.jsonl\n")
		fmt.Fprintf(io.out, "                 or:  kcat -P -b %s -t %s -K '|'   (lines: case_id|{json})\n\n", s.brokers, dispatcher.TopicCaseEvents)
		if *demo != "" {
			go publishDemo(ctx, *demo, s.brokers, io)
		}
	}
	if err := serve(ctx, s, getenv, log, true, ready); err != nil {
		log.WithError(err).Error("dispatcher stopped")
		return 1
	}
	return 0
}

// devConsoleLogins makes a synthetic console operator per agency of the
// configuration (coordinating centers included) for the local demo.
func devConsoleLogins(s *settings) ([]console.DevLogin, error) {
	cfg, err := rules.LoadFile(s.config, rules.LoadOptions{})
	if err != nil {
		return nil, err
	}
	ops, logins, err := console.DevOperators(cfg)
	if err != nil {
		return nil, err
	}
	s.devOperators = ops
	return logins, nil
}

func printDevLogins(w io.Writer, url string, logins []console.DevLogin) {
	fmt.Fprintf(w, "alert console:  %s   (synthetic dev logins, new each run)\n", url)
	for _, l := range logins {
		fmt.Fprintf(w, "    %-22s %-36s operator %-26s password %s\n", l.Agency, "("+l.Kind+")", l.Operator, l.Password)
	}
}

// publishDemo sends the example scenario shortly after start, so make run
// shows alerts without a second terminal.
func publishDemo(ctx context.Context, path, brokers string, io stdio) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Second):
	}
	cmdPublish(ctx, []string{"--brokers", brokers, path}, io, func(string) string { return "" })
}
