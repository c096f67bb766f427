package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
	"github.com/viogen-alerts/dispatcher/rules"
)

// Issue 8 item 9: 100,001 escalations got 99,997 distinct codes from the
// alert id alone. Allocated, the codes of 100,001 open escalations are all
// distinct, and each names its own escalation.
func TestAckCodesDistinctAmong100001Open(t *testing.T) {
	if testing.Short() {
		t.Skip("100,001 allocations")
	}
	rdb := testenv.StartRedis(t).Client(t)
	s := NewEscalationStore(rdb, time.Hour)
	ctx := context.Background()
	const n, batch = 100_001, 1000
	reqs := make([]codeRequest, n)
	derived := map[string]bool{}
	for i := range reqs {
		reqs[i] = codeRequest{caseRef: fmt.Sprintf("C-AC%06d", i%5000), alertID: fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)}
		derived[AckCode(reqs[i].alertID)] = true
	}
	codes := make([]string, 0, n)
	taken := 0
	start := time.Now()
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		got, tk, err := s.allocateCodes(ctx, reqs[lo:hi])
		if err != nil {
			t.Fatal(err)
		}
		codes, taken = append(codes, got...), taken+tk
	}
	took := time.Since(start)
	distinct := map[string]bool{}
	for _, c := range codes {
		distinct[c] = true
	}
	t.Logf("%d escalations: %d codes derived from the id alone would be distinct; allocated %d distinct, %d candidates found taken and retried, in %v",
		n, len(derived), len(distinct), taken, took.Round(time.Millisecond))
	if len(distinct) != n {
		t.Fatalf("%d distinct codes for %d open escalations", len(distinct), n)
	}
	if len(derived) < n && taken == 0 {
		t.Errorf("derived codes collide (%d distinct) but no candidate was found taken", len(derived))
	}
	pipe := rdb.Pipeline()
	for _, c := range codes {
		pipe.Get(ctx, ackCodeKey(c))
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cmds {
		if v := c.(*redis.StringCmd).Val(); v != EscRef(reqs[i].caseRef, reqs[i].alertID) {
			t.Fatalf("code %s names %q, want escalation %d", codes[i], v, i)
		}
	}
}

// tinyCodes is a store whose ack codes have 3 letters of 2: 8 codes, so
// collisions are certain.
func tinyCodes(t *testing.T) (*EscalationStore, context.Context) {
	t.Helper()
	s := NewEscalationStore(testenv.StartRedis(t).Client(t), time.Hour)
	s.codeAlphabet, s.codeLen = "AB", 3
	return s, context.Background()
}

func codeEscalation(i int, code string) *Escalation {
	id := fmt.Sprintf("%016x", 0xc0de0000+i)
	return &Escalation{ID: id, CaseRef: fmt.Sprintf("C-TC%02d", i), AckCode: code, State: EscOpen,
		Alert: rules.Alert{ID: id, Rule: "risk-rise", CaseID: fmt.Sprintf("C-TC%02d", i)}, OpenedAt: time.Now(),
		Notified: []string{"gc-ciudad-real"}}
}

// In a space of 8 codes, 8 open escalations get 8 distinct codes (the
// search goes past the hashed candidates), a ninth finds none, a code freed
// by an acknowledgement is allocated again, and every code acknowledges
// its own escalation.
func TestAckCodesUniqueAndReusedInATinySpace(t *testing.T) {
	s, ctx := tinyCodes(t)
	var reqs []codeRequest
	for i := range 8 {
		e := codeEscalation(i, "")
		reqs = append(reqs, codeRequest{caseRef: e.CaseRef, alertID: e.ID})
	}
	codes, taken, err := s.allocateCodes(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("8 codes of 8: %v, %d candidates found taken", codes, taken)
	seen := map[string]bool{}
	var open []*Escalation
	for i, c := range codes {
		if seen[c] || len(c) != 3 {
			t.Fatalf("codes %v: %q repeated or malformed", codes, c)
		}
		seen[c] = true
		e := codeEscalation(i, c)
		if err := s.Save(ctx, e); err != nil {
			t.Fatal(err)
		}
		open = append(open, e)
	}
	for _, e := range open {
		got, err := s.ByCode(ctx, e.AckCode)
		if err != nil || got.ID != e.ID {
			t.Fatalf("ACK %s reached %v (%v), want %s", e.AckCode, got, err, e.ID)
		}
	}
	// Asked again (a replayed decision), each gets its own code back.
	again, _, err := s.allocateCodes(ctx, reqs)
	if err != nil || fmt.Sprint(again) != fmt.Sprint(codes) {
		t.Fatalf("replayed allocation %v (%v), want %v", again, err, codes)
	}
	ninth := codeEscalation(8, "")
	if _, _, err := s.allocateCodes(ctx, []codeRequest{{ninth.CaseRef, ninth.ID}}); err == nil {
		t.Fatal("a ninth open escalation got a code out of 8 taken ones")
	}
	// Acknowledged, escalation 3 frees its code; the ninth gets it.
	open[3].State, open[3].AckedBy = EscAcked, "gc-ciudad-real"
	if err := s.Save(ctx, open[3]); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.allocateCodes(ctx, []codeRequest{{ninth.CaseRef, ninth.ID}})
	if err != nil || got[0] != open[3].AckCode {
		t.Fatalf("after the acknowledgement the ninth got %v (%v), want the freed %s", got, err, open[3].AckCode)
	}
	ninth.AckCode = got[0]
	if err := s.Save(ctx, ninth); err != nil {
		t.Fatal(err)
	}
	if e, err := s.ByCode(ctx, ninth.AckCode); err != nil || e.ID != ninth.ID {
		t.Fatalf("the reused code reaches %v (%v), want the ninth %s", e, err, ninth.ID)
	}
	// Closed, the ninth frees it again; until reused, an SMS with it is told
	// the escalation is no longer open (it finds the closed one).
	ninth.State = EscClosed
	if err := s.Save(ctx, ninth); err != nil {
		t.Fatal(err)
	}
	if e, err := s.ByCode(ctx, ninth.AckCode); err != nil || e.ID != ninth.ID || e.State != EscClosed {
		t.Fatalf("freed code reaches %+v (%v), want the closed ninth", e, err)
	}
	if _, err := s.ByCode(ctx, "ZZZ"); !errors.Is(err, ErrNoEscalation) {
		t.Fatalf("unknown code: %v", err)
	}
}

// The code the alert's SMS prints is the allocated one: with the alert's
// first candidate held by another open escalation, the intents, the
// escalation and the code index agree on the next candidate, and a replay
// of the decision prints it again even after the first candidate was
// freed meanwhile.
func TestAckCodeInIntentsIsTheAllocatedOne(t *testing.T) {
	e := newMergeEnv(t)
	ctx := context.Background()
	alertID := rules.AlertID("ai2", "risk-rises-to-extremo")
	first := AckCode(alertID)
	other := EscRef("C-OTHER", "0000000000000001")
	if err := e.ladder.Store.rdb.Set(ctx, ackCodeKey(first), other, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	batch := []event.Event{ev("ai1", event.CaseOpened, "C-AI1", 1, event.Medio), ev("ai2", event.RiskAssessed, "C-AI1", 2, event.Extremo)}
	e.run(t, batch...)
	esc, err := e.ladder.Store.Get(ctx, "C-AI1", alertID)
	if err != nil {
		t.Fatal(err)
	}
	if esc.AckCode == "" || esc.AckCode == first {
		t.Fatalf("escalation code %q: the first candidate %s is another escalation's", esc.AckCode, first)
	}
	printed := map[string]bool{}
	for _, in := range e.intents(t) {
		if in.AlertID == alertID {
			printed[in.AckCode] = true
		}
	}
	if len(printed) != 1 || !printed[esc.AckCode] {
		t.Fatalf("intents print %v, escalation holds %s", printed, esc.AckCode)
	}
	if got, err := e.ladder.Store.ByCode(ctx, esc.AckCode); err != nil || got.ID != alertID {
		t.Fatalf("ACK %s reaches %v (%v)", esc.AckCode, got, err)
	}
	if v, _ := e.ladder.Store.rdb.Get(ctx, ackCodeKey(first)).Result(); v != other {
		t.Fatalf("the other escalation's code was moved: %q", v)
	}
	// The other escalation is acknowledged (its code freed); the batch is
	// replayed: the same code again.
	if err := e.ladder.Store.rdb.Set(ctx, ackCodeKey(first), freedCodePrefix+other, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	e.run(t, batch...)
	for _, in := range e.intents(t) {
		if in.AlertID == alertID && in.AckCode != esc.AckCode {
			t.Fatalf("replayed intent prints %s, first %s", in.AckCode, esc.AckCode)
		}
	}
}
