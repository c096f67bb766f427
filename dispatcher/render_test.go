package dispatcher

import (
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/templates"
)

// A digest lists its cases by reference and has no case reference of its
// own; every channel renders it and the SMS fits one segment.
func TestRenderDigest(t *testing.T) {
	set, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation("Europe/Madrid")
	due := time.Date(2026, 3, 10, 11, 0, 0, 0, loc)
	in := Intent{Kind: KindDigest, AlertID: "0f1e2d3c4b5a6978", Template: "patrol_digest", Severity: "info",
		CaseRef: "digest-patrol-reminders", AgencyName: "Policía Local de Herencia", Locale: "es",
		Digest: []templates.DigestItem{{CaseRef: "C-HER-0001", Level: "extremo", DueAt: due}, {CaseRef: "C-HER-0004", Level: "alto", DueAt: due.Add(3 * time.Hour)}}}
	for _, ch := range templates.Channels {
		r, err := Render(set, in, ch, loc)
		if err != nil {
			t.Fatalf("%s: %v", ch, err)
		}
		text := r.Subject + "\n" + r.Body
		if strings.Contains(text, "digest-") {
			t.Errorf("%s shows the digest's internal reference: %q", ch, text)
		}
		if ch == templates.ChannelEmail && (!strings.Contains(text, "C-HER-0001") || !strings.Contains(text, "C-HER-0004")) {
			t.Errorf("email digest does not list its cases: %q", text)
		}
		if ch == templates.ChannelSMS {
			if n, _ := templates.GSM7Segments(r.Body); n != 1 {
				t.Errorf("digest SMS is %d segments: %q", n, r.Body)
			}
		}
	}
}
