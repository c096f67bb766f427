package dispatcher

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/event"
)

// replayOutcome is what a redelivered event must get back: its original
// outcome marked duplicate, with the case's current deadlines.
func replayOutcome(first, current Outcome) Outcome {
	o := first
	o.Transition.Duplicate = true
	o.CheckinDue, o.ReassessDue, o.noTimers = current.CheckinDue, current.ReassessDue, false
	return o
}

// The outcome kept for a redelivery is compact (about half of the JSON
// array earlier versions kept), and a replay of every kind of event
// gets back the same outcome as the first application: levels, a move
// with the previous place, a stale event, a check-in, a catch-up with its
// missed count and first deadline, a close.
func TestStoreDuplicateGetsItsWholeOutcomeFromTheCompactRecord(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	op := ev("s1", event.CaseOpened, "C-SN", 1, event.Alto)
	op.Jurisdiction, op.ResponsibleUnit = palma, "pn-illes-balears"
	rel := ev("s2", event.CaseRelocated, "C-SN", 2, event.LevelNone)
	rel.Jurisdiction, rel.ResponsibleUnit = palma, "pn-illes-balears"
	rel.Relocation = &event.Relocation{To: herencia, ResponsibleUnit: "gc-ciudad-real"}
	rise := ev("s3", event.RiskAssessed, "C-SN", 4, event.Extremo)
	stale := ev("s4", event.RiskAssessed, "C-SN", 3, event.Medio)
	ci := ev("s5", event.CheckinRecorded, "C-SN", 5, event.LevelNone)
	ci.Checkin = &event.Checkin{Kind: event.CheckinPhone, Unit: "gc-ciudad-real"}
	evs := []event.Event{op, rel, rise, stale, ci}
	var firsts []Outcome
	for _, e := range evs {
		firsts = append(firsts, applyOne(t, s, e))
	}
	miss := ev("s6", event.CheckinMissed, "C-SN", 0, event.LevelNone)
	miss.Timer = &event.Timer{DueAt: firsts[4].CheckinDue}
	miss.OccurredAt = miss.Timer.DueAt.Add(7 * time.Hour)
	closed := ev("s7", event.CaseClosed, "C-SN", 6, event.LevelNone)
	for _, e := range []event.Event{miss, closed} {
		evs = append(evs, e)
		firsts = append(firsts, applyOne(t, s, e))
	}
	if !firsts[1].Transition.Moved || !firsts[3].Transition.Stale || firsts[5].Transition.Missed < 2 {
		t.Fatalf("the events did not make the outcomes this test needs: %+v", firsts)
	}
	for _, e := range evs {
		b, err := rdb.Get(ctx, seenKey(e.CaseID, e.ID)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(b, "\x1f") || len(b) > 110 { // the JSON array of these takes 170-200 bytes
			t.Errorf("the record kept for %s is not compact (%d bytes): %q", e.ID, len(b), b)
		}
	}
	current := firsts[len(firsts)-1]
	for i, e := range evs {
		got, want := applyOne(t, s, e), replayOutcome(firsts[i], current)
		if got != want {
			t.Errorf("replay of %s:\n got  %+v\n want %+v", e.ID, got, want)
		}
	}
}

// A place that holds the separator is kept as JSON, and a JSON array an
// earlier version kept is still read.
func TestStoreDuplicateReadsJSONRecords(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	odd := ev("j1", event.CaseOpened, "C-SJ", 1, event.Alto)
	odd.ResponsibleUnit = "unit\x1fwith-separator"
	first := applyOne(t, s, odd)
	if b, _ := rdb.Get(ctx, seenKey("C-SJ", "j1")).Result(); !strings.HasPrefix(b, "[") {
		t.Fatalf("a place holding the separator was kept as %q", b)
	}
	if got, want := applyOne(t, s, odd), replayOutcome(first, first); got != want {
		t.Fatalf("replay of a JSON record:\n got  %+v\n want %+v", got, want)
	}
	// An earlier version's record: the whole array, with the previous
	// place, under the same key.
	legacy := `["0","0","0","2","1","07040","07","IB","pn-illes-balears","13047","13","CM","gc-ciudad-real","1","7","1772359800000","1772359000000","0","0","1772359000000","3","1772350000000","1"]`
	rdb.Set(ctx, seenKey("C-SJ", "old-1"), legacy, time.Hour)
	o := applyOne(t, s, ev("old-1", event.RiskAssessed, "C-SJ", 7, event.Medio))
	tr := o.Transition
	if !tr.Duplicate || tr.To != event.Medio || !tr.Moved || tr.PreviousUnit != "pn-illes-balears" || tr.PreviousJurisdiction != palma ||
		o.Case.ResponsibleUnit != "gc-ciudad-real" || o.Case.Version != 7 || tr.Missed != 3 || tr.MissedSince.UnixMilli() != 1772350000000 {
		t.Fatalf("an earlier version's record read as %+v", o)
	}
}

// A compact record with the wrong number of values (a bug, or a format
// this version does not know) fails the apply, loudly, instead of being
// read as a wrong outcome.
func TestStoreDuplicateRefusesAnUnreadableRecord(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	for i, raw := range []string{"\x1f1\x1f2", strings.Repeat("\x1f", 25)} {
		id := "bad-" + string(rune('a'+i))
		rdb.Set(ctx, seenKey("C-SB", id), raw, time.Hour)
		if _, err := s.Apply(ctx, []event.Event{ev(id, event.RiskAssessed, "C-SB", int64(i+1), event.Medio)}); err == nil || !strings.Contains(err.Error(), "unreadable outcome record") {
			t.Errorf("record %q: %v, want an unreadable outcome record error", raw, err)
		}
	}
}
