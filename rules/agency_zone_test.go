package rules

import (
	"testing"
)

// An agency's time zone defaults to the top-level one; time_zone sets it.
func TestAgencyTimeZone(t *testing.T) {
	src := edit(t, "kind: coordinating_center\n", "kind: coordinating_center\n    time_zone: Atlantic/Canary\n")
	cfg, err := Parse([]byte("timezone: Europe/Madrid\n"+src), "test.yaml", testOpts)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.Agencies {
		want := "Europe/Madrid"
		if a.ID == cfg.Agencies[0].ID {
			want = "Atlantic/Canary"
		}
		if a.Location() == nil || a.Location().String() != want || a.TimeZone != want {
			t.Errorf("agency %s: zone %v (%q), want %s", a.ID, a.Location(), a.TimeZone, want)
		}
	}
}

// A bad top-level zone inherited by agencies is reported once, at
// timezone.
func TestInheritedBadZoneReportedOnce(t *testing.T) {
	ves := parseErrs(t, "timezone: Mars/Olympus\n"+baseConfig)
	n := 0
	for _, e := range ves {
		if e.Path == "timezone" {
			n++
		} else if len(e.Path) > 8 && e.Path[:8] == "agencies" {
			t.Errorf("inherited bad zone reported at %s: %v", e.Path, e)
		}
	}
	if n != 1 {
		t.Fatalf("timezone reported %d times: %v", n, ves)
	}
}
