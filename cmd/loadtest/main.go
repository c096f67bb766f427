// Command loadtest is the reproducible load test of issue 9: it starts a
// redis-server, a Kafka-protocol broker (kfake, a child process) and the
// real dispatcher binary, publishes N synthetic events, and reports what
// a local https webhook receiver counted (distinct alerts, lost,
// duplicates), publish-to-POST latency, and the CPU time and peak memory
// of the dispatcher, Redis and the broker. See docs/benchmarks.md.
//
//	go run ./cmd/loadtest --mode burst --events 100000
//	go run ./cmd/loadtest --mode steady --rate 500 --events 15000
//	go run ./cmd/loadtest --mode timers --events 100000
//	go run ./cmd/loadtest --mode escalations --events 100000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/viogen-alerts/dispatcher/internal/loadtest"
)

func main() {
	loadtest.MaybeBroker() // the broker child runs this same binary

	var cfg loadtest.Config
	var jsonOut string
	var runs int
	var env multiFlag
	fs := flag.NewFlagSet("loadtest", flag.ExitOnError)
	fs.StringVar(&cfg.Mode, "mode", "burst", "burst | steady | timers | escalations | decide (the decide stage alone)")
	fs.IntVar(&cfg.Events, "events", 20000, "events to publish (each is one alert, one webhook)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "events per second (0 = burst; steady needs it)")
	fs.IntVar(&cfg.Partitions, "partitions", 6, "partitions of every topic")
	fs.StringVar(&cfg.Dispatcher, "dispatcher", "", "dispatcher binary (default: go build ./cmd/dispatcher)")
	fs.StringVar(&cfg.Dir, "dir", "", "keep logs and configuration here (default: a temp dir, removed)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the temp dir")
	fs.DurationVar(&cfg.TimerLead, "timer-lead", 0, "timers: how long after setup starts the deadlines fall (default 15s + 0.3ms per event; the setup applies about 8,000 events/s here)")
	fs.DurationVar(&cfg.TimerSpread, "timer-spread", 0, "timers: spread the deadlines over this window instead of one instant")
	fs.BoolVar(&cfg.TimersOnly, "timers-only", false, "timers: run the decide stage alone and count fired timers, not webhooks (for 1,000,000)")
	fs.BoolVar(&cfg.UUIDIDs, "uuid-ids", false, "event ids of 36 characters shaped as UUIDs instead of 17 (lt-<tag>-<n>)")
	fs.DurationVar(&cfg.Idle, "idle", 60*time.Second, "give up when nothing new arrived for this long (the rest is lost)")
	fs.DurationVar(&cfg.Settle, "settle", 3*time.Second, "keep counting duplicates this long after the last alert")
	fs.Var(&env, "env", "NAME=VALUE for the dispatcher's environment (repeatable), e.g. --env DELIVER_WORKERS=16")
	fs.StringVar(&cfg.Profile, "cpuprofile", "", "write a CPU profile of the dispatcher here (built with -tags loadprofile)")
	fs.IntVar(&cfg.ProfileSeconds, "profile-seconds", 20, "length of the CPU profile, from the start of the measured window")
	fs.StringVar(&jsonOut, "json", "", "also write the results as JSON to this file")
	fs.IntVar(&runs, "runs", 1, "run this many times (a fresh stack each) and print the medians")
	_ = fs.Parse(os.Args[1:])
	cfg.ExtraEnv = env
	cfg.Log = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var results []*loadtest.Result
	failed := false
	for i := range max(runs, 1) {
		if runs > 1 {
			fmt.Fprintf(os.Stderr, "--- run %d of %d\n", i+1, runs)
		}
		res, err := loadtest.Run(ctx, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		res.Print(os.Stdout)
		results = append(results, res)
		failed = failed || res.Lost > 0 || res.Dups > 0 || res.Unexpected > 0 || res.BadSig > 0
	}
	if len(results) > 1 {
		loadtest.Summary(os.Stdout, results)
	}
	if jsonOut != "" {
		var v any = results
		if len(results) == 1 {
			v = results[0]
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
	}
	if failed {
		os.Exit(3) // correctness failure: lost, duplicated or unexpected alerts
	}
}

type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("want NAME=VALUE, got %q", v)
	}
	*m = append(*m, v)
	return nil
}
