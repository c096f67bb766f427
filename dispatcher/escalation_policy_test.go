package dispatcher

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
	"github.com/viogen-alerts/dispatcher/rules"
)

// onlyProfile is the reference of the one escalation profile stored.
func onlyProfile(t *testing.T, rdb redis.UniversalClient) string {
	t.Helper()
	keys, err := rdb.Keys(context.Background(), profileKey("*")).Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("profile keys %v (%v), want one", keys, err)
	}
	return strings.TrimPrefix(keys[0], profileKey(""))
}

// An escalation's record refers to its profile (the rule's id, severity,
// template, flags and policy snapshot), stored once for all escalations
// of that rule and snapshot; reading it back gives the whole alert and
// policy; records of earlier versions (a policy snapshot by reference,
// the policy inline) still read; a profile or snapshot missing from
// Redis is an error, never an empty ladder.
func TestEscalationPolicySnapshotStoredOnce(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	store := NewEscalationStore(rdb, time.Hour)
	pol := rules.PolicySnapshot{ID: "device-alarm", Steps: []rules.PolicyStep{
		{Notify: []rules.TargetSpec{{Agency: "responsible", Role: "on_call", Via: []string{"pager", "sms"}}}, AckWithin: rules.Duration(5 * time.Minute), Repeat: 2},
		{Notify: []rules.TargetSpec{{Agency: "responsible", Role: "supervisor", Via: []string{"sms"}}}, AckWithin: rules.Duration(10 * time.Minute)},
	}}
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	alert := func(id string) rules.Alert {
		return rules.Alert{ID: id, CaseID: "C-PS", Rule: "alarm-rule", Severity: "critical", Critical: true, Template: "device_alarm",
			SuppressFor: rules.Duration(time.Minute), SuppressKey: "alarm-rule/C-PS/", Policy: pol}
	}
	for _, id := range []string{"a1", "a2"} {
		e := &Escalation{ID: id, CaseRef: "C-PS", Alert: alert(id), AckCode: AckCode(id), State: EscOpen, OpenedAt: now, DueAt: now.Add(5 * time.Minute)}
		if err := store.Save(ctx, e); err != nil {
			t.Fatal(err)
		}
		if len(e.Alert.Policy.Steps) != 2 {
			t.Fatal("Save changed the caller's escalation")
		}
	}
	ref := onlyProfile(t, rdb)
	raw, _ := rdb.Get(ctx, escKey("C-PS", "a1")).Result()
	if r := recordOf(t, raw); r.Profile != ref || r.SuppressKey != nil || strings.Contains(raw, "supervisor") ||
		strings.Contains(raw, "alarm-rule") || strings.Contains(raw, "device_alarm") {
		t.Fatalf("the record %s holds what its profile %s holds", raw, ref)
	}
	fresh := NewEscalationStore(rdb, time.Hour) // nothing cached: read from Redis
	got, err := fresh.Get(ctx, "C-PS", "a2")
	if err != nil {
		t.Fatal(err)
	}
	if gj, wj := mustJSON(t, got.Alert), mustJSON(t, alert("a2")); gj != wj {
		t.Fatalf("alert read back\n%s\nwant\n%s", gj, wj)
	}

	// Version 3: the rule in the record, the policy snapshot by reference.
	pref, praw, _ := policyRef(pol)
	rdb.Set(ctx, policyKey(pref), praw, 0)
	v3 := `[3,"alarm-rule","critical","device_alarm","ev-1",9,null,null,"unit","K7Q2MX",1773133200000,300000,null,"` + pref + `",null,true]`
	rdb.Set(ctx, escKey("C-PS", "a3"), v3, time.Hour)
	if got, err := fresh.Get(ctx, "C-PS", "a3"); err != nil || got.Alert.Rule != "alarm-rule" || !got.Alert.Critical ||
		got.Alert.SuppressKey != "alarm-rule/C-PS/" || len(got.Alert.Policy.Steps) != 2 {
		t.Fatalf("a version 3 record: %+v (%v)", got, err)
	}
	old := Escalation{ID: "a0", CaseRef: "C-PS", Alert: rules.Alert{ID: "a0", CaseID: "C-PS", Policy: pol}, State: EscOpen, OpenedAt: now}
	b, _ := json.Marshal(old) // as an earlier version wrote it
	rdb.Set(ctx, escKey("C-PS", "a0"), b, time.Hour)
	if got, err := fresh.Get(ctx, "C-PS", "a0"); err != nil || len(got.Alert.Policy.Steps) != 2 {
		t.Fatalf("a record with its policy inline: %+v (%v)", got, err)
	}

	rdb.Del(ctx, profileKey(ref), policyKey(pref))
	for _, id := range []string{"a1", "a3"} {
		if _, err := NewEscalationStore(rdb, time.Hour).Get(ctx, "C-PS", id); err == nil || !strings.Contains(err.Error(), "missing") {
			t.Fatalf("%s with what it refers to missing read as %v, want an error", id, err)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// policyRef is the reference of a policy snapshot as records of version 3
// and 2 name it.
func policyRef(p rules.PolicySnapshot) (ref string, raw []byte, err error) {
	return snapshotRef(p)
}
