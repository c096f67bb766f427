package templates

import (
	"strings"
	"testing"
	"time"
)

// A timer alert that covers several missed periods (fired after an
// outage) says how many and since when, in every locale and channel; an
// on-time one (1 period) says nothing of it.
func TestTimerAlertsSayHowManyPeriodsWereMissed(t *testing.T) {
	s := mustNew(t, "")
	since := time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC) // 02:30 in Madrid, the night clocks go back
	want := map[string]string{"es": "3 plazos vencidos desde 02:30 25/10", "ca": "3 terminis passats des de 02:30 25/10",
		"en": "3 deadlines missed since 02:30 25/10"}
	for _, name := range []string{"checkin_missed", "reassessment_overdue"} {
		for loc, text := range want {
			for _, ch := range []string{"sms", "email", "pager", "webhook"} {
				d := Data{AlertRef: "0b1c2d3e4f5a6b7c", CaseRef: "C-TST-0001", Severity: "error", Level: "alto",
					Missed: 3, MissedSince: since}
				r, err := s.Render(name, ch, loc, d)
				if err != nil {
					t.Fatalf("%s/%s/%s: %v", name, loc, ch, err)
				}
				if got := r.Subject + "\n" + r.Body; !strings.Contains(got, text) {
					t.Errorf("%s/%s/%s does not say %q:\n%s", name, loc, ch, text, got)
				}
				d.Missed = 1
				r, _ = s.Render(name, ch, loc, d)
				if got := r.Subject + "\n" + r.Body; strings.Contains(got, text[2:]) || strings.Contains(got, "25/10") {
					t.Errorf("%s/%s/%s on time mentions missed periods:\n%s", name, loc, ch, got)
				}
			}
		}
	}
}
