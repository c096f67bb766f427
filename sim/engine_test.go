package sim

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/rules"
	"github.com/viogen-alerts/dispatcher/templates"
)

func exampleEngine(t *testing.T, start time.Time) (*Engine, *rules.Config) {
	t.Helper()
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rules.LoadFile("../deploy/config/viogen.yaml", rules.LoadOptions{Templates: tmpl.Has, TemplateChannel: tmpl.HasChannel})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Config: cfg, Templates: tmpl, Start: start.In(cfg.Location())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e, cfg
}

// The virtual clock moves the embedded Redis's TTLs: a suppression window
// (order-breach: 10m) holds a second alert back inside it and lets a
// third through once it ran out. Windows are half-open: exactly 10m later
// is outside (real Redis keeps a key until the millisecond after).
func TestSuppressionWindowFollowsVirtualClock(t *testing.T) {
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	e, _ := exampleEngine(t, start)
	in := []Input{
		monthEvent("C-HER-S1", monthPlaces[0], start, "breach.reported", 1, `"breach":{"channel":"cometa"}`),
		monthEvent("C-HER-S1", monthPlaces[0], start.Add(9*time.Minute), "breach.reported", 2, `"breach":{"channel":"cometa"}`),
		monthEvent("C-HER-S1", monthPlaces[0], start.Add(10*time.Minute), "breach.reported", 3, `"breach":{"channel":"cometa"}`),
	}
	if err := e.Run(context.Background(), in, start.Add(11*time.Minute)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range e.Records() {
		if r.Kind == KindDecision || r.Kind == KindSuppressed {
			got = append(got, fmt.Sprintf("%s %s", r.At.Sub(start), r.Kind))
		}
	}
	want := []string{"0s decision", "9m0s suppressed", "10m0s decision"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("decisions %v, want %v", got, want)
	}
}

// Inputs at an instant are handled before the timers due then: a
// check-in at the very deadline is on time.
func TestInputBeforeTimerAtTheSameInstant(t *testing.T) {
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	e, _ := exampleEngine(t, start)
	due := start.Add(7*24*time.Hour + 24*time.Hour) // medio: every 7d, grace 1d
	in := []Input{
		monthEvent("C-HER-S2", monthPlaces[0], start, "case.opened", 1, `"risk":{"level":"medio"}`),
		monthEvent("C-HER-S2", monthPlaces[0], due, "checkin.recorded", 2, `"checkin":{"kind":"phone","unit":"gc-ciudad-real"}`),
	}
	if err := e.Run(context.Background(), in, due.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, r := range e.Records() {
		if r.Kind == KindTimer || r.Kind == KindNotification {
			t.Errorf("%s", r.Text(time.UTC))
		}
	}
}
