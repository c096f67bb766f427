package dispatcher

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

func newSilencedDecideEnv(t *testing.T) (*decideEnv, *SilenceStore) {
	t.Helper()
	_, brokers := testenv.StartKafka(t, 1, TopicIntents)
	rdb := testenv.StartRedis(t).Client(t)
	w := NewWriter(brokers, quietLog())
	t.Cleanup(func() { _ = w.Close() })
	ss := NewSilenceStore(rdb)
	d := &Decider{Engine: exampleEngine(t), Suppress: NewSuppressor(rdb), Writer: w, Topic: TopicIntents,
		Log: quietLog(), Now: time.Now, Silences: ss}
	return &decideEnv{d: d, store: NewStore(rdb, time.Hour), brokers: brokers}, ss
}

// silenceReads counts the reads of the silences hash.
func silenceReads() *cmdCounter {
	return &cmdCounter{match: func(cmd redis.Cmder) bool {
		a := cmd.Args()
		return strings.EqualFold(cmd.Name(), "hgetall") && len(a) > 1 && a[1] == keySilences
	}}
}

// A batch whose alerts are all critical is sent without reading the
// silences (no silence can hold it back); a batch with a non-critical
// alert reads them once and is held back by an active silence.
func TestSilencesAreReadOnlyForNonCriticalAlerts(t *testing.T) {
	e, ss := newSilencedDecideEnv(t)
	ctx := context.Background()
	now := time.Now()
	s := &Silence{ID: "s-all", Agency: "gc-ciudad-real", StartsAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour), Author: "op-1", CreatedAt: now}
	if err := ss.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	reads := silenceReads()
	ss.rdb.AddHook(reads)
	e.run(t, ev("k1", event.CaseOpened, "C-S3", 1, event.Extremo))
	if got := rulesOf(e.intents(t)); got["risk-rises-to-extremo"] == 0 {
		t.Fatalf("critical alert not sent: %v", got)
	}
	if n := reads.n.Load(); n != 0 {
		t.Fatalf("a batch of critical alerts read the silences %d times, want 0", n)
	}
	e.run(t, ev("k2", event.CaseOpened, "C-S4", 1, event.Medio), ev("k3", event.RiskAssessed, "C-S4", 2, event.Alto))
	if n := reads.n.Load(); n != 1 {
		t.Fatalf("a batch with a non-critical alert read the silences %d times, want 1", n)
	}
	if got := rulesOf(e.intents(t)); got["risk-rises-to-alto"] != 0 {
		t.Fatalf("the silence let a non-critical alert through: %v", got)
	}
	if held, _ := ss.Held(ctx, "s-all"); len(held) != 1 || held[0].Rule != "risk-rises-to-alto" {
		t.Fatalf("held back by s-all: %+v", held)
	}
}

// A silence holds back a non-critical alert of its agency's cases, is
// shown the alert, and never holds back a critical one.
func TestSilenceHoldsBackNonCriticalOnly(t *testing.T) {
	e, ss := newSilencedDecideEnv(t)
	ctx := context.Background()
	now := time.Now()
	for _, s := range []*Silence{
		{ID: "s-unit", Agency: "gc-ciudad-real", StartsAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour), Reason: "maintenance", Author: "op-1", CreatedAt: now},
		{ID: "s-ended", Agency: "gc-ciudad-real", Rule: "risk-rises-to-extremo", StartsAt: now.Add(-2 * time.Hour), EndsAt: now.Add(-time.Hour), Author: "op-1", CreatedAt: now},
	} {
		if err := ss.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	e.run(t, ev("s1", event.CaseOpened, "C-S1", 1, event.Medio), ev("s2", event.RiskAssessed, "C-S1", 2, event.Alto))
	e.run(t, ev("s3", event.RiskAssessed, "C-S1", 3, event.Extremo))
	got := rulesOf(e.intents(t))
	if got["risk-rises-to-alto"] != 0 {
		t.Errorf("the silence let a non-critical alert through: %v", got)
	}
	if got["risk-rises-to-extremo"] == 0 {
		t.Fatalf("the silence held back a critical alert: %v", got)
	}
	held, err := ss.Held(ctx, "s-unit")
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 1 || held[0].Rule != "risk-rises-to-alto" || held[0].CaseRef != "C-S1" {
		t.Fatalf("held back by s-unit: %+v", held)
	}
	if h, _ := ss.Held(ctx, "s-ended"); len(h) != 0 {
		t.Fatalf("an ended silence held back %+v", h)
	}
}

func TestSilenceOfAnotherAgencyHoldsNothing(t *testing.T) {
	e, ss := newSilencedDecideEnv(t)
	now := time.Now()
	if err := ss.Save(context.Background(), &Silence{ID: "s-other", Agency: "pn-illes-balears", StartsAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	e.run(t, ev("o1", event.CaseOpened, "C-S2", 1, event.Medio), ev("o2", event.RiskAssessed, "C-S2", 2, event.Alto))
	if got := rulesOf(e.intents(t)); got["risk-rises-to-alto"] == 0 {
		t.Fatalf("a silence of another agency held back an alert: %v", got)
	}
}

func TestRecentListsEscalationsOfTheWindow(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	s := NewEscalationStore(rdb, time.Hour)
	ctx := context.Background()
	now := time.Now()
	mk := func(id string, opened time.Time, state string) {
		e := &Escalation{ID: id, CaseRef: "C-R1", State: state, OpenedAt: opened, AckCode: "K" + id[len(id)-4:]}
		if err := s.Save(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	mk("old-0001", now.Add(-8*24*time.Hour), EscClosed)
	mk("new-0002", now.Add(-time.Hour), EscAcked)
	mk("new-0003", now, EscOpen)
	got, err := s.Recent(ctx, now.Add(-RecentWindow), 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	if len(ids) != 2 || ids[0] != "new-0002" || ids[1] != "new-0003" {
		t.Fatalf("recent %v", ids)
	}
}

// An open escalation is a member of esc:open only (one sorted-set member
// per open escalation, not two); it joins esc:recent when it is finished.
// Recent lists it once either way, and once when an earlier version left
// it in both sets.
func TestRecentListsOpenEscalationsFromTheOpenIndex(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	s := NewEscalationStore(rdb, time.Hour)
	ctx := context.Background()
	now := time.Now()
	e := &Escalation{ID: "open-0001", CaseRef: "C-R2", State: EscOpen, OpenedAt: now, AckCode: "K0001"}
	if err := s.Save(ctx, e); err != nil {
		t.Fatal(err)
	}
	ref := EscRef(e.CaseRef, e.ID)
	if _, err := keyEscRecent.score(ctx, rdb, ref); err != redis.Nil {
		t.Fatalf("an open escalation is in esc:recent too (err %v)", err)
	}
	listed := func(want int) {
		t.Helper()
		got, err := s.Recent(ctx, now.Add(-time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != want || (want == 1 && got[0].ID != e.ID) {
			t.Fatalf("recent lists %d escalations, want %d", len(got), want)
		}
	}
	listed(1)
	// An earlier version put it in esc:recent as well: still one entry.
	rdb.ZAdd(ctx, keyEscRecent.key(ref), redis.Z{Score: ms(now), Member: ref})
	listed(1)
	rdb.ZRem(ctx, keyEscRecent.key(ref), ref)
	e.State = EscAcked
	if err := s.Save(ctx, e); err != nil {
		t.Fatal(err)
	}
	if _, err := keyEscOpen.score(ctx, rdb, ref); err != redis.Nil {
		t.Fatalf("an acknowledged escalation is still in esc:open (err %v)", err)
	}
	if _, err := keyEscRecent.score(ctx, rdb, ref); err != nil {
		t.Fatalf("an acknowledged escalation is not in esc:recent: %v", err)
	}
	listed(1)
}
