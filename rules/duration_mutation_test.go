package rules

import (
	"testing"
	"time"
)

// The day count's bounds are inclusive: 0d and 3650d read, -1d and 3651d
// do not (killed mutants: `n < 0` made `n <= 0`, `n > 3650` made `>=`).
func TestParseDurationDayBounds(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"0d":      0,
		"0d12h":   12 * time.Hour,
		"1d":      24 * time.Hour,
		"3650d":   3650 * 24 * time.Hour,
		"3650d1h": 3650*24*time.Hour + time.Hour,
	} {
		got, err := ParseDuration(s)
		if err != nil || got.Std() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", s, got.Std(), err, want)
		}
	}
	for _, s := range []string{"-1d", "-0d-1h", "3651d", "1d-1h"} {
		if d, err := ParseDuration(s); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", s, d.Std())
		}
	}
}

// Empty input is an error, not a panic (killed mutant: `len(b) > 0` made
// `>= 0` indexed b[0]).
func TestDurationUnmarshalJSONEmpty(t *testing.T) {
	var d Duration
	if err := d.UnmarshalJSON(nil); err == nil {
		t.Error("UnmarshalJSON(nil) = nil, want an error")
	}
}
