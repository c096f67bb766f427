package sim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The simulator's shortcuts (lazyTTL, the timers' deadline cache) change
// nothing in a timeline. 40 days of 8 alto cases (3 under -race or
// -short), with events sent again
// inside and after the 30 days event ids are kept, give the same records
// as FastForward at every step and every timer key read at every step
// (the simulator before them).
func TestShortcutsKeepTheTimeline(t *testing.T) {
	defer func(c, x int) { monthCases, monthExtremo = c, x }(monthCases, monthExtremo)
	monthCases, monthExtremo = 8, 0
	if raceEnabled || testing.Short() {
		monthCases = 3
	}
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	until := start.AddDate(0, 0, 40)
	inputs := monthInputs(start, until)
	var opened []Input
	for _, in := range inputs {
		if in.Event != nil && strings.Contains(string(in.Event), `"case.opened"`) && len(opened) < 3 {
			opened = append(opened, in)
		}
	}
	for i, in := range opened { // sent again: a duplicate, then (event ids expired) not
		for _, after := range []time.Duration{20 * 24 * time.Hour, 33*24*time.Hour + time.Duration(i)*time.Hour} {
			again := in
			again.At = in.At.Add(after)
			inputs = append(inputs, again)
		}
	}
	run := func(before bool) []Record {
		e, cfg := exampleEngine(t, start)
		if before {
			e.redis.ttl.eager = true
			e.timers.Deadlines = nil
		}
		if err := e.Run(context.Background(), append([]Input(nil), inputs...), until); err != nil {
			t.Fatal(err)
		}
		for _, r := range e.Records() {
			if r.Kind == KindError || r.Kind == KindDeadLetter {
				t.Fatalf("%s", r.Text(cfg.Location()))
			}
		}
		return e.Records()
	}
	want, got := run(true), run(false)
	for i := range max(len(want), len(got)) {
		if i >= len(want) || i >= len(got) || want[i].Text(time.UTC) != got[i].Text(time.UTC) {
			t.Fatalf("timelines part at record %d of %d/%d:\nbefore: %s\nnow:    %s", i, len(want), len(got), text(want, i), text(got, i))
		}
	}
	resent := map[bool]int{}
	for _, r := range got {
		if r.Kind == KindEvent && r.Event == "case.opened" {
			resent[strings.Contains(r.Detail, "duplicate")]++
		}
	}
	if resent[true] != len(opened) || resent[false] != 2*len(opened)+(monthCases-len(opened)) {
		t.Errorf("case.opened records: %d duplicates, %d not; want %d and %d (event ids expire after 30 days)",
			resent[true], resent[false], len(opened), 2*len(opened)+monthCases-len(opened))
	}
}

func text(rs []Record, i int) string {
	if i >= len(rs) {
		return "(none)"
	}
	return rs[i].Text(time.UTC)
}

// A timer key that expires (none has a TTL today) is read again: the
// deadline cache hears of keys expired one by one and of walks.
func TestExpiredTimerKeyReadAgain(t *testing.T) {
	for _, walk := range []bool{false, true} {
		start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		e, _ := exampleEngine(t, start)
		e.redis.ttl.eager = walk
		ctx, key := context.Background(), "{timers:checkin:00}"
		if err := e.rdb.ZAdd(ctx, key, redis.Z{Score: float64(start.Add(time.Hour).UnixMilli()), Member: "C-X"}).Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.PExpire(ctx, key, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if next, err := e.timers.NextDue(ctx); err != nil || !next.Equal(start.Add(time.Hour)) {
			t.Fatalf("walk %v: next due %v, %v; want the hour's deadline", walk, next, err)
		}
		e.advance(start.Add(2 * time.Minute))
		if next, err := e.timers.NextDue(ctx); err != nil || !next.IsZero() {
			t.Errorf("walk %v: the key expired, yet next due %v, %v", walk, next, err)
		}
	}
}
