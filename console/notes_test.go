package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/viogen-alerts/dispatcher/dispatcher"
)

// An operator's note is shown on the timeline with its author and time,
// and published on the audit trail with the operator id.
func TestNoteAddedShownAndAudited(t *testing.T) {
	f := newFixture(t)
	c, _ := f.loggedIn(t, "op-center")
	tl := "/console/escalations/alert-a-00001"
	_, page := get(t, c, f.srv.URL+tl)
	if !strings.Contains(page, `data-testid="add-note"`) || !strings.Contains(page, "DNI/NIE") {
		t.Fatalf("no note form (saying what is refused) on the timeline:\n%s", page)
	}
	resp, _ := post(t, c, f.srv.URL+tl+"/notes", url.Values{"csrf": {csrfOf(t, page)}, "note": {"  Patrulla avisada, revisar a las 10:30  "}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tl+"?flash=note#notes" {
		t.Fatalf("add note: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page = get(t, c, f.srv.URL+tl+"?flash=note")
	// 09:00 UTC is 10:00 in the configuration's zone (Europe/Madrid).
	if !strings.Contains(page, "<strong>op-center</strong> (unit-a), <time>30/11/2026 10:00:00</time></p><p>Patrulla avisada, revisar a las 10:30</p>") {
		t.Fatalf("note not on the timeline:\n%s", page)
	}
	rs := f.sink.records(t)
	if len(rs) != 1 {
		t.Fatalf("audit records %+v", rs)
	}
	r := rs[0]
	if r.Outcome != dispatcher.OutcomeNote || r.Operator != "op-center" || r.AlertID != "alert-a-00001" || r.CaseRef != "EXP-A-0001" ||
		r.AgencyID != "unit-a" || r.NoteID == "" || r.NoteSHA256 == "" {
		t.Fatalf("audit record %+v", r)
	}
	e, _ := f.store.ByID(context.Background(), "alert-a-00001")
	ns, err := f.store.Notes(context.Background(), e)
	if err != nil || len(ns) != 1 || ns[0].ID != r.NoteID || ns[0].Operator != "op-center" {
		t.Fatalf("stored notes %+v %v", ns, err)
	}
}

// Notes holding personal-looking data, empty or too long, without the
// CSRF token, by a viewer or outside the scope are refused: nothing is
// stored or published.
func TestNoteRefused(t *testing.T) {
	f := newFixture(t)
	c, page := f.loggedIn(t, "op-a")
	tok := csrfOf(t, page)
	tl := f.srv.URL + "/console/escalations/alert-a-00001"
	for _, text := range []string{"llamar al 600 123 456", "+34600000001", "escribir a persona@example.org", "DNI 12345678Z",
		"NIE X-1234567-L", "", strings.Repeat("a", noteMaxLen+1)} {
		resp, body := post(t, c, tl+"/notes", url.Values{"csrf": {tok}, "note": {text}})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `data-testid="note-error"`) {
			t.Errorf("note %q: %d, want 422 with the reason", text, resp.StatusCode)
		}
		if text != "" && strings.Contains(body, text) {
			t.Errorf("the refused note %q is shown back on the page", text)
		}
	}
	if resp, _ := post(t, c, tl+"/notes", url.Values{"note": {"sin token"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("note without csrf: %d, want 403", resp.StatusCode)
	}
	if resp, _ := post(t, c, f.srv.URL+"/console/escalations/alert-b-00001/notes", url.Values{"csrf": {tok}, "note": {"otra unidad"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("note on another agency's escalation: %d, want 404", resp.StatusCode)
	}
	cv, pv := f.loggedIn(t, "view-a")
	if _, tlv := get(t, cv, tl); strings.Contains(tlv, `data-testid="add-note"`) {
		t.Error("the viewer is offered the note form")
	}
	if resp, _ := post(t, cv, tl+"/notes", url.Values{"csrf": {csrfOf(t, pv)}, "note": {"desde un visor"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("note by a viewer: %d, want 403", resp.StatusCode)
	}
	if rs := f.sink.records(t); len(rs) != 0 {
		t.Fatalf("refused notes published: %+v", rs)
	}
	e, _ := f.store.ByID(context.Background(), "alert-a-00001")
	if ns, _ := f.store.Notes(context.Background(), e); len(ns) != 0 {
		t.Fatalf("refused notes stored: %+v", ns)
	}
}

func TestLooksPersonal(t *testing.T) {
	for s, want := range map[string]bool{
		"600123456": true, "600 12 34 56": true, "(+34) 600-123-456": true, "971.123.456": true,
		"a.b@example.org": true, "12345678Z": true, "12345678-z": true, "Y 1234567 X": true, "z1234567r": true,
		"C-SIM-0001": false, "EXP-A-0001 y EXP-A-0002": false, "municipio 13047": false, "30/11/2026 10:30": false,
		"patrulla a las 10:30, turno 2": false, "alert-a-00001": false, "@turno": false,
	} {
		if got := looksPersonal(s); got != want {
			t.Errorf("looksPersonal(%q) = %v, want %v", s, got, want)
		}
	}
}
