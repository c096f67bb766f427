package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// With Deadlines, NextDue reads again only the timer keys reported
// written (Touch) or all after Forget; otherwise it answers what it
// remembers, even when Redis says otherwise: whoever drives it must report
// every write (the simulator sees every command its Redis runs).
func TestTimerDeadlinesReadOnlyTouchedKeys(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.StartRedis(t).Client(t)
	d := NewTimerDeadlines()
	cached, plain := &Timers{Redis: rdb, Deadlines: d}, &Timers{Redis: rdb}
	base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	next := func(tm *Timers) time.Time {
		t.Helper()
		at, err := tm.NextDue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	expect := func(step string, cachedWant, plainWant time.Time) {
		t.Helper()
		if got := next(cached); !got.Equal(cachedWant) {
			t.Errorf("%s: with Deadlines, NextDue = %v, want %v", step, got, cachedWant)
		}
		if got := next(plain); !got.Equal(plainWant) {
			t.Errorf("%s: without, NextDue = %v, want %v", step, got, plainWant)
		}
	}
	add := func(key string, at time.Time, member string) {
		t.Helper()
		if err := rdb.ZAdd(ctx, key, redisZ(at, member)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	expect("no timers", time.Time{}, time.Time{})

	checkin := keyTimerCheckin.key("C-T1")
	add(checkin, base.Add(time.Hour), "C-T1")
	d.Touch(checkin)
	expect("a check-in deadline, reported", base.Add(time.Hour), base.Add(time.Hour))

	esc := keyTimerEscalation.key("C-T2|a1")
	add(esc, base.Add(10*time.Minute), "C-T2|a1")
	expect("an earlier escalation deadline, not reported", base.Add(time.Hour), base.Add(10*time.Minute))
	d.Touch(caseKey("C-T2"))
	expect("another key reported", base.Add(time.Hour), base.Add(10*time.Minute))
	d.Touch(esc)
	expect("the escalation's key reported", base.Add(10*time.Minute), base.Add(10*time.Minute))

	legacy := keyTimerReassess.legacy()
	add(legacy, base.Add(5*time.Minute), "C-T3")
	d.Touch(legacy)
	expect("an unsharded key of earlier versions", base.Add(5*time.Minute), base.Add(5*time.Minute))

	if err := rdb.Del(ctx, legacy, esc).Err(); err != nil {
		t.Fatal(err)
	}
	d.Forget()
	expect("keys removed, everything forgotten", base.Add(time.Hour), base.Add(time.Hour))
}

// A key written while it is being read is not remembered with what the
// read found: the next call reads it again.
func TestTimerDeadlinesTouchDuringRead(t *testing.T) {
	d := NewTimerDeadlines()
	key := keyTimerCheckin.shardKey(3)
	fs := []firstDeadline{{set: keyTimerCheckin, key: key}}
	idx, gen := d.unknown(fs)
	d.Touch(key)
	fs[0].at = time.UnixMilli(1_772_000_000_000)
	d.remember(fs, idx, gen)
	if idx, _ := d.unknown(fs); len(idx) != 1 {
		t.Fatalf("a key touched during its read was remembered (unknown: %v)", idx)
	}
	idx, gen = d.unknown(fs)
	d.remember(fs, idx, gen)
	fs[0].at = time.Time{}
	if idx, _ := d.unknown(fs); len(idx) != 0 || !fs[0].at.Equal(time.UnixMilli(1_772_000_000_000)) {
		t.Fatalf("an undisturbed read was not remembered (unknown: %v, at %v)", idx, fs[0].at)
	}
}
