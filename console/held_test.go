package console

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/rules"
)

// heldFixture has silence s-a of unit-a holding back one alert of
// EXP-A-0009, and silence s-b of unit-b one of EXP-B-0009.
func heldFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	ctx := context.Background()
	now := f.clock()
	for _, x := range []struct{ id, agency, caseRef, alert string }{{"s-a", "unit-a", "EXP-A-0009", "alert-held-a1"}, {"s-b", "unit-b", "EXP-B-0009", "alert-held-b1"}} {
		s := &dispatcher.Silence{ID: x.id, Agency: x.agency, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour), Reason: "maintenance", Author: "op-a", CreatedAt: now}
		if err := f.silences.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
		a := rules.Alert{ID: x.alert, CaseID: x.caseRef, Rule: "late", Severity: "warning", EventType: event.CheckinMissed}
		if err := f.silences.RecordHeld(ctx, x.id, a, now.Add(-30*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// The silence links each held-back alert to its page, which says which
// silence held it back; another agency's is 404.
func TestHeldAlertPage(t *testing.T) {
	f := heldFixture(t)
	c, _ := f.loggedIn(t, "op-a")
	_, list := get(t, c, f.srv.URL+"/console/silences")
	link := `href="/console/silences/s-a/held/alert-held-a1"`
	if !strings.Contains(list, link) {
		t.Fatalf("held alert not linked from its silence:\n%s", list)
	}
	code, page := get(t, c, f.srv.URL+"/console/silences/s-a/held/alert-held-a1")
	for _, want := range []string{"EXP-A-0009", "late", "warning", "checkin.missed", "<time>30/11/2026 09:30:00</time>", `data-testid="held-by">s-a (`} {
		if !strings.Contains(page, want) {
			t.Errorf("held page lacks %q", want)
		}
	}
	if code != http.StatusOK || t.Failed() {
		t.Fatalf("held page %d:\n%s", code, page)
	}
	for _, u := range []string{"/console/silences/s-b/held/alert-held-b1", "/console/silences/s-a/held/alert-held-b1",
		"/console/silences/s-x/held/alert-held-a1", "/console/silences/s-a/held/alert-held-zz"} {
		if code, _ := get(t, c, f.srv.URL+u); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", u, code)
		}
	}
	cb, _ := f.loggedIn(t, "op-b")
	if code, _ := get(t, cb, f.srv.URL+"/console/silences/s-a/held/alert-held-a1"); code != http.StatusNotFound {
		t.Errorf("op-b sees unit-a's held alert: %d", code)
	}
}

// The history lists the held-back alerts of the scope, marked with their
// silence, among the escalations, newest first, and searchable.
func TestHistoryListsHeldAlerts(t *testing.T) {
	f := heldFixture(t)
	c, _ := f.loggedIn(t, "op-a")
	_, page := get(t, c, f.srv.URL+"/console/history")
	held := `<tr data-held="s-a">`
	i, j := strings.Index(page, held), strings.Index(page, `data-escalation="alert-a-00001"`)
	if i < 0 || j < 0 || i < j || !strings.Contains(page, `href="/console/silences/s-a/held/alert-held-a1">EXP-A-0009`) ||
		!strings.Contains(page, `data-testid="held-by">Held back by silence s-a<`) {
		t.Fatalf("held alert (08:30 UTC) not listed, unmarked, or not after the escalation opened at 09:00 UTC (newest first):\n%s", page)
	}
	if strings.Contains(page, "EXP-B-0009") {
		t.Fatal("another agency's held alert in the history")
	}
	if _, p := get(t, c, f.srv.URL+"/console/history?case=a-0009"); !strings.Contains(p, held) || strings.Contains(p, "EXP-A-0001") {
		t.Fatalf("search by case misses the held alert:\n%s", p)
	}
	// Older than 7 days: gone from the history (the silence, ended less
	// than 7 days ago, is still listed).
	f.advance(dispatcher.RecentWindow)
	c, _ = f.loggedIn(t, "op-a")
	if _, p := get(t, c, f.srv.URL+"/console/silences"); !strings.Contains(p, `data-silence="s-a"`) {
		t.Fatalf("silence s-a no longer listed:\n%s", p)
	}
	if code, p := get(t, c, f.srv.URL+"/console/history"); code != http.StatusOK || strings.Contains(p, held) {
		t.Fatalf("a held alert older than 7 days listed (%d):\n%s", code, p)
	}
}
