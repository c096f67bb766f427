package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/sim"
)

const simulateHelp = `Usage: dispatcher simulate --config FILE --events FILE|- --from T --until T [flags]

Print the timeline of everything the dispatcher would do with these
events between --from and --until: every event applied (with its level
change), decision, notification (agency, contact id, role, channels,
template, escalation step), suppression and merge that held an alert
back, timer fired (missed check-ins, overdue re-assessments, escalation
timeouts), escalation opened, repeated, climbed, acknowledged or closed,
schedule firing and digest. It runs the dispatcher's own pipeline
(decoding, case state in an embedded Redis running the real Lua scripts,
rules, suppression, ladder, timers, schedules, templates) on a virtual
clock with in-memory topics: nothing is sent, and a month passes in
seconds. Every send is taken as accepted (no channel fallback).

--events holds JSON lines (blank lines and # comments skipped): events as
in docs/events.md, each entering at its occurred_at (or at --from, if
earlier), and acknowledgements:
  {"at": "2026-03-10T09:20:00+01:00", "ack": {"case": "C-1", "agency": "gc-ciudad-real"}}
  {"at": "...", "sms_ack": {"case": "C-1", "contact": "gc-cr-guardia"}}
(optionally with "rule" to acknowledge one escalation of the case only).

Times: RFC 3339, or a local time in the configuration's zone or --zone
("2026-03-29 02:30"); --until may also be an offset from --from ("30d").
Output: text (one line per record, times in that zone) or json (JSON lines).
A summary (counts and wall time) goes to stderr.

Exit status: 0 when the run completed, 1 when the configuration, the
events or the simulation failed, 2 on bad flags.

Environment (flags win):
  DISPATCHER_CONFIG    configuration file (YAML)
  TEMPLATE_DIR         directory of template overrides
  GOMAXPROCS           processors to use (default 1: a simulation is
                       sequential, and faster on one)`

func cmdSimulate(ctx context.Context, args []string, io stdio, getenv env) int {
	fs := newFlagSet("simulate", simulateHelp, io.err)
	config := fs.String("config", getenv("DISPATCHER_CONFIG"), "configuration file (env DISPATCHER_CONFIG)")
	tmplDir := fs.String("templates", getenv("TEMPLATE_DIR"), "directory of template overrides (env TEMPLATE_DIR)")
	eventsPath := fs.String("events", "", "JSON lines of events and acknowledgements; - reads stdin")
	fromFlag := fs.String("from", "", "start of the simulation")
	untilFlag := fs.String("until", "", "end of the simulation (or an offset from --from)")
	output := fs.String("output", "text", "output format: text or json")
	zone := fs.String("zone", "", "time zone of the times read and printed (default: the configuration's)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *eventsPath == "" || *fromFlag == "" || *untilFlag == "" || fs.NArg() > 0 || (*output != "text" && *output != "json") {
		fs.Usage()
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(io.err, "dispatcher simulate:", err)
		return 1
	}
	a, err := loadApp(*config, *tmplDir)
	if err != nil {
		return fail(err)
	}
	loc := a.cfg.Location()
	if *zone != "" {
		if loc, err = time.LoadLocation(*zone); err != nil {
			return fail(fmt.Errorf("--zone: %w", err))
		}
	}
	from, err := parseWhen(*fromFlag, loc, time.Time{})
	if err != nil {
		return fail(fmt.Errorf("--from: %w", err))
	}
	until, err := parseWhen(*untilFlag, loc, from)
	if err != nil || !until.After(from) {
		return fail(fmt.Errorf("--until: want a time after --from (%v)", err))
	}
	inputs, err := readSimInputs(*eventsPath, io, loc, from)
	if err != nil {
		return fail(err)
	}
	begin := time.Now()
	e, err := sim.New(sim.Options{Config: a.cfg, Templates: a.tmpl, Start: from})
	if err != nil {
		return fail(err)
	}
	defer e.Close()
	if err := e.Run(ctx, inputs, until); err != nil {
		return fail(err)
	}
	wall := time.Since(begin)
	if *output == "json" {
		err = sim.WriteJSON(io.out, e.Records(), loc)
	} else {
		err = sim.WriteText(io.out, e.Records(), loc)
	}
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(io.err, "simulated %s (%s to %s) in %s: %d inputs, %d events handled, %d timers fired, %d notifications, %d records\n",
		until.Sub(from), sim.FormatTime(from, loc), sim.FormatTime(until, loc), wall.Round(time.Millisecond),
		len(inputs), e.Events, e.Timers, e.Notifications, len(e.Records()))
	return 0
}

// simLine is one line of a simulate events file that is not an event.
type simLine struct {
	Type   string   `json:"type"`
	At     string   `json:"at"`
	Ack    *sim.Ack `json:"ack"`
	SMSAck *sim.Ack `json:"sms_ack"`
}

// readSimInputs reads events (decoded as the pipeline will: an invalid
// one is refused here, with its line) and acknowledgements.
func readSimInputs(path string, io stdio, loc *time.Location, from time.Time) ([]sim.Input, error) {
	name, data, err := readInput(path, io.in)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	var out []sim.Input
	err = eachJSON(name, data, func(line int, raw json.RawMessage) error {
		in, err := simInput(raw, loc, from)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out = append(out, in)
		return nil
	})
	return out, err
}

func simInput(raw json.RawMessage, loc *time.Location, from time.Time) (sim.Input, error) {
	var l simLine
	if err := json.Unmarshal(raw, &l); err != nil {
		return sim.Input{}, err
	}
	if l.Type != "" {
		ev, err := event.Decode(raw)
		if err != nil {
			return sim.Input{}, err
		}
		return sim.Input{At: later(ev.OccurredAt, from), Case: ev.CaseID, Event: raw}, nil
	}
	at, err := parseWhen(l.At, loc, time.Time{})
	if err != nil {
		return sim.Input{}, fmt.Errorf("at: %w", err)
	}
	switch {
	case l.Ack != nil && l.Ack.Case != "" && l.Ack.Agency != "":
		l.Ack.Via = "api"
		return sim.Input{At: at, Ack: l.Ack}, nil
	case l.SMSAck != nil && l.SMSAck.Case != "" && l.SMSAck.Contact != "":
		l.SMSAck.Via = "sms"
		return sim.Input{At: at, Ack: l.SMSAck}, nil
	}
	return sim.Input{}, fmt.Errorf("want an event (with type), {\"at\", \"ack\": {case, agency}} or {\"at\", \"sms_ack\": {case, contact}}")
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}
