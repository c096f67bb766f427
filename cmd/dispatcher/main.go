// Command dispatcher is the VioGén alert dispatcher: it consumes case
// events from Kafka, decides who must be told, and delivers the alerts.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

const usage = `dispatcher: the alerting arm of a VioGén-style case-monitoring system.

Usage: dispatcher <command> [flags]

Commands:
  run         consume case events and dispatch alerts (production)
  dev         run with an embedded Kafka broker and Redis, for trying it out
  publish     send JSON-lines events to Kafka, keyed by case_id
  check       validate a configuration file
  route-test  show which rules, targets and messages an event produces
  test        run policy test files: timelines of events against expected alerts
  simulate    print everything a configuration would do with events over time
  topics      create the dispatcher's Kafka topics and list them

Run 'dispatcher <command> --help' for a command's flags and environment.
`

// env is how commands read the environment: only cmd does, and tests pass
// their own.
type env func(string) string

type stdio struct {
	in       io.Reader
	out, err io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if oneProcessor(os.Args[1:], os.Getenv) {
		runtime.GOMAXPROCS(1)
	}
	if p := gcPercent(os.Args[1:], os.Getenv); p > 0 {
		debug.SetGCPercent(p)
	}
	os.Exit(dispatchEnv(ctx, os.Args[1:], stdio{os.Stdin, os.Stdout, os.Stderr}, os.Getenv, os.Environ()))
}

func dispatch(ctx context.Context, args []string, io stdio, getenv env) int {
	if len(args) == 0 {
		fmt.Fprint(io.err, usage)
		return 2
	}
	cmds := map[string]func(context.Context, []string, stdio, env) int{
		"run": cmdRun, "dev": cmdDev, "publish": cmdPublish,
		"check": cmdCheck, "route-test": cmdRouteTest, "topics": cmdTopics,
		"test": cmdPolicyTest, "simulate": cmdSimulate,
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(io.out, usage)
		return 0
	}
	fn, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(io.err, "dispatcher: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	return fn(ctx, args[1:], io, getenv)
}
