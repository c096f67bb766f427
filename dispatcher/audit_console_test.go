package dispatcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
	"github.com/viogen-alerts/dispatcher/rules"
)

func noteEscalation(caseRef, id string, opened time.Time) *Escalation {
	return &Escalation{ID: id, CaseRef: caseRef, State: EscOpen, OpenedAt: opened, AckCode: "NOTE" + id[len(id)-2:],
		Notified: []string{"unit-a"}, Step: 1, Round: 2,
		Alert: rules.Alert{ID: id, Rule: "late", Severity: "warning", CaseID: caseRef, Policy: rules.PolicySnapshot{ID: "page"}}}
}

// Notes are kept in the escalation's slot, as long as the escalation,
// in order, and refused (not dropped) past MaxNotes.
func TestNotesLiveWithTheEscalation(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	g := guardSlots(t, rdb)
	ctx := context.Background()
	st := NewEscalationStore(rdb, time.Hour)
	e := noteEscalation("C-SIM-0001", "alert-note-01", time.Now())
	if err := st.AddNote(ctx, e, Note{ID: "n0", Text: "before"}); !errors.Is(err, ErrNoEscalation) {
		t.Fatalf("note on a missing escalation: %v, want ErrNoEscalation", err)
	}
	if err := st.Save(ctx, e); err != nil {
		t.Fatal(err)
	}
	for i := range MaxNotes {
		if err := st.AddNote(ctx, e, Note{ID: fmt.Sprintf("n%d", i+1), Operator: "op-a", Text: "patrol informed"}); err != nil {
			t.Fatalf("note %d: %v", i+1, err)
		}
	}
	if err := st.AddNote(ctx, e, Note{ID: "over", Text: "one too many"}); !errors.Is(err, ErrTooManyNotes) {
		t.Fatalf("note past MaxNotes: %v, want ErrTooManyNotes", err)
	}
	ns, err := st.Notes(ctx, e)
	if err != nil || len(ns) != MaxNotes || ns[0].ID != "n1" || ns[MaxNotes-1].ID != fmt.Sprintf("n%d", MaxNotes) {
		t.Fatalf("notes %d %v", len(ns), err)
	}
	key := escNotesKey(e.CaseRef, e.ID)
	if keySlot(key) != keySlot(escKey(e.CaseRef, e.ID)) {
		t.Fatalf("%s is not in its escalation's slot", key)
	}
	// Save renews the record's lifetime, and the notes' with it.
	rdb.PExpire(ctx, key, time.Minute)
	rdb.PExpire(ctx, escKey(e.CaseRef, e.ID), time.Minute)
	e.State = EscAcked
	if err := st.Save(ctx, e); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 50*time.Minute || ttl > time.Hour {
		t.Fatalf("notes' lifetime after Save %v, want the escalation's (1h)", ttl)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == 0 {
		t.Error("no script or transaction checked for slots")
	}
}

// Notes and silences are published on the results topic with the
// operator id, and without the note's text or the silence's reason.
func TestConsoleAuditRecordsOnResultsTopic(t *testing.T) {
	_, brokers := testenv.StartKafka(t, 1, TopicResults)
	w := NewWriter(brokers, quietLog())
	t.Cleanup(func() { _ = w.Close() })
	a := &ConsoleAudit{Writer: w}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	e := noteEscalation("C-SIM-0002", "alert-note-02", at)
	text := "Patrulla avisada; revisar a las 10:30"
	if err := a.Note(ctx, e, Note{ID: "note-1", Operator: "op-a", Agency: "unit-a", Text: text, At: at}); err != nil {
		t.Fatal(err)
	}
	s := &Silence{ID: "sil-1", Agency: "unit-a", Rule: "late", Municipality: "13047", StartsAt: at, EndsAt: at.Add(2 * time.Hour),
		Reason: "planned maintenance window", Author: "op-a", CreatedAt: at}
	if err := a.Silence(ctx, s, OutcomeSilenceCreated, "op-a", at); err != nil {
		t.Fatal(err)
	}
	if err := a.Silence(ctx, s, OutcomeSilenceEnded, "op-c", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	msgs := readTopic(ctx, t, brokers, TopicResults, 3)
	var rs []Result
	for _, m := range msgs {
		if strings.Contains(string(m.Value), "Patrulla") || strings.Contains(string(m.Value), "maintenance") {
			t.Errorf("free text in the audit record: %s", m.Value)
		}
		var r Result
		if err := json.Unmarshal(m.Value, &r); err != nil {
			t.Fatal(err)
		}
		checkPIIFree(t, "audit record", strings.Replace(string(m.Value), r.NoteSHA256, "", 1)) // hex digits are no phone
		rs = append(rs, r)
	}
	sum := sha256.Sum256([]byte(text))
	n := rs[0]
	if string(msgs[0].Key) != e.CaseRef || n.Outcome != OutcomeNote || n.Operator != "op-a" || n.AlertID != e.ID || n.CaseRef != e.CaseRef ||
		n.AgencyID != "unit-a" || n.Channel != ViaConsole || n.NoteID != "note-1" || n.NoteSHA256 != hex.EncodeToString(sum[:]) ||
		n.NoteLength != len([]rune(text)) || n.Step != 1 || n.Round != 2 || !n.At.Equal(at) {
		t.Errorf("note record %+v key %s", n, msgs[0].Key)
	}
	for i, want := range []struct{ outcome, operator string }{{OutcomeSilenceCreated, "op-a"}, {OutcomeSilenceEnded, "op-c"}} {
		r := rs[i+1]
		if string(msgs[i+1].Key) != "silence:sil-1" || r.Outcome != want.outcome || r.Operator != want.operator || r.AgencyID != "unit-a" ||
			r.Silence == nil || *r.Silence != (SilenceRecord{ID: "sil-1", Agency: "unit-a", Rule: "late", Municipality: "13047", StartsAt: at, EndsAt: at.Add(2 * time.Hour)}) {
			t.Errorf("silence record %d: %+v %+v", i, r, r.Silence)
		}
	}
}
