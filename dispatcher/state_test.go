package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

var herencia = event.Jurisdiction{Municipality: "13047", Province: "13", Region: "CM"}
var palma = event.Jurisdiction{Municipality: "07040", Province: "07", Region: "IB"}

func ev(id string, typ event.Type, caseID string, version int64, lvl event.Level) event.Event {
	e := event.Event{
		ID: id, Type: typ, CaseID: caseID, Source: "viogen", Jurisdiction: herencia,
		ResponsibleUnit: "gc-ciudad-real", Version: version,
		OccurredAt: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(version) * time.Minute),
	}
	if lvl != event.LevelNone {
		e.Risk = &event.Risk{Level: lvl}
	}
	return e
}

func newTestStore(t *testing.T) (*Store, *redis.Client) {
	t.Helper()
	rdb := testenv.StartRedis(t).Client(t)
	return NewStore(rdb, time.Hour), rdb
}

func applyOne(t *testing.T, s *Store, e event.Event) Outcome {
	t.Helper()
	outs, err := s.Apply(context.Background(), []event.Event{e})
	if err != nil {
		t.Fatalf("apply %s: %v", e.ID, err)
	}
	return outs[0]
}

func TestStoreTransitions(t *testing.T) {
	s, _ := newTestStore(t)
	o := applyOne(t, s, ev("e1", event.CaseOpened, "C-1", 1, event.Medio))
	if o.Transition.From != event.LevelNone || o.Transition.To != event.Medio || !o.Transition.Rising {
		t.Fatalf("open: %+v", o.Transition)
	}
	o = applyOne(t, s, ev("e2", event.RiskAssessed, "C-1", 2, event.Extremo))
	if o.Transition.From != event.Medio || o.Transition.To != event.Extremo || !o.Transition.Rising || o.Case.Level != event.Extremo {
		t.Fatalf("rise: %+v", o)
	}
	o = applyOne(t, s, ev("e3", event.RiskAssessed, "C-1", 3, event.Alto))
	if !o.Transition.Falling || o.Transition.Rising || o.Case.Level != event.Alto {
		t.Fatalf("fall: %+v", o)
	}
	// An older assessment arriving late never downgrades or upgrades.
	o = applyOne(t, s, ev("e0", event.RiskAssessed, "C-1", 1, event.Bajo))
	if !o.Transition.Stale || o.Case.Level != event.Alto || o.Transition.From != event.Alto || o.Transition.To != event.Alto {
		t.Fatalf("stale: %+v", o)
	}
	// A redelivered event gets its original outcome back, marked duplicate.
	o = applyOne(t, s, ev("e2", event.RiskAssessed, "C-1", 2, event.Extremo))
	if !o.Transition.Duplicate || o.Transition.From != event.Medio || o.Transition.To != event.Extremo {
		t.Fatalf("dup: %+v", o)
	}
	c, ok, err := s.Case(context.Background(), "C-1")
	if err != nil || !ok || c.Level != event.Alto || c.Version != 3 {
		t.Fatalf("case: %+v %v %v", c, ok, err)
	}
}

func TestStoreLateRiskAfterNewerCheckin(t *testing.T) {
	s, _ := newTestStore(t)
	applyOne(t, s, ev("e1", event.CaseOpened, "C-2", 1, event.Medio))
	ci := ev("e5", event.CheckinRecorded, "C-2", 5, event.LevelNone)
	ci.Checkin = &event.Checkin{Kind: event.CheckinPhone, Unit: "gc-ciudad-real"}
	if o := applyOne(t, s, ci); o.Transition.Stale || o.Case.LastCheckinAt != ci.OccurredAt {
		t.Fatalf("checkin: %+v", o)
	}
	// v3 assessment arrives after v5 check-in: nothing newer set the level,
	// so the rise to extremo must take effect (and alert).
	o := applyOne(t, s, ev("e3", event.RiskAssessed, "C-2", 3, event.Extremo))
	if o.Transition.Stale || !o.Transition.Rising || o.Case.Level != event.Extremo || o.Case.Version != 5 {
		t.Fatalf("late rise: %+v", o)
	}
}

func TestStoreCloseAndReactivate(t *testing.T) {
	s, _ := newTestStore(t)
	applyOne(t, s, ev("e1", event.CaseOpened, "C-3", 1, event.Alto))
	cl := ev("e3", event.CaseClosed, "C-3", 3, event.LevelNone)
	if o := applyOne(t, s, cl); o.Case.Active {
		t.Fatalf("closed case still active: %+v", o)
	}
	re := ev("e4", event.CaseReactivated, "C-3", 4, event.LevelNone)
	if o := applyOne(t, s, re); !o.Case.Active || o.Case.Level != event.Alto {
		t.Fatalf("reactivated: %+v", o)
	}
}

func TestStoreMovedReportsPrevious(t *testing.T) {
	s, _ := newTestStore(t)
	op := ev("e1", event.CaseOpened, "C-4", 1, event.Alto)
	op.Jurisdiction, op.ResponsibleUnit = palma, "pn-illes-balears"
	applyOne(t, s, op)
	rel := ev("e2", event.CaseRelocated, "C-4", 2, event.LevelNone)
	rel.Jurisdiction, rel.ResponsibleUnit = palma, "pn-illes-balears"
	rel.Relocation = &event.Relocation{To: herencia, ResponsibleUnit: "gc-ciudad-real"}
	o := applyOne(t, s, rel)
	tr := o.Transition
	if !tr.Moved || tr.PreviousUnit != "pn-illes-balears" || tr.PreviousJurisdiction != palma ||
		o.Case.Jurisdiction != herencia || o.Case.ResponsibleUnit != "gc-ciudad-real" {
		t.Fatalf("moved: %+v", o)
	}
}

func TestStoreInternalEventsChangeNothing(t *testing.T) {
	s, _ := newTestStore(t)
	o := applyOne(t, s, ev("e1", event.CaseOpened, "C-5", 1, event.Extremo))
	miss := ev("t1", event.CheckinMissed, "C-5", 0, event.LevelNone)
	miss.OccurredAt = o.CheckinDue.Add(time.Second)
	miss.Timer = &event.Timer{DueAt: o.CheckinDue}
	if o := applyOne(t, s, miss); o.Transition.Stale || o.Case.Level != event.Extremo || o.Case.Version != 1 {
		t.Fatalf("internal: %+v", o)
	}
	// A later upstream event with an earlier time than the timer still applies.
	if o := applyOne(t, s, ev("e2", event.RiskAssessed, "C-5", 2, event.Alto)); o.Transition.Stale || o.Case.Level != event.Alto {
		t.Fatalf("after internal: %+v", o)
	}
}

func TestStoreRecoversFromScriptFlush(t *testing.T) {
	s, rdb := newTestStore(t)
	applyOne(t, s, ev("e1", event.CaseOpened, "C-6", 1, event.Bajo))
	if err := rdb.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if o := applyOne(t, s, ev("e2", event.RiskAssessed, "C-6", 2, event.Medio)); o.Case.Level != event.Medio {
		t.Fatalf("after flush: %+v", o)
	}
}

func TestStoreRedisDown(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	s := NewStore(rdb, time.Hour)
	r.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := s.Apply(ctx, []event.Event{ev("e1", event.CaseOpened, "C-7", 1, event.Bajo)}); err == nil {
		t.Fatal("want an error with redis down")
	}
}

// A late fact (bracelet alarm) is not stale: it still happened and must
// alert, routed by the case's current place.
func TestStoreLateFactIsNotStale(t *testing.T) {
	s, _ := newTestStore(t)
	applyOne(t, s, ev("e1", event.CaseOpened, "C-8", 1, event.Alto))
	applyOne(t, s, ev("e3", event.RiskAssessed, "C-8", 3, event.Extremo))
	al := ev("e2", event.DeviceAlarm, "C-8", 2, event.LevelNone)
	al.Alarm = &event.Alarm{Kind: event.AlarmTamper}
	o := applyOne(t, s, al)
	if o.Transition.Stale || o.Transition.From != event.Extremo || o.Transition.To != event.Extremo || o.Case.Version != 3 {
		t.Fatalf("late alarm: %+v", o)
	}
}

// A relocation of a case never seen before still reports where it was,
// so the old unit is told.
func TestStoreRelocationOfUnknownCaseIsMoved(t *testing.T) {
	s, _ := newTestStore(t)
	rel := ev("e1", event.CaseRelocated, "C-9", 4, event.LevelNone)
	rel.Jurisdiction, rel.ResponsibleUnit = palma, "pn-illes-balears"
	rel.Relocation = &event.Relocation{To: herencia, ResponsibleUnit: "gc-ciudad-real"}
	o := applyOne(t, s, rel)
	if !o.Transition.Moved || o.Transition.PreviousUnit != "pn-illes-balears" || o.Case.ResponsibleUnit != "gc-ciudad-real" {
		t.Fatalf("first-seen relocation: %+v", o)
	}
}

// Deadlines: open at extremo → contact due in 2h15m; a check-in resets
// the base; a rise from medio to extremo shortens it at once; a timer
// event for a deadline that moved is stale; a fired miss moves the next
// reminder one period on; closing clears both.
func TestStoreDeadlines(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	op := ev("d1", event.CaseOpened, "C-DL", 1, event.Medio)
	o := applyOne(t, s, op)
	if want := op.OccurredAt.Add(8 * 24 * time.Hour); !o.CheckinDue.Equal(want) {
		t.Fatalf("medio check-in due %v, want %v", o.CheckinDue, want)
	}
	if want := op.OccurredAt.Add(30 * 24 * time.Hour); !o.ReassessDue.Equal(want) {
		t.Fatalf("medio re-assessment due %v, want %v", o.ReassessDue, want)
	}
	rise := ev("d2", event.RiskAssessed, "C-DL", 2, event.Extremo)
	o = applyOne(t, s, rise)
	if want := rise.OccurredAt.Add(2*time.Hour + 15*time.Minute); !o.CheckinDue.Equal(want) {
		t.Fatalf("extremo check-in due %v, want %v (shortened at once)", o.CheckinDue, want)
	}
	score, err := keyTimerCheckin.score(ctx, rdb, "C-DL")
	if err != nil || int64(score) != o.CheckinDue.UnixMilli() {
		t.Fatalf("timer set holds %v (%v), want %v", score, err, o.CheckinDue.UnixMilli())
	}
	first := o.CheckinDue
	ci := ev("d3", event.CheckinRecorded, "C-DL", 3, event.LevelNone)
	ci.Checkin = &event.Checkin{Kind: event.CheckinVisit, Unit: "gc-ciudad-real"}
	ci.OccurredAt = first.Add(-time.Second) // one second before the deadline
	o = applyOne(t, s, ci)
	if want := ci.OccurredAt.Add(2*time.Hour + 15*time.Minute); !o.CheckinDue.Equal(want) {
		t.Fatalf("after check-in due %v, want %v", o.CheckinDue, want)
	}
	late := ev("t-old", event.CheckinMissed, "C-DL", 0, event.LevelNone)
	late.Timer = &event.Timer{DueAt: first}
	if o := applyOne(t, s, late); !o.Transition.Stale {
		t.Fatalf("a timer for a deadline the check-in moved must be stale: %+v", o)
	}
	second := o.CheckinDue
	miss := ev("t-new", event.CheckinMissed, "C-DL", 0, event.LevelNone)
	miss.Timer = &event.Timer{DueAt: second}
	o = applyOne(t, s, miss)
	if o.Transition.Stale || !o.CheckinDue.Equal(second.Add(2*time.Hour+15*time.Minute)) {
		t.Fatalf("a fired miss must move the reminder one period: %+v", o)
	}
	o = applyOne(t, s, ev("d4", event.CaseClosed, "C-DL", 4, event.LevelNone))
	if !o.CheckinDue.IsZero() || !o.ReassessDue.IsZero() {
		t.Fatalf("closed case keeps deadlines: %+v", o)
	}
	if n, _ := keyTimerCheckin.card(ctx, rdb); n != 0 {
		t.Fatalf("closed case still has a check-in timer")
	}
}

// A redelivered event must not move the case's deadlines back: its
// outcome carries the case's current deadlines (review finding: an old
// alarm re-sent after a rise to extremo set the 8-day medio deadline back).
func TestStoreDuplicateKeepsCurrentDeadlines(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	applyOne(t, s, ev("r1", event.CaseOpened, "C-RD", 1, event.Medio))
	alarm := ev("r2", event.DeviceAlarm, "C-RD", 2, event.LevelNone)
	alarm.Alarm = &event.Alarm{Kind: event.AlarmBattery}
	applyOne(t, s, alarm)
	rise := applyOne(t, s, ev("r3", event.RiskAssessed, "C-RD", 3, event.Extremo))
	dup := applyOne(t, s, alarm) // upstream re-sends the alarm
	if !dup.Transition.Duplicate || !dup.CheckinDue.Equal(rise.CheckinDue) {
		t.Fatalf("duplicate outcome deadline %v, want the current %v", dup.CheckinDue, rise.CheckinDue)
	}
	if score, _ := keyTimerCheckin.score(ctx, rdb, "C-RD"); int64(score) != rise.CheckinDue.UnixMilli() {
		t.Fatalf("timer moved back to %v", time.UnixMilli(int64(score)).UTC())
	}
	applyOne(t, s, ev("r4", event.CaseClosed, "C-RD", 4, event.LevelNone))
	reopen := applyOne(t, s, ev("r5", event.CaseReactivated, "C-RD", 5, event.LevelNone))
	applyOne(t, s, ev("r4", event.CaseClosed, "C-RD", 4, event.LevelNone)) // re-sent close
	if n, _ := keyTimerCheckin.card(ctx, rdb); n != 1 || reopen.CheckinDue.IsZero() {
		t.Fatalf("a re-sent close cleared the reactivated case's timer")
	}
}
