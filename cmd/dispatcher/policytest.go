package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/viogen-alerts/dispatcher/policytest"
	"github.com/viogen-alerts/dispatcher/sim"
)

const policyTestHelp = `Usage: dispatcher test [flags] FILE...

Run policy test files, like 'promtool test rules': each names a
configuration, a start time and zone, a timeline of inputs (case events,
check-ins, acknowledgements by agency or SMS reply, and silence in
between) and the expected outputs (notifications, escalations opened,
repeated, climbed, acknowledged or closed, digests, windows in which
nothing may be sent). Each file runs on the simulator: the dispatcher's
own pipeline on an embedded Redis and a virtual clock, so hours, days and
daylight-saving changes pass in milliseconds. Format: docs/policy-tests.md.

A passing file prints one line; a failing one prints what was expected
and not got (-), got and not expected (+), and sent in a window where
nothing was expected (!), with times in the file's zone.

Exit status: 0 when every file passed, 1 when one failed or could not run
(errors name file:line:col), 2 on bad flags.

Environment:
  GOMAXPROCS   processors to use (default 1: a simulation is sequential,
               and faster on one)`

func cmdPolicyTest(ctx context.Context, args []string, io stdio, _ env) int {
	fs := newFlagSet("test", policyTestHelp, io.err)
	verbose := fs.Bool("v", false, "print each file's whole timeline too")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	failed := 0
	for _, path := range fs.Args() {
		if !runPolicyTest(ctx, path, *verbose, io) {
			failed++
		}
	}
	if failed > 0 {
		fmt.Fprintf(io.err, "dispatcher test: %d of %d files failed\n", failed, fs.NArg())
		return 1
	}
	return 0
}

// runPolicyTest runs one file and reports it; false when it failed.
func runPolicyTest(ctx context.Context, path string, verbose bool, io stdio) bool {
	f, err := policytest.Load(path)
	if err != nil {
		fmt.Fprintf(io.out, "FAIL  %v\n", err)
		return false
	}
	res, err := policytest.Run(ctx, f, nil)
	if err != nil {
		fmt.Fprintf(io.out, "FAIL  %v\n", err)
		return false
	}
	res.Write(io.out)
	if verbose || !res.Passed() && len(res.Records) <= maxTimelineOnFailure {
		writeTimeline(io.out, res.Records, f)
	}
	return res.Passed()
}

// maxTimelineOnFailure: a failing file's timeline is printed when short
// enough to read (else -v prints it).
const maxTimelineOnFailure = 80

func writeTimeline(w io.Writer, recs []sim.Record, f *policytest.File) {
	fmt.Fprintf(w, "      timeline (%s):\n", f.Zone)
	for _, r := range recs {
		fmt.Fprintf(w, "        %s\n", r.Text(f.Zone))
	}
}

// parseWhen reads a simulate time: RFC 3339, a local time in loc
// ("2026-03-29 02:30"), or for until an offset from from ("30d").
func parseWhen(s string, loc *time.Location, from time.Time) (time.Time, error) {
	return policytest.ParseTime(s, loc, from)
}
