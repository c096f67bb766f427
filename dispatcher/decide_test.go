package dispatcher

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
	"github.com/viogen-alerts/dispatcher/rules"
)

func exampleEngine(t testing.TB) *rules.Engine {
	t.Helper()
	cfg, err := rules.LoadFile("../deploy/config/viogen.yaml", rules.LoadOptions{})
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	return rules.NewEngine(cfg)
}

type decideEnv struct {
	d       *Decider
	store   *Store
	brokers []string
}

func newDecideEnv(t *testing.T) *decideEnv {
	t.Helper()
	_, brokers := testenv.StartKafka(t, 1, TopicIntents)
	return newDecideEnvOn(t, brokers)
}

func newDecideEnvOn(t *testing.T, brokers []string) *decideEnv {
	t.Helper()
	rdb := testenv.StartRedis(t).Client(t)
	w := NewWriter(brokers, quietLog())
	t.Cleanup(func() { _ = w.Close() })
	d := &Decider{Engine: exampleEngine(t), Suppress: NewSuppressor(rdb), Writer: w, Topic: TopicIntents,
		Log: quietLog(), Now: time.Now}
	return &decideEnv{d: d, store: NewStore(rdb, time.Hour), brokers: brokers}
}

// run applies events through the store and the decider, as ingest does.
func (e *decideEnv) run(t *testing.T, evs ...event.Event) {
	t.Helper()
	ctx := context.Background()
	outs, err := e.store.Apply(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	items := make([]Item, len(evs))
	for i := range evs {
		items[i] = Item{Event: evs[i], Outcome: outs[i]}
	}
	if err := e.d.Handle(ctx, items); err != nil {
		t.Fatal(err)
	}
}

// intents reads every intent written so far.
func (e *decideEnv) intents(t *testing.T) []Intent { return readIntents(t, e.brokers) }

// readIntents reads every intent on the topic, checking each is keyed by
// its case reference.
func readIntents(t *testing.T, brokers []string) []Intent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	n := topicSize(ctx, t, brokers, TopicIntents)
	r := newTopicReader(t, brokers, TopicIntents)
	defer r.Close()
	var out []Intent
	for int64(len(out)) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read intents: %v", err)
		}
		in, err := DecodeIntent(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != in.CaseRef {
			t.Errorf("intent key %q, want case ref %q", m.Key, in.CaseRef)
		}
		out = append(out, in)
	}
	return out
}

func rulesOf(ins []Intent) map[string]int {
	m := map[string]int{}
	for _, in := range ins {
		m[in.Rule]++
	}
	return m
}

func TestDecideRiskRiseNotifiesStepZero(t *testing.T) {
	e := newDecideEnv(t)
	e.run(t, ev("d1", event.CaseOpened, "C-D1", 1, event.Medio), ev("d2", event.RiskAssessed, "C-D1", 2, event.Alto))
	ins := e.intents(t)
	if len(ins) == 0 {
		t.Fatal("no intents for a rise to alto")
	}
	var contacts []string
	for _, in := range ins {
		if in.Rule != "risk-rises-to-alto" || in.CaseRef != "C-D1" || in.Level != event.Alto || in.Step != 0 || len(in.Channels) == 0 {
			t.Errorf("intent: %+v", in)
		}
		if in.ID != IntentID(in.AlertID, 0, 0, in.ContactID) {
			t.Errorf("intent id not deterministic: %+v", in)
		}
		contacts = append(contacts, in.AgencyID+"/"+in.ContactID)
	}
	sort.Strings(contacts)
	t.Logf("targets: %v", contacts)
	if !contains(contacts, "gc-ciudad-real/gc-cr-guardia") || !contains(contacts, "pl-herencia/pl-herencia-guardia") {
		t.Errorf("responsible unit and local police must be told: %v", contacts)
	}
}

func TestDecideFlappingPagesOnce(t *testing.T) {
	e := newDecideEnv(t)
	e.run(t, ev("f1", event.CaseOpened, "C-D2", 1, event.Medio))
	e.run(t, ev("f2", event.RiskAssessed, "C-D2", 2, event.Alto))
	e.run(t, ev("f3", event.RiskAssessed, "C-D2", 3, event.Medio))
	e.run(t, ev("f4", event.RiskAssessed, "C-D2", 4, event.Alto)) // flaps back inside the window
	alerts := map[string]bool{}
	for _, in := range e.intents(t) {
		if in.Rule == "risk-rises-to-alto" {
			alerts[in.AlertID] = true
		}
	}
	if len(alerts) != 1 {
		t.Fatalf("flapping alto raised %d alerts, want 1", len(alerts))
	}
}

func TestDecideCriticalEscalatesOnNewLevel(t *testing.T) {
	e := newDecideEnv(t)
	e.run(t, ev("c1", event.CaseOpened, "C-D3", 1, event.Medio))
	e.run(t, ev("c2", event.RiskAssessed, "C-D3", 2, event.Alto))
	e.run(t, ev("c3", event.RiskAssessed, "C-D3", 3, event.Extremo))
	got := rulesOf(e.intents(t))
	if got["risk-rises-to-alto"] == 0 || got["risk-rises-to-extremo"] == 0 {
		t.Fatalf("a rise to extremo inside the alto window must still escalate: %v", got)
	}
}

// A batch replayed after a crash (state already applied, intents maybe
// written) decides the same alerts with the same intent ids and is not
// suppressed by its own window.
func TestDecideReplayIsIdempotent(t *testing.T) {
	e := newDecideEnv(t)
	evs := []event.Event{ev("r1", event.CaseOpened, "C-D4", 1, event.Medio), ev("r2", event.RiskAssessed, "C-D4", 2, event.Extremo)}
	e.run(t, evs...)
	first := e.intents(t)
	e.run(t, evs...) // duplicates: same outcomes, same decisions
	all := e.intents(t)
	if len(first) == 0 || len(all) != 2*len(first) {
		t.Fatalf("replay wrote %d intents after %d, want the same again", len(all)-len(first), len(first))
	}
	ids := map[string]int{}
	for _, in := range all {
		ids[in.ID]++
	}
	for id, n := range ids {
		if n != 2 {
			t.Errorf("intent %s written %d times; replay must reproduce every id", id, n)
		}
	}
}

func TestDecideUnknownMunicipalityGoesToFallback(t *testing.T) {
	e := newDecideEnv(t)
	o := ev("u1", event.CaseOpened, "C-D5", 1, event.Medio)
	o.Jurisdiction, o.ResponsibleUnit = event.Jurisdiction{Municipality: "28079", Province: "28", Region: "MD"}, "pn-madrid-unknown"
	r := ev("u2", event.RiskAssessed, "C-D5", 2, event.Extremo)
	r.Jurisdiction, r.ResponsibleUnit = o.Jurisdiction, o.ResponsibleUnit
	e.run(t, o, r)
	ins := e.intents(t)
	if len(ins) == 0 {
		t.Fatal("an alert for an unknown place was dropped")
	}
	got := rulesOf(ins)
	if got["risk-rises-to-extremo"] == 0 || got["unrouted-case"] == 0 {
		t.Fatalf("want the risk alert (to the fallback) and the unrouted notice: %v", got)
	}
	for _, in := range ins {
		if in.Rule == "risk-rises-to-extremo" && (!in.Unrouted || in.AgencyID != "ses-viogen") {
			t.Errorf("risk alert for an unknown place must go to the fallback, marked unrouted: %+v", in)
		}
	}
}
