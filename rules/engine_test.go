package rules

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/event"
)

const exampleConfig = "../deploy/config/viogen.yaml"

// exampleTemplates are the template names the templates package provides.
var exampleTemplates = templatesKnown("risk_rise", "checkin_missed", "reassessment_overdue", "device_alarm",
	"aggressor_release", "protection_order", "relocation", "unrouted", "breach", "escalation_unacked", "patrol_digest")

var (
	exampleOnce sync.Once
	exampleCfg  *Config
	exampleErr  error
)

func loadExample(t testing.TB) *Config {
	t.Helper()
	exampleOnce.Do(func() {
		exampleCfg, exampleErr = LoadFile(exampleConfig, LoadOptions{Templates: exampleTemplates})
	})
	if exampleErr != nil {
		t.Fatal(exampleErr)
	}
	return exampleCfg
}

var (
	herencia = event.Jurisdiction{Municipality: "13047", Province: "13", Region: "CM"}
	palma    = event.Jurisdiction{Municipality: "07040", Province: "07", Region: "IB"}
	madrid   = event.Jurisdiction{Municipality: "28079", Province: "28", Region: "MD"}
	t0       = time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)
)

func caseAt(j event.Jurisdiction, unit string, l event.Level) event.Case {
	return event.Case{ID: "case-0001", Level: l, Jurisdiction: j, ResponsibleUnit: unit, Active: true}
}

func ev(typ event.Type, c event.Case) event.Event {
	return event.Event{ID: "ev-" + string(typ), Type: typ, CaseID: c.ID, OccurredAt: t0, Source: "viogen",
		Jurisdiction: c.Jurisdiction, ResponsibleUnit: c.ResponsibleUnit}
}

func withRisk(e event.Event, from, to event.Level) event.Event {
	e.Risk = &event.Risk{Level: to, Previous: from}
	return e
}

func withAlarm(e event.Event, kind string) event.Event {
	d := 250
	e.Source = "cometa"
	e.Alarm = &event.Alarm{Kind: kind, DistanceM: &d}
	return e
}

func withTimer(e event.Event) event.Event {
	e.Source = "dispatcher"
	e.Timer = &event.Timer{DueAt: t0}
	return e
}

func inactive(c event.Case) event.Case { c.Active = false; return c }

// describe renders targets compactly: contact[via|fallback], "!" marks
// an unrouted target.
func describe(ts []Target) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		s := t.ContactID + "[" + strings.Join(t.Channels, ",")
		if len(t.Fallback) > 0 {
			s += "|" + strings.Join(t.Fallback, ",")
		}
		s += "]"
		if t.Unrouted {
			s = "!" + s
		}
		parts[i] = s
	}
	return strings.Join(parts, " ")
}

func ruleIDs(as []Alert) string {
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.Rule
	}
	return strings.Join(ids, ",")
}

type evalCase struct {
	name  string
	ev    event.Event
	tr    event.Transition
	c     event.Case
	rules string // matching rules, in order
	// step0 describes the first alert's step-0 targets ("" = not checked).
	step0    string
	unrouted bool
}

func moved(from event.Jurisdiction, fromUnit string) event.Transition {
	return event.Transition{Moved: true, PreviousJurisdiction: from, PreviousUnit: fromUnit}
}

func evalCases() []evalCase {
	hAlto := caseAt(herencia, "gc-ciudad-real", event.Alto)
	hMedio := caseAt(herencia, "gc-ciudad-real", event.Medio)
	pExtremo := caseAt(palma, "pn-illes-balears", event.Extremo)
	pMedio := caseAt(palma, "pn-illes-balears", event.Medio)
	hToPalma := caseAt(palma, "pn-illes-balears", event.Alto)

	release := ev(event.PenitentiaryRelease, hAlto)
	release.Source = "penitentiary"
	release.Release = &event.Release{EffectiveAt: t0, DestinationMunicipality: "07040"}
	releaseNowhere := release
	releaseNowhere.Release = &event.Release{EffectiveAt: t0, DestinationMunicipality: "28079"}

	reloc := ev(event.CaseRelocated, hToPalma)
	reloc.Relocation = &event.Relocation{To: palma, ResponsibleUnit: "pn-illes-balears"}
	// The same move when the state stage has not applied it: the case is
	// still in Herencia.
	relocPending := ev(event.CaseRelocated, hAlto)
	relocPending.Relocation = &event.Relocation{To: palma, ResponsibleUnit: "pn-illes-balears"}

	po := ev(event.ProtectionOrderIssued, pMedio)
	po.Source = "court"
	po.ProtectionOrder = &event.ProtectionOrder{Court: "court-1", Measures: []string{"alejamiento"}}

	return []evalCase{
		{name: "risk rises to alto, Herencia", ev: withRisk(ev(event.RiskAssessed, hAlto), event.Medio, event.Alto),
			tr: event.NewTransition(event.Medio, event.Alto), c: hAlto, rules: "risk-rises-to-alto",
			step0: "gc-cr-guardia[sms|email] gc-cr-sala[email] pl-herencia-guardia[sms] imcm-coordinacion[email]"},
		{name: "risk rises to extremo, Palma", ev: withRisk(ev(event.RiskAssessed, pExtremo), event.Alto, event.Extremo),
			tr: event.NewTransition(event.Alto, event.Extremo), c: pExtremo, rules: "risk-rises-to-extremo",
			step0: "pn-ib-guardia[pager,sms|email] pn-ib-sala[sms|email] pl-palma-guardia[pager,sms] ibd-coordinacio[email]"},
		{name: "new case opened at alto", ev: withRisk(ev(event.CaseOpened, hAlto), event.LevelNone, event.Alto),
			tr: event.NewTransition(event.LevelNone, event.Alto), c: hAlto, rules: "risk-rises-to-alto"},
		{name: "risk falls", ev: withRisk(ev(event.RiskAssessed, hAlto), event.Extremo, event.Alto),
			tr: event.NewTransition(event.Extremo, event.Alto), c: hAlto, rules: ""},
		{name: "risk rises to medio only", ev: withRisk(ev(event.RiskAssessed, hMedio), event.Bajo, event.Medio),
			tr: event.NewTransition(event.Bajo, event.Medio), c: hMedio, rules: ""},
		{name: "same level reassessed", ev: withRisk(ev(event.RiskAssessed, hAlto), event.Alto, event.Alto),
			tr: event.NewTransition(event.Alto, event.Alto), c: hAlto, rules: ""},
		{name: "checkin missed, medio", ev: withTimer(ev(event.CheckinMissed, hMedio)), c: hMedio,
			rules: "checkin-missed", step0: "gc-cr-sala[email|sms]"},
		{name: "checkin missed, alto", ev: withTimer(ev(event.CheckinMissed, hAlto)), c: hAlto,
			rules: "checkin-missed-high", step0: "gc-cr-guardia[sms|email] gc-cr-sala[sms,email]"},
		{name: "checkin missed, closed case", ev: withTimer(ev(event.CheckinMissed, hAlto)), c: inactive(hAlto), rules: ""},
		{name: "reassessment overdue, medio", ev: withTimer(ev(event.ReassessmentOverdue, pMedio)), c: pMedio,
			rules: "reassessment-overdue", step0: "pn-ib-sala[email|sms]"},
		{name: "reassessment overdue, extremo", ev: withTimer(ev(event.ReassessmentOverdue, pExtremo)), c: pExtremo,
			rules: "reassessment-overdue-high"},
		{name: "bracelet proximity, Palma", ev: withAlarm(ev(event.DeviceAlarm, pExtremo), event.AlarmProximity), c: pExtremo,
			rules: "bracelet-proximity", step0: "pl-palma-guardia[pager,sms] pn-ib-guardia[pager,sms|email]"},
		{name: "bracelet tamper, Herencia", ev: withAlarm(ev(event.DeviceAlarm, hAlto), event.AlarmTamper), c: hAlto,
			rules: "bracelet-tamper", step0: "pl-herencia-guardia[pager,sms] gc-cr-guardia[pager,sms|email]"},
		{name: "bracelet panic", ev: withAlarm(ev(event.DeviceAlarm, pExtremo), event.AlarmPanic), c: pExtremo, rules: "bracelet-panic"},
		{name: "bracelet battery", ev: withAlarm(ev(event.DeviceAlarm, pMedio), event.AlarmBattery), c: pMedio,
			rules: "bracelet-battery", step0: "pn-ib-sala[sms,email]"},
		{name: "release to Palma: responsible unit and the destination's police", ev: release, c: hAlto, rules: "aggressor-release",
			step0: "gc-cr-guardia[sms|email] pl-palma-guardia[sms] pn-ib-sala[sms,email]"},
		{name: "release to a place no agency serves", ev: releaseNowhere, c: hAlto, rules: "aggressor-release", unrouted: true,
			step0: "gc-cr-guardia[sms|email] !ses-viogen-sala[sms,email]"},
		{name: "protection order issued, Palma", ev: po, c: pMedio, rules: "protection-order-issued",
			step0: "ibd-coordinacio[email|sms] pn-ib-sala[email] consell-mallorca-atencio[email]"},
		{name: "protection order expired, Herencia", ev: ev(event.ProtectionOrderExpired, hMedio), c: hMedio, rules: "protection-order-expired",
			step0: "imcm-coordinacion[email|sms] gc-cr-sala[email] cm-herencia-atencion[email]"},
		{name: "relocation Herencia to Palma: old and new unit", ev: reloc, tr: moved(herencia, "gc-ciudad-real"), c: hToPalma,
			rules: "relocation",
			step0: "gc-cr-sala[sms,email] pn-ib-sala[sms,email] pl-herencia-reten[email] pl-palma-sala[email] consell-mallorca-atencio[email]"},
		{name: "relocation not yet applied to the case", ev: relocPending, c: hAlto, rules: "relocation",
			step0: "gc-cr-sala[sms,email] pn-ib-sala[sms,email] pl-herencia-reten[email] pl-palma-sala[email] consell-mallorca-atencio[email]"},
		{name: "relocation within the same unit and place", ev: ev(event.CaseRelocated, hAlto), tr: moved(herencia, "gc-ciudad-real"),
			c: hAlto, rules: "relocation", step0: "gc-cr-sala[sms,email] pl-herencia-reten[email] cm-herencia-atencion[email]"},
		{name: "breach", ev: ev(event.BreachReported, hAlto), c: hAlto, rules: "order-breach",
			step0: "gc-cr-guardia[pager,sms|email] pl-herencia-guardia[sms]"},
		{name: "unknown municipality goes to the fallback, unrouted",
			ev: withRisk(ev(event.RiskAssessed, caseAt(madrid, "gc-ciudad-real", event.Alto)), event.Medio, event.Alto),
			tr: event.NewTransition(event.Medio, event.Alto), c: caseAt(madrid, "gc-ciudad-real", event.Alto),
			rules: "risk-rises-to-alto,unrouted-case", unrouted: true,
			step0: "gc-cr-guardia[sms|email] gc-cr-sala[email] !ses-viogen-sala[email]"},
		{name: "unknown unit goes to the fallback, unrouted",
			ev: withRisk(ev(event.RiskAssessed, caseAt(herencia, "gc-nowhere", event.Alto)), event.Medio, event.Alto),
			tr: event.NewTransition(event.Medio, event.Alto), c: caseAt(herencia, "gc-nowhere", event.Alto),
			rules: "risk-rises-to-alto,unrouted-case", unrouted: true,
			step0: "!ses-viogen-guardia[sms] !ses-viogen-sala[email] pl-herencia-guardia[sms] imcm-coordinacion[email]"},
		{name: "unit without a contact for the role goes to the fallback, unrouted",
			ev: withRisk(ev(event.RiskAssessed, caseAt(herencia, "imcm", event.Alto)), event.Medio, event.Alto),
			tr: event.NewTransition(event.Medio, event.Alto), c: caseAt(herencia, "imcm", event.Alto),
			rules: "risk-rises-to-alto", unrouted: true,
			step0: "!ses-viogen-guardia[sms] imcm-coordinacion[email] pl-herencia-guardia[sms]"},
		{name: "unknown unit on a closed case raises nothing", ev: ev(event.CaseClosed, caseAt(madrid, "gc-nowhere", event.Bajo)),
			c: inactive(caseAt(madrid, "gc-nowhere", event.Bajo)), rules: ""},
		{name: "unrouted case notice", ev: ev(event.IncidentReported, caseAt(madrid, "gc-nowhere", event.Medio)),
			c: caseAt(madrid, "gc-nowhere", event.Medio), rules: "unrouted-case", step0: "ses-viogen-sala[email|sms]"},
		{name: "escalation timeout, alto", ev: withTimer(ev(event.EscalationTimeout, hAlto)), c: hAlto, rules: "escalation-unacked",
			step0: "imcm-coordinacion[email] gc-cr-mando[email]"},
		{name: "escalation timeout, medio", ev: withTimer(ev(event.EscalationTimeout, hMedio)), c: hMedio, rules: ""},
		{name: "check-in recorded", ev: ev(event.CheckinRecorded, hAlto), c: hAlto, rules: ""},
		{name: "duplicate transition", ev: withRisk(ev(event.RiskAssessed, hAlto), event.Medio, event.Alto),
			tr: event.Transition{From: event.Medio, To: event.Alto, Rising: true, Duplicate: true}, c: hAlto, rules: ""},
		{name: "stale transition", ev: withAlarm(ev(event.DeviceAlarm, hAlto), event.AlarmPanic),
			tr: event.Transition{Stale: true}, c: hAlto, rules: ""},
	}
}

func TestEvaluateExampleConfig(t *testing.T) {
	cfg := loadExample(t)
	eng := NewEngine(cfg)
	for _, tc := range evalCases() {
		t.Run(tc.name, func(t *testing.T) {
			alerts, err := eng.Evaluate(tc.ev, tc.tr, tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if got := ruleIDs(alerts); got != tc.rules {
				t.Fatalf("rules %q, want %q", got, tc.rules)
			}
			if len(alerts) == 0 {
				return
			}
			a := alerts[0]
			if a.Unrouted != tc.unrouted {
				t.Errorf("unrouted = %v, want %v", a.Unrouted, tc.unrouted)
			}
			if tc.step0 != "" {
				ts, unrouted := cfg.Resolve(a.Policy.Steps[0], a.Route)
				if got := describe(ts); got != tc.step0 {
					t.Errorf("step 0 targets\n got %s\nwant %s", got, tc.step0)
				}
				if unrouted != strings.Contains(tc.step0, "!") {
					t.Errorf("step 0 unrouted = %v", unrouted)
				}
				for _, tg := range ts {
					if tg.Unrouted && tg.Reason == "" {
						t.Errorf("unrouted target %s has no reason", tg)
					}
				}
			}
		})
	}
}

// TestEveryRuleIsExercised keeps the table honest: each rule of the
// example configuration matches at least one case.
func TestEveryRuleIsExercised(t *testing.T) {
	cfg := loadExample(t)
	seen := map[string]bool{}
	for _, tc := range evalCases() {
		for _, id := range strings.Split(tc.rules, ",") {
			seen[id] = true
		}
	}
	for _, r := range cfg.Rules {
		if !seen[r.ID] {
			t.Errorf("rule %s has no test case", r.ID)
		}
	}
}

func TestAlertFields(t *testing.T) {
	cfg := loadExample(t)
	eng := NewEngine(cfg)
	c := caseAt(palma, "pn-illes-balears", event.Extremo)
	e := withRisk(ev(event.RiskAssessed, c), event.Alto, event.Extremo)
	alerts, err := eng.Evaluate(e, event.NewTransition(event.Alto, event.Extremo), c)
	if err != nil || len(alerts) != 1 {
		t.Fatalf("%v %v", alerts, err)
	}
	a := alerts[0]
	want := Alert{
		ID: AlertID(e.ID, "risk-rises-to-extremo"), Rule: "risk-rises-to-extremo", Severity: "critical", Critical: true,
		Template: "risk_rise", SuppressKey: "risk-rises-to-extremo/case-0001/extremo",
		CaseID: "case-0001", EventID: e.ID, EventType: event.RiskAssessed, OccurredAt: t0, Level: event.Extremo, PrevLevel: event.Alto,
	}
	a.Policy, a.Route = PolicySnapshot{}, RouteContext{}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("alert\n got %+v\nwant %+v", a, want)
	}
	if len(a.ID) != 16 || a.ID != AlertID(e.ID, a.Rule) {
		t.Errorf("alert id %q is not 16 hex digits or not deterministic", a.ID)
	}
	if AlertID("ev-1", "r") == AlertID("ev-2", "r") {
		t.Error("alert ids collide")
	}

	// A non-critical rule's key has no level.
	hc := caseAt(herencia, "gc-ciudad-real", event.Medio)
	alerts, _ = eng.Evaluate(withTimer(ev(event.CheckinMissed, hc)), event.Transition{}, hc)
	if len(alerts) != 1 || alerts[0].SuppressKey != "checkin-missed/case-0001" {
		t.Errorf("got %+v", alerts)
	}
}

func TestPolicySnapshotIsIndependent(t *testing.T) {
	// A private copy of the example: this test mutates it.
	cfg, err := LoadFile(exampleConfig, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eng := NewEngine(cfg)
	c := caseAt(herencia, "gc-ciudad-real", event.Alto)
	alerts, err := eng.Evaluate(withAlarm(ev(event.DeviceAlarm, c), event.AlarmPanic), event.Transition{}, c)
	if err != nil || len(alerts) != 1 {
		t.Fatalf("%v %v", alerts, err)
	}
	before, _ := json.Marshal(alerts[0].Policy)

	p, _ := cfg.Policy("device-alarm")
	p.Steps[0].Notify[0].Via[0] = "email"
	p.Steps[0].Notify[0].Agency = "ibd"
	p.Steps[0].AckWithin = Duration(time.Hour)
	p.Steps = p.Steps[:1]

	after, _ := json.Marshal(alerts[0].Policy)
	if string(before) != string(after) {
		t.Fatalf("snapshot changed with the config:\nbefore %s\nafter  %s", before, after)
	}
	if len(alerts[0].Policy.Steps) != 2 || alerts[0].Policy.Steps[0].AckWithin != Duration(5*time.Minute) {
		t.Errorf("snapshot %s", after)
	}
}

func TestAlertJSONRoundTrip(t *testing.T) {
	cfg := loadExample(t)
	c := caseAt(palma, "pn-illes-balears", event.Alto)
	e := ev(event.CaseRelocated, c)
	alerts, err := NewEngine(cfg).Evaluate(e, moved(herencia, "gc-ciudad-real"), c)
	if err != nil || len(alerts) != 1 {
		t.Fatalf("%v %v", alerts, err)
	}
	b, err := json.Marshal(alerts[0])
	if err != nil {
		t.Fatal(err)
	}
	var back Alert
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, alerts[0]) {
		t.Fatalf("round trip differs:\n%s\n%+v", b, back)
	}
	if !strings.Contains(string(b), `"ack_within":"4h"`) {
		t.Errorf("durations should read as text: %s", b)
	}
	// Later steps resolve from the stored alert alone.
	ts, _ := cfg.Resolve(back.Policy.Steps[1], back.Route)
	if got := describe(ts); got != "gc-cr-mando[email] pn-ib-mando[sms,email]" {
		t.Errorf("step 1 after round trip: %s", got)
	}
}

func TestResolveMostSpecificAreaWins(t *testing.T) {
	cfg := loadExample(t)
	// Province 13 is served by gc-ciudad-real; a case in another
	// municipality of the province still reaches it by kind.
	rc := RouteContext{Jurisdiction: event.Jurisdiction{Municipality: "13034"}, ResponsibleUnit: "gc-ciudad-real"}
	ts, unrouted := cfg.Resolve(PolicyStep{Notify: []TargetSpec{
		{Agency: "responsible_unit", Role: "duty", Via: []string{"email"}},
		{Agency: "coordinating_center", Role: "duty", Via: []string{"email"}},
		{Agency: "local_police", Role: "duty", Via: []string{"email"}, Optional: true},
	}}, rc)
	if got := describe(ts); unrouted || got != "gc-cr-sala[email] imcm-coordinacion[email]" {
		t.Errorf("got %s (unrouted %v)", got, unrouted)
	}
}

func TestResolveWithoutRoleReachesEveryContact(t *testing.T) {
	cfg := loadExample(t)
	ts, _ := cfg.Resolve(PolicyStep{Notify: []TargetSpec{{Agency: "pl-palma", Via: []string{"webhook", "email"}}}}, RouteContext{})
	if got := describe(ts); got != "pl-palma-sala[email] pl-palma-jefatura[email] pl-palma-webhook[webhook]" {
		t.Errorf("got %s", got)
	}
	// A contact reached by two selectors is notified once, on the union.
	ts, _ = cfg.Resolve(PolicyStep{Notify: []TargetSpec{
		{Agency: "pl-palma", Role: "duty", Via: []string{"sms"}},
		{Contact: "pl-palma-sala", Via: []string{"email"}},
	}}, RouteContext{})
	if got := describe(ts); got != "pl-palma-sala[sms,email]" {
		t.Errorf("got %s", got)
	}
	if s := ts[0].String(); strings.Contains(s, "+34") || strings.Contains(s, "@") {
		t.Errorf("Target.String leaks an address: %s", s)
	}
}

func TestCheckinAndReassessmentPeriods(t *testing.T) {
	cfg, err := Parse([]byte(baseConfig+"checkins:\n  alto: {every: 12h}\nreassessment:\n  extremo: 48h\n"), "test.yaml", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		l            event.Level
		every, grace time.Duration
		reassess     time.Duration
	}{
		{event.Bajo, 30 * 24 * time.Hour, 48 * time.Hour, 60 * 24 * time.Hour},
		{event.Medio, 7 * 24 * time.Hour, 24 * time.Hour, 30 * 24 * time.Hour},
		{event.Alto, 12 * time.Hour, 0, 7 * 24 * time.Hour},
		{event.Extremo, 2 * time.Hour, 15 * time.Minute, 48 * time.Hour},
		{event.LevelNone, 0, 0, 0},
	} {
		every, grace := cfg.Checkin(tc.l)
		if every != tc.every || grace != tc.grace || cfg.Reassessment(tc.l) != tc.reassess {
			t.Errorf("%s: checkin %v/%v reassessment %v", tc.l, every, grace, cfg.Reassessment(tc.l))
		}
	}
}

// TestDefaultsMatchTheirDocs keeps the default tags, which the reference
// shows, equal to the defaults the loader applies.
func TestDefaultsMatchTheirDocs(t *testing.T) {
	for _, f := range fieldsOf(reflect.TypeOf(Checkins{})) {
		l, _ := event.ParseLevel(f.key)
		var every, grace string
		if _, err := fmt.Sscanf(f.def, "every %s grace %s", &every, &grace); err != nil {
			t.Fatalf("checkins.%s default tag %q: %v", f.key, f.def, err)
		}
		e, _ := ParseDuration(strings.TrimSuffix(every, ","))
		g, _ := ParseDuration(grace)
		if want := DefaultCheckins[l]; e != want.Every || g != want.Grace {
			t.Errorf("checkins.%s: default tag %q, loader default %+v", f.key, f.def, want)
		}
	}
	for _, f := range fieldsOf(reflect.TypeOf(Reassessments{})) {
		l, _ := event.ParseLevel(f.key)
		if d, err := ParseDuration(f.def); err != nil || d != DefaultReassessment[l] {
			t.Errorf("reassessment.%s: default tag %q, loader default %v", f.key, f.def, DefaultReassessment[l])
		}
	}
}

func TestSchedule(t *testing.T) {
	cfg := loadExample(t)
	if len(cfg.Schedules) != 1 {
		t.Fatal(cfg.Schedules)
	}
	s := &cfg.Schedules[0]
	madridTZ := s.Location()
	// Across the spring DST change (29 March 2026): still 07:00 local.
	for _, at := range []time.Time{
		time.Date(2026, 3, 28, 8, 0, 0, 0, madridTZ),
		time.Date(2026, 3, 29, 1, 0, 0, 0, madridTZ),
	} {
		next := s.Next(at)
		if h, m, _ := next.In(madridTZ).Clock(); h != 7 || m != 0 {
			t.Errorf("next after %v = %v, want 07:00 Madrid", at, next.In(madridTZ))
		}
	}
	if got := s.Next(time.Date(2026, 3, 29, 3, 0, 0, 0, time.UTC)); !got.Equal(time.Date(2026, 3, 29, 5, 0, 0, 0, time.UTC)) {
		t.Errorf("07:00 CEST is 05:00 UTC, got %v", got.UTC())
	}
	if len(s.Digest.Levels) != 2 || s.Digest.Levels[0] != event.Alto || s.Template != "patrol_digest" {
		t.Errorf("schedule %+v", s)
	}
	if got := describe(cfg.Recipients(s)); got != "pl-herencia-reten[email] pl-palma-sala[email]" {
		t.Errorf("recipients %s", got)
	}
}

func TestEngineConcurrentUse(t *testing.T) {
	eng := NewEngine(loadExample(t))
	cases := evalCases()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				tc := cases[i%len(cases)]
				alerts, err := eng.Evaluate(tc.ev, tc.tr, tc.c)
				if err != nil || ruleIDs(alerts) != tc.rules {
					t.Errorf("%s: %q %v", tc.name, ruleIDs(alerts), err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkEvaluate is the cost of deciding one event against every rule
// of the example configuration, over the table's mix of events (most
// match nothing or one rule).
func BenchmarkEvaluate(b *testing.B) {
	eng := NewEngine(loadExample(b))
	cases := evalCases()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tc := &cases[i%len(cases)]
		if _, err := eng.Evaluate(tc.ev, tc.tr, tc.c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluateNoMatch is the floor: an event no rule matches, so
// only the conditions run.
func BenchmarkEvaluateNoMatch(b *testing.B) {
	eng := NewEngine(loadExample(b))
	c := caseAt(herencia, "gc-ciudad-real", event.Alto)
	e := ev(event.CheckinRecorded, c)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := eng.Evaluate(e, event.Transition{}, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCondition is one rule condition on a reused VM, the unit the
// other two benchmarks multiply.
func BenchmarkCondition(b *testing.B) {
	cfg := loadExample(b)
	r := &cfg.Rules[1] // risk-rises-to-extremo: a list test and two fields
	c := caseAt(palma, "pn-illes-balears", event.Extremo)
	e := withRisk(ev(event.RiskAssessed, c), event.Alto, event.Extremo)
	tr := event.NewTransition(event.Alto, event.Extremo)
	rc := NewRouteContext(e, tr, c)
	st := new(evalState)
	st.env = newEnv(&e, &tr, &c, &rc, &cfg.dir)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out, err := st.vm.Run(r.program, &st.env); err != nil || out != true {
			b.Fatal(out, err)
		}
	}
}
