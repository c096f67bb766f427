package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Deadlines and times are shown in the zone of the operator's agency: a
// Canary agency (Atlantic/Canary) sees one hour less than a peninsular
// one (Europe/Madrid, the configuration's zone), and its silence form is
// read in its zone too.
func TestTimesInTheAgencyZone(t *testing.T) {
	f := newFixture(t)
	// Both notified unit-a and unit-c; due at 09:10 UTC.
	e := escalation("EXP-C-0001", "alert-c-00001", "warning", false, "unit-c", "unit-a")
	if err := f.store.Save(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	cc, pageC := f.loggedIn(t, "op-c")
	ca, pageA := f.loggedIn(t, "op-a")
	if !strings.Contains(pageC, "30/11/2026 09:10") || !strings.Contains(pageC, "Atlantic/Canary") {
		t.Fatalf("op-c (Canary) not shown the deadline at 09:10 Atlantic/Canary:\n%s", pageC)
	}
	if !strings.Contains(pageA, "30/11/2026 10:10") || !strings.Contains(pageA, "Europe/Madrid") {
		t.Fatalf("op-a (peninsula) not shown the deadline at 10:10 Europe/Madrid:\n%s", pageA)
	}
	if _, tl := get(t, cc, f.srv.URL+"/console/escalations/alert-c-00001"); !strings.Contains(tl, "<time>30/11/2026 09:00:00</time>") {
		t.Errorf("op-c's timeline not in Atlantic/Canary:\n%s", tl)
	}
	if _, tl := get(t, ca, f.srv.URL+"/console/escalations/alert-c-00001"); !strings.Contains(tl, "<time>30/11/2026 10:00:00</time>") {
		t.Errorf("op-a's timeline not in Europe/Madrid:\n%s", tl)
	}
	if _, h := get(t, cc, f.srv.URL+"/console/history"); !strings.Contains(h, "30/11/2026 09:00") {
		t.Errorf("op-c's history not in Atlantic/Canary:\n%s", h)
	}
	// 10:00 in the Canaries is 10:00 UTC in November.
	form := url.Values{"csrf": {csrfOf(t, pageC)}, "agency": {"unit-c"}, "rule": {"late"}, "starts": {"2026-11-30T10:00"},
		"ends": {"2026-11-30T12:00"}, "reason": {"planned maintenance"}}
	if resp, _ := post(t, cc, f.srv.URL+"/console/silences", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("silence: %d", resp.StatusCode)
	}
	ss, _ := f.silences.List(context.Background(), f.clock())
	if len(ss) != 1 || !ss[0].StartsAt.Equal(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("silence read in the wrong zone: %+v", ss)
	}
}
