package dispatcher

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
	"github.com/viogen-alerts/dispatcher/rules"
)

// Step 1 targets only an optional local police, and Herencia has none in
// this config (only Palma has one): the step is skipped at once, recorded, and the ladder goes
// straight to step 2.
const skipConfig = `
fallback_agency: center
agencies:
  - {id: center, name: Centro Coordinador, kind: coordinating_center, serves: {regions: [CM]},
     contacts: [{id: center-duty, role: duty, email: duty.center@example.org}]}
  - {id: unit, name: Unidad Responsable, kind: responsible_unit, serves: {provinces: ["13"]},
     contacts: [{id: unit-oncall, role: on_call, sms: "+34600000101"}, {id: unit-boss, role: supervisor, sms: "+34600000102"}]}
  - {id: pl-other, name: Policia Local de otro municipio, kind: local_police, serves: {municipalities: ["07040"]},
     contacts: [{id: pl-other-boss, role: supervisor, sms: "+34600000103"}]}
policies:
  - id: p
    steps:
      - notify: [{agency: responsible, role: on_call, via: [sms]}]
        ack_within: 10m
      - notify: [{agency: local_police, role: supervisor, via: [sms], optional: true}]
        ack_within: 10m
      - notify: [{agency: responsible, role: supervisor, via: [sms]}]
        ack_within: 10m
rules:
  - {id: rise, when: 'transition.rising && transition.to >= ALTO', policy: p, template: risk_rise}
`

// timeOutStep0 opens, on a ladder over config src, the escalation of a
// rise to alto of caseID in municipality muni (empty: the event's own),
// fires its step-0 timeout and returns the ladder, the escalation after
// it and the intents topic's brokers.
func timeOutStep0(t *testing.T, src, caseID, muni string) (*Ladder, *Escalation, []string) {
	t.Helper()
	cfg, err := rules.Parse([]byte(src), "ladder.yaml", rules.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, brokers := testenv.StartKafka(t, 1, TopicIntents, TopicResults)
	rdb := testenv.StartRedis(t).Client(t)
	w := NewWriter(brokers, quietLog())
	t.Cleanup(func() { _ = w.Close() })
	l := &Ladder{Rules: cfg, Store: NewEscalationStore(rdb, time.Hour), Writer: w, Intents: TopicIntents, Results: TopicResults, Log: quietLog()}
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	e := ev("k1", event.RiskAssessed, caseID, 2, event.Alto)
	e.ResponsibleUnit = "unit"
	if muni != "" {
		e.Jurisdiction.Municipality = muni
	}
	c := event.Case{ID: caseID, Level: event.Alto, Jurisdiction: e.Jurisdiction, ResponsibleUnit: "unit", Active: true}
	alerts, err := rules.NewEngine(cfg).Evaluate(e, event.NewTransition(event.Medio, event.Alto), c)
	if err != nil || len(alerts) != 1 {
		t.Fatalf("%v %v", alerts, err)
	}
	ctx := context.Background()
	step0 := StepIntents(cfg, alerts[0], 0, 0, AckCode(alerts[0].ID), now)
	if err := l.Open(ctx, []openedAlert{{alert: alerts[0], intents: step0}}, now); err != nil {
		t.Fatal(err)
	}
	timeout := e
	timeout.Type, timeout.Timer = event.EscalationTimeout, &event.Timer{EscalationID: alerts[0].ID, Step: 0, Round: 0}
	if err := l.Timeout(ctx, timeout, now.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := l.Store.Get(ctx, caseID, alerts[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	return l, got, brokers
}

func TestLadderSkipsAStepThatResolvesToNobody(t *testing.T) {
	_, got, brokers := timeOutStep0(t, skipConfig, "C-SK1", "")
	if got.Step != 2 || len(got.Skipped) != 1 || got.Skipped[0] != 1 || got.State != EscOpen {
		t.Fatalf("escalation after the timeout: step %d skipped %v state %s; want step 2, skipped [1]", got.Step, got.Skipped, got.State)
	}
	if !got.NotifiedAgency("unit") || len(got.Notified) != 1 {
		t.Errorf("notified %v", got.Notified)
	}
	var boss bool
	for _, in := range readIntents(t, brokers) {
		boss = boss || (in.ContactID == "unit-boss" && in.Step == 2)
	}
	if !boss {
		t.Error("step 2 (the supervisor) was not notified")
	}
}

// A step before the last with an explicit ack_within: 0 awaits nothing:
// the escalation ends after it, as documented. It stayed open with no
// timer: never climbing, never telling the center, and catching later
// critical alerts of its rule in the merge index.
func TestLadderStepAwaitingNothingEndsTheEscalation(t *testing.T) {
	src := strings.Replace(skipConfig, "optional: true}]\n        ack_within: 10m", "optional: true}]\n        ack_within: 0s", 1)
	// pl-other serves 07040: step 1 has a target there.
	l, got, _ := timeOutStep0(t, src, "C-SK2", "07040")
	if got.Step != 1 || got.State != EscClosed || !got.DueAt.IsZero() || !got.NotifiedAgency("pl-other") {
		t.Fatalf("after step 1 (ack_within 0): step %d state %s due %v notified %v; want step 1, closed", got.Step, got.State, got.DueAt, got.Notified)
	}
	open, err := l.Store.OpenForCase(context.Background(), "C-SK2")
	if err != nil || len(open) != 0 {
		t.Errorf("open escalations of the case: %d (%v), want none", len(open), err)
	}
}

// A rule whose condition fails at run time raises no alert for that
// event: the other rules' alerts still go, and the failure is counted in
// dispatcher_rule_errors_total (which DispatcherRuleErrors pages on), not
// only logged. The Service wires the counter into its Decider.
func TestDecideCountsRulesFailingAtRunTime(t *testing.T) {
	broken := strings.Replace(skipConfig, "rules:\n", "rules:\n  - {id: broken, when: 'transition.to % (transition.to - transition.to) == 0', policy: p, template: risk_rise}\n"+
		"  - {id: broken2, when: 'transition.from % (transition.to - transition.to) == 0', policy: p, template: risk_rise}\n", 1)
	cfg, err := rules.Parse([]byte(broken), "broken.yaml", rules.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, brokers := testenv.StartKafka(t, 1, TopicIntents, TopicResults)
	e := newDecideEnvOn(t, brokers)
	e.d.Engine = rules.NewEngine(cfg)
	svc, err := NewService(Options{Ingest: IngestConfig{Brokers: brokers}, Redis: e.store.rdb, Decide: e.d, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	rise := ev("rf-2", event.RiskAssessed, "C-RF1", 2, event.Alto)
	rise.ResponsibleUnit = "unit"
	e.run(t, ev("rf-1", event.CaseOpened, "C-RF1", 1, event.Medio), rise)
	// Two failing rules on each of the two events: one count per rule.
	if got := counterValue(t, svc.Stats.RuleErrors); got != 4 {
		t.Errorf("dispatcher_rule_errors_total = %v, want 4 (2 failing rules x 2 events)", got)
	}
	var rose bool
	for _, in := range e.intents(t) {
		rose = rose || (in.CaseRef == "C-RF1" && in.Rule == "rise")
	}
	if !rose {
		t.Error("the working rule raised no alert beside the failing one")
	}
}
