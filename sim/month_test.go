package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/rules"
	"github.com/viogen-alerts/dispatcher/templates"
)

// monthCases is how many synthetic cases the month runs, the first
// monthExtremo of them extremo (SIM_MONTH_EXTREMO: each is a check-in
// every two hours, the bulk of the work).
var monthCases, monthExtremo = 300, 3

// TestSimulatedMonth runs a month of the example configuration for 300
// cases (3 extremo, 27 alto, 120 medio, 150 bajo, in Herencia and Palma:
// far more extremo and alto than the national proportions)
// with their check-ins (one in ten skipped, so missed check-ins escalate),
// bracelet alarms and acknowledgements, and reports how long it took.
// docs/policy-tests.md records the figure. With SIM_MONTH_EVENTS=FILE it
// also writes the inputs as JSON lines for `dispatcher simulate`.
func TestSimulatedMonth(t *testing.T) {
	if testing.Short() || raceEnabled && os.Getenv("SIM_MONTH") == "" {
		t.Skip("a month of simulated time: not under -short or -race (SIM_MONTH=1 forces it)")
	}
	if n := os.Getenv("SIM_MONTH_EXTREMO"); n != "" {
		if _, err := fmt.Sscan(n, &monthExtremo); err != nil || monthExtremo > 30 {
			t.Fatalf("SIM_MONTH_EXTREMO=%q: want a number up to 30", n)
		}
	}
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rules.LoadFile("../deploy/config/viogen.yaml", rules.LoadOptions{Templates: tmpl.Has, TemplateChannel: tmpl.HasChannel})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, cfg.Location())
	until := start.AddDate(0, 1, 0)
	inputs := monthInputs(start, until)
	if path := os.Getenv("SIM_MONTH_EVENTS"); path != "" {
		writeInputs(t, path, inputs)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// One processor, as `dispatcher simulate` and `dispatcher test` run
		// (cmd/dispatcher/procs.go).
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	}
	begin := time.Now()
	e, err := New(Options{Config: cfg, Templates: tmpl, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Run(context.Background(), inputs, until); err != nil {
		t.Fatal(err)
	}
	took := time.Since(begin)
	t.Logf("simulated %s for %d cases (%d extremo) in %s on %d processors: %d inputs, %d events handled, %d timers fired, %d notifications, %d records",
		until.Sub(start), monthCases, monthExtremo, took.Round(time.Millisecond), runtime.GOMAXPROCS(0), len(inputs), e.Events, e.Timers, e.Notifications, len(e.Records()))
	if e.Timers == 0 || e.Notifications == 0 {
		t.Errorf("a month with skipped check-ins fired %d timers and sent %d notifications", e.Timers, e.Notifications)
	}
	for _, r := range e.Records() {
		if r.Kind == KindError || r.Kind == KindDeadLetter {
			t.Fatalf("%s", r.Text(cfg.Location()))
		}
	}
}

type place struct{ muni, prov, region, unit string }

var monthPlaces = []place{{"13047", "13", "CM", "gc-ciudad-real"}, {"07040", "07", "IB", "pn-illes-balears"}}

// monthInputs builds the synthetic month, deterministically.
func monthInputs(start, until time.Time) []Input {
	rng := rand.New(rand.NewPCG(12, 2026))
	var out []Input
	for i := range monthCases {
		level, every := "bajo", 30*24*time.Hour
		switch {
		case i < monthExtremo:
			level, every = "extremo", 2*time.Hour
		case i < 30:
			level, every = "alto", 24*time.Hour
		case i < 150:
			level, every = "medio", 7*24*time.Hour
		}
		id, p := fmt.Sprintf("C-SIM-%04d", i), monthPlaces[i%2]
		at := start.Add(time.Duration(rng.IntN(24*60)) * time.Minute)
		out = append(out, monthEvent(id, p, at, "case.opened", 0, fmt.Sprintf(`"risk":{"level":%q}`, level)))
		for n, t := 1, at.Add(every-5*time.Minute); t.Before(until); n, t = n+1, t.Add(every) {
			if rng.IntN(10) == 0 {
				continue // skipped: a missed check-in
			}
			out = append(out, monthEvent(id, p, t, "checkin.recorded", n, `"checkin":{"kind":"visit","unit":"`+p.unit+`"}`))
		}
		if i < 30 && rng.IntN(2) == 0 {
			t := start.Add(time.Duration(rng.IntN(29*24)) * time.Hour)
			out = append(out, monthEvent(id, p, t, "device.alarm", -1, `"alarm":{"kind":"proximity"}`))
			out = append(out, Input{At: t.Add(7 * time.Minute), Ack: &Ack{Case: id, Agency: p.unit, Via: "api"}})
		}
	}
	return out
}

func monthEvent(id string, p place, at time.Time, typ string, n int, extra string) Input {
	b := fmt.Sprintf(`{"id":"%s-%s-%d","type":%q,"case_id":%q,"occurred_at":%q,"source":"simulation",`+
		`"jurisdiction":{"municipality":%q,"province":%q,"region":%q},"responsible_unit":%q,%s}`,
		id, typ, n, typ, id, at.Format(time.RFC3339), p.muni, p.prov, p.region, p.unit, extra)
	return Input{At: at, Case: id, Event: []byte(b)}
}

func writeInputs(t *testing.T, path string, inputs []Input) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, in := range inputs {
		if in.Ack != nil {
			b, _ := json.Marshal(map[string]any{"at": in.At.Format(time.RFC3339), "ack": in.Ack})
			fmt.Fprintf(f, "%s\n", b)
			continue
		}
		fmt.Fprintf(f, "%s\n", in.Event)
	}
}
