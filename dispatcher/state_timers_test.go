package dispatcher

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/event"
)

// zremCalls reads how many ZREM the server has run.
func zremCalls(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "cmdstat_zrem:calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}

// TestTimersOnlyTouchedForCasesWithDeadlines, against a real redis-server:
// an event on a case that has no deadline before or after it (no level
// yet, here a device alarm) sends no timer command; a case given a level
// gets its timers, and closing it clears them. A clearing that was lost
// (the event applied, its timer update not: a crash in between) is not
// made good by a later event that finds no deadline, but by the replay of
// the event itself, which is a duplicate and always updates its timers.
func TestTimersOnlyTouchedForCasesWithDeadlines(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	has := func(set shardedSet, caseID string) bool {
		t.Helper()
		_, err := set.score(ctx, rdb, caseID)
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		return err == nil
	}

	before := zremCalls(t, rdb)
	alarm := ev("tt-1", event.DeviceAlarm, "C-TT1", 1, event.LevelNone)
	alarm.Alarm = &event.Alarm{Kind: "proximity"}
	applyOne(t, s, alarm)
	if n := zremCalls(t, rdb) - before; n != 0 {
		t.Errorf("an alarm on a case without deadlines sent %d ZREM, want none", n)
	}
	if has(keyTimerCheckin, "C-TT1") || has(keyTimerReassess, "C-TT1") {
		t.Fatal("a case without a level has timers")
	}

	applyOne(t, s, ev("tt-2", event.RiskAssessed, "C-TT1", 2, event.Extremo))
	if !has(keyTimerCheckin, "C-TT1") || !has(keyTimerReassess, "C-TT1") {
		t.Fatal("a case at extremo has no check-in or re-assessment timer")
	}
	closed := ev("tt-3", event.CaseClosed, "C-TT1", 3, event.LevelNone)
	applyOne(t, s, closed)
	if has(keyTimerCheckin, "C-TT1") || has(keyTimerReassess, "C-TT1") {
		t.Fatal("closing the case left its timers")
	}

	// The close's timer update lost: its timers are back as before it.
	pipe := rdb.Pipeline()
	keyTimerCheckin.zAdd(ctx, pipe, "C-TT1", 1)
	keyTimerReassess.zAdd(ctx, pipe, "C-TT1", 1)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	later := ev("tt-4", event.DeviceAlarm, "C-TT1", 4, event.LevelNone)
	later.Alarm = &event.Alarm{Kind: "proximity"}
	applyOne(t, s, later)
	if !has(keyTimerCheckin, "C-TT1") {
		t.Fatal("a later event without deadlines touched the timers (the test no longer shows the replay does it)")
	}
	if o := applyOne(t, s, closed); !o.Transition.Duplicate {
		t.Fatal("the replayed close is not a duplicate")
	}
	if has(keyTimerCheckin, "C-TT1") || has(keyTimerReassess, "C-TT1") {
		t.Error("the replayed close did not clear the timers its first application left")
	}
}

// TestStoreDuplicateChangesNothing, against a real redis-server: replaying
// events (one applied, one stale) leaves the case hash exactly as it was,
// stale count included, and each replay is a duplicate with its original
// outcome.
func TestStoreDuplicateChangesNothing(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	newer := ev("dc-2", event.RiskAssessed, "C-DC", 2, event.Alto)
	older := ev("dc-1", event.RiskAssessed, "C-DC", 1, event.Medio)
	first := []Outcome{applyOne(t, s, newer), applyOne(t, s, older)}
	if !first[1].Transition.Stale {
		t.Fatal("the older assessment was not stale")
	}
	before, err := rdb.HGetAll(ctx, caseKey("C-DC")).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range []event.Event{newer, older} {
		o := applyOne(t, s, e)
		if !o.Transition.Duplicate {
			t.Errorf("replay of %s is not a duplicate", e.ID)
		}
		o.Transition.Duplicate = false
		if o.Transition != first[i].Transition || o.Case != first[i].Case {
			t.Errorf("replay of %s: %+v, first %+v", e.ID, o, first[i])
		}
	}
	after, err := rdb.HGetAll(ctx, caseKey("C-DC")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("replays changed the case hash: %v, was %v", after, before)
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("replays changed %s: %s, was %s", k, after[k], v)
		}
	}
}
