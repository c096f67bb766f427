package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/event"
)

// A check-in deadline whose timer fires after an outage counts every
// period it covers in one event, and the next deadline counts from the
// firing; an on-time miss moves it one period, as before; a check-in
// starts over from itself.
func TestStoreCatchesUpByCaseAfterAnOutage(t *testing.T) {
	s, _ := newTestStore(t)
	every := 2*time.Hour + 15*time.Minute // extremo: period + grace
	op := applyOne(t, s, ev("o1", event.CaseOpened, "C-CU", 1, event.Extremo))
	due := op.CheckinDue
	miss := ev("t1", event.CheckinMissed, "C-CU", 0, event.LevelNone)
	miss.Timer = &event.Timer{DueAt: due}
	miss.OccurredAt = due.Add(7 * time.Hour) // down for 7 hours: 3 more periods went by
	o := applyOne(t, s, miss)
	if o.Transition.Stale || o.Transition.Missed != 4 || !o.Transition.MissedSince.Equal(due) {
		t.Fatalf("late firing: stale %v, missed %d since %v; want 4 since %v", o.Transition.Stale, o.Transition.Missed, o.Transition.MissedSince, due)
	}
	if want := miss.OccurredAt.Add(every); !o.CheckinDue.Equal(want) {
		t.Fatalf("next deadline %v, want one period from the firing %v", o.CheckinDue, want)
	}
	if dup := applyOne(t, s, miss); !dup.Transition.Duplicate || dup.Transition.Missed != 4 || !dup.CheckinDue.Equal(o.CheckinDue) {
		t.Fatalf("a redelivered catch-up: %+v", dup)
	}
	next := o.CheckinDue
	onTime := ev("t2", event.CheckinMissed, "C-CU", 0, event.LevelNone)
	onTime.Timer = &event.Timer{DueAt: next}
	onTime.OccurredAt = next.Add(300 * time.Millisecond)
	o = applyOne(t, s, onTime)
	if o.Transition.Missed != 1 || !o.CheckinDue.Equal(next.Add(every)) {
		t.Fatalf("on-time miss after a catch-up: missed %d, next %v; want 1, %v", o.Transition.Missed, o.CheckinDue, next.Add(every))
	}
	ci := ev("c1", event.CheckinRecorded, "C-CU", 2, event.LevelNone)
	ci.Checkin = &event.Checkin{Kind: event.CheckinVisit, Unit: "gc-ciudad-real"}
	ci.OccurredAt = o.CheckinDue.Add(-time.Minute)
	o = applyOne(t, s, ci)
	if want := ci.OccurredAt.Add(every); !o.CheckinDue.Equal(want) {
		t.Fatalf("after a check-in: next %v, want %v", o.CheckinDue, want)
	}
}

// The same for re-assessments: one overdue event for the whole outage.
func TestStoreCatchesUpReassessmentsAfterAnOutage(t *testing.T) {
	s, _ := newTestStore(t)
	period := 72 * time.Hour // extremo
	op := applyOne(t, s, ev("o1", event.CaseOpened, "C-CR", 1, event.Extremo))
	over := ev("t1", event.ReassessmentOverdue, "C-CR", 0, event.LevelNone)
	over.Timer = &event.Timer{DueAt: op.ReassessDue}
	over.OccurredAt = op.ReassessDue.Add(10 * 24 * time.Hour)
	o := applyOne(t, s, over)
	if o.Transition.Missed != 4 || !o.Transition.MissedSince.Equal(op.ReassessDue) || !o.ReassessDue.Equal(over.OccurredAt.Add(period)) {
		t.Fatalf("missed %d since %v, next %v; want 4 since %v, next %v", o.Transition.Missed, o.Transition.MissedSince,
			o.ReassessDue, op.ReassessDue, over.OccurredAt.Add(period))
	}
}

// After a month without the timers running, an extremo case gets one
// missed-check-in alert saying how many periods it missed and since when,
// not one per 2h15 period since the deadline (~320); and firing again at
// the same moment finds nothing due.
func TestMissedCheckinsAfterAMonthDownAlertOnce(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	clock := newFakeNow(t0)
	p := startPipeline(t, clock.Now)
	every, grace := p.ladder.Rules.Checkin(event.Extremo)
	op := ev("m1", event.CaseOpened, "C-CM1", 1, event.Extremo)
	op.OccurredAt = t0
	p.publish(t, op)
	p.waitProcessed(t)
	due := t0.Add(every + grace)
	back := due.Add(30 * 24 * time.Hour)
	clock.Set(back)
	if n, err := p.timers.FireDue(context.Background(), keyTimerCheckin); err != nil || n != 1 {
		t.Fatalf("fired %d (%v), want 1", n, err)
	}
	p.waitProcessed(t)
	for range 3 {
		if n, err := p.timers.FireDue(context.Background(), keyTimerCheckin); err != nil || n != 0 {
			t.Fatalf("fired %d (%v) again at the same moment, want 0: the next deadline must count from now", n, err)
		}
	}
	got := checkinMissed(readIntents(t, p.brokers), "C-CM1")
	if len(got) == 0 {
		t.Fatal("no missed-check-in intent")
	}
	want := 1 + int(back.Sub(due)/(every+grace))
	for _, in := range got {
		if in.Missed != want || !in.MissedSince.Equal(due) || in.AlertID != got[0].AlertID {
			t.Fatalf("intent %s: missed %d since %v (alert %s); want one alert, %d since %v", in.ID, in.Missed, in.MissedSince, in.AlertID, want, due)
		}
	}
	score, err := keyTimerCheckin.score(context.Background(), p.store.rdb, "C-CM1")
	if err != nil || int64(score) != back.Add(every+grace).UnixMilli() {
		t.Fatalf("next deadline %v (%v), want %v", time.UnixMilli(int64(score)).UTC(), err, back.Add(every+grace))
	}
}
