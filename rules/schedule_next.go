package rules

import (
	"sort"
	"time"

	"github.com/robfig/cron/v3"
)

// Daylight-saving rules of schedules (docs/schedules.md). robfig/cron
// reads the expression in the zone but on a day the clock changes it
// drops a time the clock skips (02:30 on the last Sunday of March in
// Europe/Madrid) and fires twice a time the clock shows twice (02:30 on
// the last Sunday of October). NextFire reads the expression on the local
// wall clock instead: every matching local time fires once; a skipped one
// fires when the clock jumps (03:00 there), a repeated one at its first
// showing only.

// NextFire returns the first firing strictly after t, DST-correct as
// above; zero when the expression never matches again. Schedules such as
// @every, which count elapsed time, are passed through unchanged.
func (s *Schedule) NextFire(t time.Time) time.Time {
	spec, ok := s.sched.(*cron.SpecSchedule)
	if !ok {
		if s.sched == nil {
			return time.Time{}
		}
		return s.sched.Next(t)
	}
	loc := s.zone()
	wall := *spec // the same fields, read on a clock without DST
	wall.Location = time.UTC
	w := wallOf(t, loc)
	// The first candidate is normally the answer: a wall time later than
	// t's own reading is shown after t (see the proof in fireAt).
	for range 4 {
		if w = wall.Next(w); w.IsZero() {
			return w
		}
		if at, ok := fireAt(w, t, loc); ok {
			return at
		}
	}
	return time.Time{}
}

// LocalDay returns the local calendar day of t in the schedule's zone as
// [start, end): from the first instant of that date to the first of the
// next. It is 23 or 25 hours long on the days the clock changes.
func (s *Schedule) LocalDay(t time.Time) (start, end time.Time) {
	loc := s.zone()
	lt := t.In(loc)
	day := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, time.UTC)
	return firstShowing(day, loc), firstShowing(day.AddDate(0, 0, 1), loc)
}

func (s *Schedule) zone() *time.Location {
	if s.loc != nil {
		return s.loc
	}
	return time.UTC
}

// wallOf is t's local reading in loc, written as a UTC time: arithmetic
// on it is wall-clock arithmetic, without DST.
func wallOf(t time.Time, loc *time.Location) time.Time {
	lt := t.In(loc)
	return time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), lt.Minute(), lt.Second(), lt.Nanosecond(), time.UTC)
}

// fireAt is the instant the wall time w fires, given that the previous
// firing (or the start) was at after and wall(after) < w: its first
// showing after `after`, or, when the clock skips w, the instant it jumps.
// Walls only go back at a fall-back, so a w later than after's reading is
// shown after `after` (in the repeated hour, at its second showing when
// after is already past the first: a restart in that hour; the wall-clock
// lock of the dispatcher keeps that from sending twice).
func fireAt(w, after time.Time, loc *time.Location) (time.Time, bool) {
	shown, jump := showings(w, loc)
	for _, at := range shown {
		if at.After(after) {
			return at, true
		}
	}
	if len(shown) == 0 && jump.After(after) {
		return jump, true
	}
	return time.Time{}, false
}

// firstShowing is the first instant loc's clock shows w, or the instant
// it jumps over w.
func firstShowing(w time.Time, loc *time.Location) time.Time {
	shown, jump := showings(w, loc)
	if len(shown) > 0 {
		return shown[0]
	}
	return jump
}

// showings lists, earliest first, the instants at which loc's clock shows
// the wall time w (a UTC-written local reading): one on most days, two in
// a repeated hour, none in a skipped one, and then jump is the instant the
// clock skips over w. Only the offsets of the zone period around w and of
// its neighbours can show it, so those three are tried.
func showings(w time.Time, loc *time.Location) (shown []time.Time, jump time.Time) {
	guess := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc)
	start, end := guess.ZoneBounds()
	probes := []time.Time{guess}
	if !start.IsZero() {
		probes = append(probes, start.Add(-time.Nanosecond))
	}
	if !end.IsZero() {
		probes = append(probes, end)
	}
	for _, p := range probes {
		_, off := p.Zone()
		at := w.Add(-time.Duration(off) * time.Second).In(loc)
		if wallOf(at, loc).Equal(w) && !hasInstant(shown, at) {
			shown = append(shown, at)
		}
	}
	sort.Slice(shown, func(i, j int) bool { return shown[i].Before(shown[j]) })
	if len(shown) == 0 {
		// The guess lies on one side of the jump; its zone period ends or
		// starts there.
		if wallOf(guess, loc).After(w) {
			jump = start
		} else {
			jump = end
		}
	}
	return shown, jump
}

func hasInstant(ts []time.Time, t time.Time) bool {
	for _, x := range ts {
		if x.Equal(t) {
			return true
		}
	}
	return false
}
