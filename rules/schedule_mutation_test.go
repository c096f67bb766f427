package rules

import (
	"testing"
	"time"
)

// showings of a skipped and of a repeated local time, and closest's ties
// (killed mutants: the `len(shown) == 0` test for the jump negated, the
// tie-break `d < bestD` made `<=`).
func TestShowingsAcrossDST(t *testing.T) {
	madrid, err := time.LoadLocation("Europe/Madrid")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	// 02:30 on 29 March 2026 does not exist in Madrid: the clock jumps
	// from 02:00 CET to 03:00 CEST at 01:00 UTC.
	shown, jump := showings(time.Date(2026, 3, 29, 2, 30, 0, 0, time.UTC), madrid)
	if len(shown) != 0 || !jump.Equal(time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("skipped hour: shown %v, jump %v; want none and 01:00 UTC", shown, jump)
	}
	// 02:30 on 25 October 2026 is shown twice: at 00:30 and 01:30 UTC.
	shown, _ = showings(time.Date(2026, 10, 25, 2, 30, 0, 0, time.UTC), madrid)
	want := []time.Time{time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC)}
	if len(shown) != 2 || !shown[0].Equal(want[0]) || !shown[1].Equal(want[1]) {
		t.Errorf("repeated hour: shown %v, want %v", shown, want)
	}
	// An ordinary time is shown once.
	shown, _ = showings(time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC), madrid)
	if len(shown) != 1 || !shown[0].Equal(time.Date(2026, 6, 1, 7, 0, 0, 0, time.UTC)) {
		t.Errorf("ordinary time: shown %v", shown)
	}
}

func TestClosestTiesGoToTheFirst(t *testing.T) {
	if got := closest("ab", []string{"ac", "ad"}, 2); got != "ac" {
		t.Errorf("closest = %q, want the first of the tied candidates", got)
	}
	if got := closest("abcd", []string{"wxyz"}, 2); got != "" {
		t.Errorf("closest = %q, want none within 2 edits", got)
	}
}
