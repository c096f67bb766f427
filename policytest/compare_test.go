package policytest

import (
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/sim"
)

func intp(n int) *int { return &n }

// compareOf runs the comparison on records and expectations alone.
func compareOf(exhaustive bool, recs []sim.Record, xs ...*Expectation) *Result {
	f := &File{Path: "t.yaml", Zone: time.UTC, Exhaustive: exhaustive, Expect: xs}
	r := &Result{File: f, Records: recs}
	r.compare()
	return r
}

var t0 = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)

func notification(contact, role string, step int) sim.Record {
	return sim.Record{At: t0, Kind: sim.KindNotification, Case: "C-1", Rule: "r", Step: step, Agency: "a", Contact: contact, Role: role, Channels: []string{"sms", "email"}}
}

// A vague expectation never takes the record a precise one needs: the
// precise ones are matched first, whatever their order in the file.
func TestCompareMostSpecificFirst(t *testing.T) {
	recs := []sim.Record{notification("c-duty", "duty", 1), notification("c-oncall", "on_call", 1)}
	vague := &Expectation{Line: 1, Kind: sim.KindNotification, At: t0, M: Match{Rule: "r"}}
	precise := &Expectation{Line: 2, Kind: sim.KindNotification, At: t0, M: Match{Rule: "r", Contact: "c-duty", Step: intp(1)}}
	if r := compareOf(true, recs, vague, precise); !r.Passed() {
		t.Errorf("problems: %+v", r.Problems)
	}
}

func TestCompareChannelsAndTime(t *testing.T) {
	recs := []sim.Record{notification("c", "duty", 1)}
	for _, c := range []struct {
		name string
		m    Match
		at   time.Time
		ok   bool
	}{
		{"one channel of the plan", Match{Channel: "email"}, t0, true},
		{"the plan in order", Match{Channels: []string{"sms", "email"}}, t0, true},
		{"the plan in another order", Match{Channels: []string{"email", "sms"}}, t0, false},
		{"a channel not planned", Match{Channel: "pager"}, t0, false},
		{"another step", Match{Step: intp(2)}, t0, false},
		{"round 0 given", Match{Round: intp(0)}, t0, true},
		{"a minute late", Match{}, t0.Add(time.Minute), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := compareOf(true, recs, &Expectation{Line: 3, Kind: sim.KindNotification, At: c.at, M: c.m})
			if r.Passed() != c.ok {
				t.Errorf("passed %v, want %v: %+v", r.Passed(), c.ok, r.Problems)
			}
		})
	}
}

// Exhaustive runs fail on a notification nobody expected; others do not,
// but a nothing window still catches what falls in it.
func TestCompareExhaustiveAndNothing(t *testing.T) {
	recs := []sim.Record{notification("c", "duty", 1)}
	if r := compareOf(true, recs); r.Passed() || r.Problems[0].Sign != "+" {
		t.Errorf("exhaustive: %+v", r.Problems)
	}
	if r := compareOf(false, recs); !r.Passed() {
		t.Errorf("not exhaustive: %+v", r.Problems)
	}
	window := &Expectation{Line: 4, Kind: "nothing", From: t0.Add(-time.Minute), Until: t0.Add(time.Minute), M: Match{Agency: "a"}}
	r := compareOf(false, recs, window)
	if r.Passed() || r.Problems[0].Sign != "!" || !strings.Contains(r.Problems[0].Hint, "[line 4]") {
		t.Errorf("nothing window: %+v", r.Problems)
	}
	other := &Expectation{Line: 5, Kind: "nothing", From: t0.Add(-time.Minute), Until: t0.Add(time.Minute), M: Match{Agency: "b"}}
	if r := compareOf(false, recs, other); !r.Passed() {
		t.Errorf("window of another agency: %+v", r.Problems)
	}
	after := &Expectation{Line: 6, Kind: "nothing", From: t0.Add(time.Second), Until: t0.Add(time.Hour)}
	if r := compareOf(false, recs, after); !r.Passed() {
		t.Errorf("window after the record: %+v", r.Problems)
	}
}

// Errors met in the run always fail it, expected or not.
func TestCompareErrorsFail(t *testing.T) {
	recs := []sim.Record{{At: t0, Kind: sim.KindError, Detail: "render risk_rise for sms: boom"}}
	if r := compareOf(false, recs); r.Passed() {
		t.Error("an error record passed")
	}
}
