package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// mergeEnv is the decide stage with its ladder over a real redis-server and
// the Kafka-protocol broker, driven synchronously: run returns when the
// batch is decided, its intents written and its escalations saved, so
// reading the intents topic up to its end sees everything it did.
type mergeEnv struct {
	*decideEnv
	ladder *Ladder
	logs   *providertest.LogCapture
}

func newMergeEnv(t *testing.T) *mergeEnv {
	t.Helper()
	_, brokers := testenv.StartKafka(t, 1, TopicIntents, TopicResults)
	e := newDecideEnvOn(t, brokers)
	logs := providertest.CaptureLog()
	rdb := e.d.Suppress.rdb
	l := &Ladder{Rules: e.d.Engine.Config(), Store: NewEscalationStore(rdb, time.Hour), Writer: e.d.Writer,
		Intents: TopicIntents, Results: TopicResults, Log: logs.Logger}
	e.d.Ladder, e.d.Log = l, logs.Logger
	return &mergeEnv{decideEnv: e, ladder: l, logs: logs}
}

// paged returns, per rule, the alert ids that sent step-0 intents.
func (e *mergeEnv) paged(t *testing.T, caseRef string) map[string][]string {
	t.Helper()
	seen := map[string]map[string]bool{}
	for _, in := range e.intents(t) {
		if in.CaseRef != caseRef || in.Kind != KindAlert || in.Step != 0 || in.Round != 0 {
			continue
		}
		if seen[in.Rule] == nil {
			seen[in.Rule] = map[string]bool{}
		}
		seen[in.Rule][in.AlertID] = true
	}
	out := map[string][]string{}
	for r, ids := range seen {
		for id := range ids {
			out[r] = append(out[r], id)
		}
		sort.Strings(out[r])
	}
	return out
}

// ack applies an escalation.acknowledged event through the decide stage.
func (e *mergeEnv) ack(t *testing.T, caseRef, alertID string, at time.Time) {
	t.Helper()
	esc, err := e.ladder.Store.Get(context.Background(), caseRef, alertID)
	if err != nil {
		t.Fatalf("escalation %s: %v", alertID, err)
	}
	ev := internalEvent("ack:"+alertID, event.EscalationAcknowledged, caseRef, esc.Alert.Route, at)
	ev.Ack = &event.Ack{EscalationID: alertID, Agency: "gc-ciudad-real", Via: "api"}
	e.run(t, ev)
	if got, _ := e.ladder.Store.Get(context.Background(), caseRef, alertID); got == nil || got.State != EscAcked {
		t.Fatalf("escalation %s not acknowledged: %+v", alertID, got)
	}
}

// noCriticalSuppressed fails on any "alert suppressed" log line of a
// critical alert.
func (e *mergeEnv) noCriticalSuppressed(t *testing.T) {
	t.Helper()
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "alert suppressed" && m["critical"] == true {
			t.Errorf("a critical alert was suppressed: %s", line)
		}
	}
}

func alarm(id, caseID string, version int64, kind string) event.Event {
	e := ev(id, event.DeviceAlarm, caseID, version, event.LevelNone)
	e.Alarm = &event.Alarm{Kind: kind}
	return e
}

// Issue 8 item 7: alto → extremo → alto → extremo within 30 minutes (the
// rule's suppress_for) pages extremo twice: the fall in between ends the
// first escalation's hold, and no critical alert is ever "suppressed".
func TestCriticalFlappingPagesEachRise(t *testing.T) {
	e := newMergeEnv(t)
	e.run(t, ev("fl1", event.CaseOpened, "C-CR1", 1, event.Medio))
	e.run(t, ev("fl2", event.RiskAssessed, "C-CR1", 2, event.Alto))
	e.run(t, ev("fl3", event.RiskAssessed, "C-CR1", 3, event.Extremo))
	e.run(t, ev("fl4", event.RiskAssessed, "C-CR1", 4, event.Alto)) // a fall: its escalation stays open, unacknowledged
	e.run(t, ev("fl5", event.RiskAssessed, "C-CR1", 5, event.Extremo))
	got := e.paged(t, "C-CR1")["risk-rises-to-extremo"]
	if len(got) != 2 {
		t.Fatalf("extremo paged %d times (%v), want 2: each rise after a fall pages", len(got), got)
	}
	e.noCriticalSuppressed(t)
	// Both escalations are open: the first is still unacknowledged.
	open, err := e.ladder.Store.OpenForCase(context.Background(), "C-CR1")
	if err != nil {
		t.Fatal(err)
	}
	if n := countRule(open, "risk-rises-to-extremo"); n != 2 {
		t.Errorf("%d open extremo escalations, want 2", n)
	}
}

// The same flapping inside one batch decides the same (the fall is ordered
// between the two rises), and so does the batch replayed.
func TestCriticalFlappingInOneBatchAndReplayed(t *testing.T) {
	e := newMergeEnv(t)
	batch := []event.Event{
		ev("fb1", event.CaseOpened, "C-CR2", 1, event.Medio), ev("fb2", event.RiskAssessed, "C-CR2", 2, event.Alto),
		ev("fb3", event.RiskAssessed, "C-CR2", 3, event.Extremo), ev("fb4", event.RiskAssessed, "C-CR2", 4, event.Alto),
		ev("fb5", event.RiskAssessed, "C-CR2", 5, event.Extremo),
	}
	e.run(t, batch...)
	first := e.paged(t, "C-CR2")["risk-rises-to-extremo"]
	e.run(t, batch...) // redelivered: duplicates with their first outcomes
	again := e.paged(t, "C-CR2")["risk-rises-to-extremo"]
	if len(first) != 2 || fmt.Sprint(first) != fmt.Sprint(again) {
		t.Fatalf("paged %v, after replay %v: want the same 2 alerts", first, again)
	}
	e.noCriticalSuppressed(t)
}

// A second critical alert of the same rule at the same level while the
// first's escalation is open and unacknowledged merges into it: no page of
// its own, logged and recorded as merged into that escalation.
func TestCriticalRepeatMergesIntoOpenEscalation(t *testing.T) {
	e := newMergeEnv(t)
	e.run(t, ev("mg1", event.CaseOpened, "C-CR3", 1, event.Extremo))
	e.run(t, alarm("mg2", "C-CR3", 2, event.AlarmPanic))
	e.run(t, alarm("mg3", "C-CR3", 3, event.AlarmPanic))
	got := e.paged(t, "C-CR3")["bracelet-panic"]
	if len(got) != 1 {
		t.Fatalf("panic paged %d alerts, want 1 (the second merges)", len(got))
	}
	target, err := e.ladder.Store.Get(context.Background(), "C-CR3", got[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(target.Merged) != 1 || target.Merged[0] == got[0] {
		t.Fatalf("escalation %s records merged %v, want the second alarm's alert", target.ID, target.Merged)
	}
	if !strings.Contains(e.logs.String(), `"escalation_id":"`+target.ID+`"`) ||
		!strings.Contains(e.logs.String(), "alert merged into escalation "+target.ID) {
		t.Errorf("the merge is not logged with its escalation:\n%s", e.logs.String())
	}
	e.noCriticalSuppressed(t)
	// Replayed, the merged alarm stays merged (and is recorded once).
	e.run(t, alarm("mg3", "C-CR3", 3, event.AlarmPanic))
	if again := e.paged(t, "C-CR3")["bracelet-panic"]; len(again) != 1 {
		t.Fatalf("replayed merge paged: %v", again)
	}
	if target, _ = e.ladder.Store.Get(context.Background(), "C-CR3", got[0]); len(target.Merged) != 1 {
		t.Errorf("merged recorded %v after replay", target.Merged)
	}
}

// A critical alert at a higher level than the open escalation pages. This
// fails if the level is left out of the merge decision.
func TestCriticalHigherLevelPagesDespiteOpenEscalation(t *testing.T) {
	e := newMergeEnv(t)
	e.run(t, ev("hl1", event.CaseOpened, "C-CR4", 1, event.Alto))
	e.run(t, alarm("hl2", "C-CR4", 2, event.AlarmPanic)) // escalation at alto
	e.run(t, ev("hl3", event.RiskAssessed, "C-CR4", 3, event.Extremo))
	e.run(t, alarm("hl4", "C-CR4", 4, event.AlarmPanic)) // extremo > alto: pages
	e.run(t, alarm("hl5", "C-CR4", 5, event.AlarmPanic)) // same level as the open extremo one: merges
	got := e.paged(t, "C-CR4")["bracelet-panic"]
	if len(got) != 2 {
		t.Fatalf("panic paged %d alerts (%v), want 2: alto, then extremo", len(got), got)
	}
	levels := map[event.Level]int{}
	for _, in := range e.intents(t) {
		if in.Rule == "bracelet-panic" && in.Step == 0 {
			levels[in.Level]++
		}
	}
	if levels[event.Alto] == 0 || levels[event.Extremo] == 0 {
		t.Errorf("pages by level %v, want one at alto and one at extremo", levels)
	}
}

// After an acknowledgement the next critical alert pages again.
func TestCriticalAfterAckPagesAgain(t *testing.T) {
	e := newMergeEnv(t)
	e.run(t, ev("ak1", event.CaseOpened, "C-CR5", 1, event.Extremo))
	e.run(t, alarm("ak2", "C-CR5", 2, event.AlarmPanic))
	first := e.paged(t, "C-CR5")["bracelet-panic"]
	if len(first) != 1 {
		t.Fatalf("first panic: %v", first)
	}
	e.ack(t, "C-CR5", first[0], time.Date(2026, 3, 1, 10, 2, 30, 0, time.UTC))
	e.run(t, alarm("ak3", "C-CR5", 3, event.AlarmPanic))
	if got := e.paged(t, "C-CR5")["bracelet-panic"]; len(got) != 2 {
		t.Fatalf("after the acknowledgement the next panic must page: %v", got)
	}
	e.noCriticalSuppressed(t)
}

// After the escalation closes (its ladder ran out) the next critical alert
// pages again; so it does after the case closes.
func TestCriticalAfterCloseCasesPagesAgain(t *testing.T) {
	t.Run("escalation closed", func(t *testing.T) {
		e := newMergeEnv(t)
		e.run(t, ev("cl1", event.CaseOpened, "C-CR6", 1, event.Extremo))
		e.run(t, alarm("cl2", "C-CR6", 2, event.AlarmPanic))
		first := e.paged(t, "C-CR6")["bracelet-panic"]
		if len(first) != 1 {
			t.Fatalf("first panic: %v", first)
		}
		ctx := context.Background()
		for i := 0; ; i++ {
			x, err := e.ladder.Store.Get(ctx, "C-CR6", first[0])
			if err != nil {
				t.Fatal(err)
			}
			if x.State != EscOpen {
				break
			}
			if i > 10 {
				t.Fatalf("ladder did not close: %+v", x)
			}
			to := internalEvent(fmt.Sprintf("timer:esc:%s:%d:%d", x.ID, x.Step, x.Round), event.EscalationTimeout, x.CaseRef, x.Alert.Route, x.DueAt)
			to.Timer = &event.Timer{DueAt: x.DueAt, EscalationID: x.ID, Step: x.Step, Round: x.Round}
			e.run(t, to)
		}
		e.run(t, alarm("cl3", "C-CR6", 30, event.AlarmPanic))
		if got := e.paged(t, "C-CR6")["bracelet-panic"]; len(got) != 2 {
			t.Fatalf("after the escalation closed the next panic must page: %v", got)
		}
	})
	t.Run("case closed", func(t *testing.T) {
		e := newMergeEnv(t)
		e.run(t, ev("cc1", event.CaseOpened, "C-CR7", 1, event.Extremo))
		e.run(t, alarm("cc2", "C-CR7", 2, event.AlarmPanic))
		e.run(t, ev("cc3", event.CaseClosed, "C-CR7", 3, event.LevelNone))
		e.run(t, alarm("cc4", "C-CR7", 4, event.AlarmPanic))
		if got := e.paged(t, "C-CR7")["bracelet-panic"]; len(got) != 2 {
			t.Fatalf("after the case closed the next panic must page: %v", got)
		}
	})
}

// Two critical alerts of one batch: the second merges into the escalation
// the first opens in the same batch; replayed after the first was
// acknowledged, the batch decides the same (each decision is remembered)
// and leaves no stale merge target behind.
func TestCriticalMergeInOneBatchIsIdempotent(t *testing.T) {
	e := newMergeEnv(t)
	e.run(t, ev("ib1", event.CaseOpened, "C-CR8", 1, event.Extremo))
	batch := []event.Event{alarm("ib2", "C-CR8", 2, event.AlarmPanic), alarm("ib3", "C-CR8", 3, event.AlarmPanic)}
	e.run(t, batch...)
	first := e.paged(t, "C-CR8")["bracelet-panic"]
	if len(first) != 1 {
		t.Fatalf("one batch of two panics paged %v, want 1", first)
	}
	e.ack(t, "C-CR8", first[0], time.Date(2026, 3, 1, 10, 3, 30, 0, time.UTC))
	e.run(t, batch...)
	if got := e.paged(t, "C-CR8")["bracelet-panic"]; fmt.Sprint(got) != fmt.Sprint(first) {
		t.Fatalf("replayed batch paged %v, want %v as the first time", got, first)
	}
	// The replay did not make the acknowledged escalation a merge target
	// again: the next panic pages.
	e.run(t, alarm("ib4", "C-CR8", 4, event.AlarmPanic))
	if got := e.paged(t, "C-CR8")["bracelet-panic"]; len(got) != 2 {
		t.Fatalf("after the acknowledgement and a replay the next panic must page: %v", got)
	}
}

func countRule(es []*Escalation, rule string) int {
	n := 0
	for _, x := range es {
		if x.Alert.Rule == rule {
			n++
		}
	}
	return n
}

// firstPanic opens an extremo case and raises its first panic alarm
// (events <case>-1 and -2); it returns the one alert it paged.
func (e *mergeEnv) firstPanic(t *testing.T, caseRef string) []string {
	t.Helper()
	e.run(t, ev(caseRef+"-1", event.CaseOpened, caseRef, 1, event.Extremo))
	e.run(t, alarm(caseRef+"-2", caseRef, 2, event.AlarmPanic))
	first := e.paged(t, caseRef)["bracelet-panic"]
	if len(first) != 1 {
		t.Fatalf("first alarm paged %v", first)
	}
	return first
}

// A critical repeat whose escalation to merge into is gone (its record
// expired or Redis lost it, while the case's merge index still names it)
// merged into nothing: it paged nobody, with a warning. It is now sent on
// its own (it opens its own escalation), and the stale index entry goes.
func TestCriticalRepeatIntoAMissingEscalationPages(t *testing.T) {
	e := newMergeEnv(t)
	first := e.firstPanic(t, "C-MO")
	ctx := context.Background()
	if err := e.ladder.Store.rdb.Del(ctx, escKey("C-MO", first[0])).Err(); err != nil {
		t.Fatal(err)
	}
	e.run(t, alarm("C-MO-3", "C-MO", 3, event.AlarmPanic))
	got := e.paged(t, "C-MO")["bracelet-panic"]
	if len(got) != 2 {
		t.Fatalf("panic paged %d alerts, want 2: the repeat had nothing left to merge into", len(got))
	}
	repeat := got[0]
	if repeat == first[0] {
		repeat = got[1]
	}
	if _, err := e.ladder.Store.Get(ctx, "C-MO", repeat); err != nil {
		t.Errorf("the repeat opened no escalation of its own: %v", err)
	}
	idx, err := e.ladder.Store.rdb.HKeys(ctx, critIndexKey("C-MO")).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range idx {
		if strings.HasSuffix(f, "|"+first[0]) {
			t.Errorf("the merge index still names the missing escalation: %v", idx)
		}
	}
	e.noCriticalSuppressed(t)
}

// An escalation left open with no due time (by a step with ack_within 0,
// before the ladder closed such escalations; earlier instances may still
// leave them during a rolling update) never climbs. A critical repeat
// merged into it paged nobody; now the stuck escalation is closed and the
// repeat pages on its own.
func TestCriticalRepeatIntoAStuckEscalationPages(t *testing.T) {
	e := newMergeEnv(t)
	first := e.firstPanic(t, "C-MS")
	ctx := context.Background()
	stuck, err := e.ladder.Store.Get(ctx, "C-MS", first[0])
	if err != nil {
		t.Fatal(err)
	}
	stuck.DueAt = time.Time{} // what the old ladder saved after such a step
	if err := e.ladder.Store.Save(ctx, stuck); err != nil {
		t.Fatal(err)
	}
	e.run(t, alarm("C-MS-3", "C-MS", 3, event.AlarmPanic))
	if got := e.paged(t, "C-MS")["bracelet-panic"]; len(got) != 2 {
		t.Fatalf("panic paged %d alerts, want 2: the stuck escalation must not absorb the repeat", len(got))
	}
	if after, err := e.ladder.Store.Get(ctx, "C-MS", first[0]); err != nil || after.State != EscClosed {
		t.Errorf("the stuck escalation after the repeat: %+v (%v), want closed", after, err)
	}
}
