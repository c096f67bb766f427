package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/internal/providertest"
)

// The expected notifications are computed here from the configuration and
// the events alone; check compares them with what the provider accepted
// and what the audit topic recorded.

// configYAML: two responsible units, one per province, each with one SMS
// contact on call; a coordinating center as fallback agency (its number
// receives only notices, which this model never expects); one critical
// rule on a rise to extremo; one policy step with no acknowledgement
// awaited. Each alert is exactly one SMS, to the unit of its case.
// Synthetic numbers and ids.
const configYAML = `# e2e test configuration (synthetic)
timezone: Europe/Madrid
locale: es
fallback_agency: e2e-centro
agencies:
  - id: e2e-centro
    name: Centro de Coordinacion E2E
    kind: coordinating_center
    contacts:
      - {id: e2e-centro-sala, role: duty, sms: "+34600000090"}
  - id: e2e-unidad-cr
    name: Unidad E2E Ciudad Real
    kind: responsible_unit
    serves: {provinces: ["13"]}
    contacts:
      - {id: e2e-cr-guardia, role: on_call, sms: "+34600000001"}
      - {id: e2e-cr-sala, role: duty, sms: "+34600000002"}
  - id: e2e-unidad-ib
    name: Unidad E2E Illes Balears
    kind: responsible_unit
    serves: {provinces: ["07"]}
    contacts:
      - {id: e2e-ib-guardia, role: on_call, sms: "+34600000011"}
      - {id: e2e-ib-sala, role: duty, sms: "+34600000012"}
policies:
  - id: e2e-extremo
    steps:
      - notify:
          - {agency: responsible, role: on_call, via: [sms]}
rules:
  - id: e2e-rise-extremo
    when: 'event.type in ["risk.assessed", "case.opened"] && transition.rising && transition.to == EXTREMO'
    policy: e2e-extremo
    template: risk_rise
    severity: critical
    critical: true
`

// model is what the configuration implies, written down independently of
// the dispatcher: which rule fires and whom it reaches.
type model struct {
	rule     string
	onCall   map[string]string // responsible unit -> on-call number
	contacts map[string]string // number -> contact id
}

func defaultModel() model {
	return model{rule: "e2e-rise-extremo",
		onCall:   map[string]string{"e2e-unidad-cr": "+34600000001", "e2e-unidad-ib": "+34600000011"},
		contacts: map[string]string{"+34600000001": "e2e-cr-guardia", "+34600000011": "e2e-ib-guardia"},
	}
}

// notif is one expected notification: an alert to one number.
type notif struct{ alert, to string }

// alertID is the documented alert id (docs/configuration.md): the first
// 16 hex digits of SHA-256(event id, NUL, rule id).
func alertID(eventID, rule string) string {
	h := sha256.Sum256([]byte(eventID + "\x00" + rule))
	return hex.EncodeToString(h[:8])
}

// expected maps every notification the events must produce to its case.
func (m model) expected(evs []caseEvent) map[notif]string {
	out := make(map[notif]string, len(evs))
	for _, e := range evs {
		out[notif{alertID(e.ID, m.rule), m.onCall[e.ResponsibleUnit]}] = e.CaseID
	}
	return out
}

// ---------------------------------------------------------------------------
// Events

type caseEvent struct {
	ID              string       `json:"id"`
	Type            string       `json:"type"`
	CaseID          string       `json:"case_id"`
	OccurredAt      string       `json:"occurred_at"`
	Source          string       `json:"source"`
	Jurisdiction    jurisdiction `json:"jurisdiction"`
	ResponsibleUnit string       `json:"responsible_unit"`
	Version         int          `json:"version"`
	Risk            risk         `json:"risk"`
}

type jurisdiction struct {
	Municipality string `json:"municipality"`
	Province     string `json:"province"`
	Region       string `json:"region"`
}

type risk struct {
	Level    string `json:"level"`
	Previous string `json:"previous,omitempty"`
}

// extremoEvents are n assessments at extremo (from alto) of distinct
// synthetic cases (C-<tag><000000>), alternately in Herencia (13047) and
// Palma (07040): each is one alert, one SMS to its unit's on-call number.
func extremoEvents(tag string, from, n int) []caseEvent {
	places := []struct {
		j    jurisdiction
		unit string
	}{
		{jurisdiction{Municipality: "13047", Province: "13", Region: "CM"}, "e2e-unidad-cr"},
		{jurisdiction{Municipality: "07040", Province: "07", Region: "IB"}, "e2e-unidad-ib"},
	}
	out := make([]caseEvent, n)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := range out {
		c := fmt.Sprintf("C-%s%06d", tag, from+i)
		pl := places[i%2]
		out[i] = caseEvent{ID: "evt-" + c + "-1", Type: "risk.assessed", CaseID: c, OccurredAt: now, Source: "viogen",
			Jurisdiction: pl.j, ResponsibleUnit: pl.unit, Version: 1, Risk: risk{Level: "extremo", Previous: "alto"}}
	}
	return out
}

// ---------------------------------------------------------------------------
// Audit records and the check against the model

// result is the part of an audit record (dispatcher/audit.go) we check.
type result struct {
	IntentID   string `json:"intent_id"`
	AlertID    string `json:"alert_id"`
	CaseRef    string `json:"case_ref"`
	ContactID  string `json:"contact_id"`
	Channel    string `json:"channel"`
	Outcome    string `json:"outcome"`
	ProviderID string `json:"provider_id"`
}

func (s *stack) results(t *testing.T) []result {
	t.Helper()
	rs, err := s.resultsErr()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func (s *stack) resultsErr() ([]result, error) {
	msgs, err := s.readTopicErr("notifications.results")
	if err != nil {
		return nil, err
	}
	out := make([]result, 0, len(msgs))
	for _, m := range msgs {
		var r result
		if err := json.Unmarshal(m.Value, &r); err != nil {
			return nil, fmt.Errorf("audit record at %d/%d: %w", m.Partition, m.Offset, err)
		}
		out = append(out, r)
	}
	return out, nil
}

var refRe = regexp.MustCompile(`\bRef ([0-9a-f]{16})\b`)

// report compares what the provider accepted and what was audited with
// the expected notifications.
type report struct {
	expected   int
	accepted   int // messages the provider accepted, duplicates included
	lost       []notif
	duplicates map[notif]int // accepted more than once: how many times
	unexpected []string      // accepted messages the model does not expect
	// unaudited: expected notifications accepted at least once without a
	// sent audit record carrying one of their sids.
	unaudited []notif
	// sidsUnaudited: accepted sids without a sent audit record, split by
	// why that may be acceptable.
	sidsClientGone int      // the client hung up before the answer: it never knew the sid
	goneAudited    int      // ... and yet the sid is audited (should not happen)
	sidsCrash      int      // answered less than auditGrace before its process was killed
	sidsMissing    []string // answered to a process killed auditGrace or more later
	sidsPending    []string // answered to a process still running: may yet be audited
	auditMismatch  []string // a sent record whose alert or contact does not match the sid's message
}

// auditGrace: an answer this close before a kill may die with the process
// before it is recorded (then the send is repeated and the new sid
// audited). An answer received longer before a kill was known to the
// process and must have been recorded. 2 s ran out twice on 2026-12-01
// in full make test runs under the race detector (answers 2.03 s and
// 3.17 s before a kill, nothing lost: the send went again): recording
// takes a few round trips that a loaded machine can stretch, and this is
// not a speed bound. 5 s ran out once on 2026-12-02 in a full make test
// (the hand-off kill test: an answer 5.5 s before a kill, nothing lost,
// the send went again and was audited), hence 10 s.
const auditGrace = 10 * time.Second

// check builds the report; kills are the SIGKILL times, in order.
func (m model) check(exp map[notif]string, answers []providertest.TwilioAnswer, results []result, kills []time.Time) report {
	rep := report{expected: len(exp), accepted: len(answers), duplicates: map[notif]int{}}
	sidsOf := map[notif][]string{}
	sidMsg := map[string]notif{}
	for _, a := range answers {
		ref := refRe.FindStringSubmatch(a.Body)
		n := notif{to: a.To}
		if ref != nil {
			n.alert = ref[1]
		}
		if _, ok := exp[n]; !ok {
			rep.unexpected = append(rep.unexpected, fmt.Sprintf("to %s: %q", a.To, a.Body))
			continue
		}
		sidsOf[n] = append(sidsOf[n], a.Sid)
		sidMsg[a.Sid] = n
	}
	sent := map[string]result{}
	for _, r := range results {
		if r.Outcome != "sent" || r.ProviderID == "" {
			continue
		}
		sent[r.ProviderID] = r
		if n, ok := sidMsg[r.ProviderID]; ok && (r.AlertID != n.alert || r.ContactID != m.contacts[n.to] || r.Channel != "sms") {
			rep.auditMismatch = append(rep.auditMismatch, fmt.Sprintf("sid %s: record %+v, message %+v", r.ProviderID, r, n))
		}
	}
	for n := range exp {
		sids := sidsOf[n]
		switch {
		case len(sids) == 0:
			rep.lost = append(rep.lost, n)
			continue
		case len(sids) > 1:
			rep.duplicates[n] = len(sids)
		}
		audited := false
		for _, sid := range sids {
			_, ok := sent[sid]
			audited = audited || ok
		}
		if !audited {
			rep.unaudited = append(rep.unaudited, n)
		}
	}
	for _, a := range answers {
		if _, ok := sidMsg[a.Sid]; !ok {
			continue
		}
		if _, ok := sent[a.Sid]; ok {
			if a.ClientGone {
				rep.goneAudited++
			}
			continue
		}
		i := sort.Search(len(kills), func(i int) bool { return !kills[i].Before(a.Answered) })
		switch {
		case a.ClientGone:
			rep.sidsClientGone++
		case i < len(kills) && kills[i].Sub(a.Answered) < auditGrace:
			rep.sidsCrash++
		case i == len(kills):
			rep.sidsPending = append(rep.sidsPending, fmt.Sprintf("%s (%s, answered %s ago)",
				a.Sid, sidMsg[a.Sid].alert, time.Since(a.Answered).Round(time.Millisecond)))
		default:
			rep.sidsMissing = append(rep.sidsMissing, fmt.Sprintf("%s (%s, answered %s before kill %d)",
				a.Sid, sidMsg[a.Sid].alert, kills[i].Sub(a.Answered).Round(time.Millisecond), i+1))
		}
	}
	sortNotifs(rep.lost)
	sortNotifs(rep.unaudited)
	return rep
}

// complete is true when nothing is lost or unaudited and no sid
// answered to a running process awaits its audit record.
func (r report) complete() bool {
	return len(r.lost) == 0 && len(r.unaudited) == 0 && len(r.sidsPending) == 0
}

func (r report) dupCount() (notifs, extra int) {
	for _, c := range r.duplicates {
		notifs++
		extra += c - 1
	}
	return notifs, extra
}

// assert fails the test on losses, unaudited notifications or sids and
// unexpected messages, and logs duplicates without failing.
func (r report) assert(t *testing.T, exp map[notif]string) {
	t.Helper()
	dn, dx := r.dupCount()
	t.Logf("expected %d notifications; provider accepted %d messages; LOST %d; DUPLICATES %d notifications (%d extra messages); "+
		"unexpected %d; unaudited notifications %d; accepted sids without audit: %d client gone, %d in a crash window, %d missing, %d pending",
		r.expected, r.accepted, len(r.lost), dn, dx, len(r.unexpected), len(r.unaudited),
		r.sidsClientGone, r.sidsCrash, len(r.sidsMissing), len(r.sidsPending))
	if dn > 0 {
		t.Logf("duplicates (first 10): %s", firstDups(r.duplicates, exp, 10))
	}
	if len(r.lost) > 0 {
		t.Errorf("LOST %d of %d notifications (never accepted by the provider), first ones: %s",
			len(r.lost), r.expected, describe(r.lost, exp, 20))
	}
	if len(r.unaudited) > 0 {
		t.Errorf("%d accepted notifications have no audit record with outcome sent for any of their sids: %s",
			len(r.unaudited), describe(r.unaudited, exp, 20))
	}
	if len(r.sidsMissing) > 0 {
		t.Errorf("%d sids answered to a live process (not within %s of a kill) were never audited: %s",
			len(r.sidsMissing), auditGrace, strings.Join(first(r.sidsMissing, 20), ", "))
	}
	if len(r.sidsPending) > 0 {
		t.Errorf("%d sids answered to the running process are not audited yet: %s",
			len(r.sidsPending), strings.Join(first(r.sidsPending, 20), ", "))
	}
	if len(r.auditMismatch) > 0 {
		t.Errorf("%d sent records do not match the message of their sid: %s",
			len(r.auditMismatch), strings.Join(first(r.auditMismatch, 5), "; "))
	}
	if len(r.unexpected) > 0 {
		t.Errorf("%d accepted messages are not in the expected set (notices? wrong numbers?): %s",
			len(r.unexpected), strings.Join(first(r.unexpected, 5), "; "))
	}
}

func sortNotifs(ns []notif) {
	sort.Slice(ns, func(i, j int) bool {
		if ns[i].alert != ns[j].alert {
			return ns[i].alert < ns[j].alert
		}
		return ns[i].to < ns[j].to
	})
}

func describe(ns []notif, exp map[notif]string, n int) string {
	var parts []string
	for _, x := range first(ns, n) {
		parts = append(parts, fmt.Sprintf("%s/%s->%s", exp[x], x.alert, x.to))
	}
	if len(ns) > n {
		parts = append(parts, fmt.Sprintf("... (%d more)", len(ns)-n))
	}
	return strings.Join(parts, ", ")
}

func firstDups(d map[notif]int, exp map[notif]string, n int) string {
	ns := make([]notif, 0, len(d))
	for x := range d {
		ns = append(ns, x)
	}
	sortNotifs(ns)
	var parts []string
	for _, x := range first(ns, n) {
		parts = append(parts, fmt.Sprintf("%s->%s x%d", exp[x], x.to, d[x]))
	}
	return strings.Join(parts, ", ")
}

func first[T any](xs []T, n int) []T {
	if len(xs) > n {
		return xs[:n]
	}
	return xs
}
