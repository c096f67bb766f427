package dispatcher

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
	"github.com/viogen-alerts/dispatcher/rules"
)

// An escalation's record refers to its policy snapshot, stored once for
// all escalations of that snapshot; reading it back gives the whole
// policy; a record of an earlier version (policy inline) still reads; a
// snapshot missing from Redis is an error, never an empty ladder.
func TestEscalationPolicySnapshotStoredOnce(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	store := NewEscalationStore(rdb, time.Hour)
	pol := rules.PolicySnapshot{ID: "device-alarm", Steps: []rules.PolicyStep{
		{Notify: []rules.TargetSpec{{Agency: "responsible", Role: "on_call", Via: []string{"pager", "sms"}}}, AckWithin: rules.Duration(5 * time.Minute), Repeat: 2},
		{Notify: []rules.TargetSpec{{Agency: "responsible", Role: "supervisor", Via: []string{"sms"}}}, AckWithin: rules.Duration(10 * time.Minute)},
	}}
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	for _, id := range []string{"a1", "a2"} {
		e := &Escalation{ID: id, CaseRef: "C-PS", Alert: rules.Alert{ID: id, CaseID: "C-PS", Policy: pol}, AckCode: AckCode(id),
			State: EscOpen, OpenedAt: now, DueAt: now.Add(5 * time.Minute)}
		if err := store.Save(ctx, e); err != nil {
			t.Fatal(err)
		}
		if len(e.Alert.Policy.Steps) != 2 {
			t.Fatal("Save changed the caller's escalation")
		}
	}
	keys, _ := rdb.Keys(ctx, "policy:*").Result()
	if len(keys) != 1 {
		t.Fatalf("policy keys %v, want one for both escalations", keys)
	}
	raw, _ := rdb.Get(ctx, escKey("C-PS", "a1")).Result()
	if strings.Contains(raw, "supervisor") || recordOf(t, raw).PolicyRef == "" {
		t.Fatalf("the record holds the policy inline: %s", raw)
	}
	fresh := NewEscalationStore(rdb, time.Hour) // nothing cached: read from Redis
	got, err := fresh.Get(ctx, "C-PS", "a2")
	if err != nil || len(got.Alert.Policy.Steps) != 2 || got.Alert.Policy.Steps[1].Notify[0].Role != "supervisor" || got.Alert.Policy.ID != "device-alarm" {
		t.Fatalf("read back: %+v (%v)", got, err)
	}

	old := Escalation{ID: "a0", CaseRef: "C-PS", Alert: rules.Alert{ID: "a0", CaseID: "C-PS", Policy: pol}, State: EscOpen, OpenedAt: now}
	b, _ := json.Marshal(old) // as an earlier version wrote it
	rdb.Set(ctx, escKey("C-PS", "a0"), b, time.Hour)
	if got, err := fresh.Get(ctx, "C-PS", "a0"); err != nil || len(got.Alert.Policy.Steps) != 2 {
		t.Fatalf("a record with its policy inline: %+v (%v)", got, err)
	}

	rdb.Del(ctx, keys[0])
	if _, err := NewEscalationStore(rdb, time.Hour).Get(ctx, "C-PS", "a1"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("a missing policy snapshot read as %v, want an error", err)
	}
}
