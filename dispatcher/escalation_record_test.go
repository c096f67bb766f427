package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
	"github.com/viogen-alerts/dispatcher/rules"
)

// fillAll sets every field of the struct v points to, recursively, to a
// value that is not its zero: strings name their path, numbers count,
// slices hold one element, pointers point to a filled value, times carry
// nanoseconds below a millisecond.
func fillAll(t *testing.T, v reflect.Value, path string, n *int) {
	t.Helper()
	*n++
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 3, 10, 9, 0, *n, 123456789+*n, time.UTC)))
		return
	case reflect.TypeFor[rules.Duration]():
		v.Set(reflect.ValueOf(rules.Duration(time.Duration(*n) * time.Minute)))
		return
	case reflect.TypeFor[event.Level]():
		v.Set(reflect.ValueOf(event.Level(1 + *n%4)))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.Type == reflect.TypeFor[rules.PolicySnapshot]() || !f.IsExported() {
				continue // stored by reference, set by the test; or the store's own
			}
			fillAll(t, v.Field(i), path+"."+f.Name, n)
		}
	case reflect.String:
		v.SetString(strings.TrimPrefix(path, ".") + "-x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fillAll(t, s.Index(0), path+"[0]", n)
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillAll(t, p.Elem(), path, n)
		v.Set(p)
	default:
		t.Fatalf("fillAll: %s is a %s: teach the test (and escRecord) about it", path, v.Kind())
	}
}

// The compact record keeps every field of an escalation and of its alert:
// each is filled through reflection (a field added to Escalation or to
// rules.Alert and not to escRecord fails here), saved, and read back equal
// by a store with nothing cached. Ids and case equal to the key's, and the
// suppression key of critical rules, are left out of the record and come
// back all the same; a time with an offset keeps it.
func TestEscalationRecordRoundTrip(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	pol := rules.PolicySnapshot{ID: "p", Steps: []rules.PolicyStep{{AckWithin: rules.Duration(5 * time.Minute)}}}
	for _, tc := range []struct {
		name string
		edit func(e *Escalation)
		// short: the record leaves out the alert's id and case and its
		// suppression key
		short bool
	}{
		{"every field its own value", func(e *Escalation) {}, false},
		{"alert id and case as the key's, a critical rule's suppression key", func(e *Escalation) {
			e.Alert.ID, e.Alert.CaseID = e.ID, e.CaseRef
			e.Alert.SuppressKey = e.Alert.Rule + "/" + e.CaseRef + "/" + e.Alert.Level.String()
		}, true},
		{"no level, acknowledged", func(e *Escalation) {
			e.Alert.ID, e.Alert.CaseID, e.Alert.Level, e.State = e.ID, e.CaseRef, event.LevelNone, EscAcked
			e.Alert.SuppressKey = e.Alert.Rule + "/" + e.CaseRef + "/"
		}, true},
		{"a rule's suppression key", func(e *Escalation) {
			e.Alert.ID, e.Alert.CaseID, e.Alert.Critical = e.ID, e.CaseRef, false
			e.Alert.SuppressKey = e.Alert.Rule + "/" + e.CaseRef
		}, true},
		{"a state unknown to this version", func(e *Escalation) { e.State = "State-x" }, false},
		{"empty suppression key, times with an offset and in whole milliseconds", func(e *Escalation) {
			e.Alert.SuppressKey = ""
			e.Alert.OccurredAt = time.Date(2026, 3, 29, 3, 30, 0, 5, time.FixedZone("", 2*3600))
			e.OpenedAt = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
			e.DueAt = time.UnixMilli(1773133500123).UTC()
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want Escalation
			n := 0
			fillAll(t, reflect.ValueOf(&want).Elem(), "", &n)
			want.CaseRef, want.ID = "C-RT1", fmt.Sprintf("%016x", n)
			want.State = EscOpen
			want.Alert.Policy = pol
			tc.edit(&want)
			if err := NewEscalationStore(rdb, time.Hour).Save(ctx, &want); err != nil {
				t.Fatal(err)
			}
			raw, err := rdb.Get(ctx, escKey(want.CaseRef, want.ID)).Result()
			if err != nil || !strings.HasPrefix(raw, `[4,`) {
				t.Fatalf("record %q (%v), want the compact form", raw, err)
			}
			r := recordOf(t, raw)
			if short := r.SuppressKey == nil && r.AlertID == nil && r.AlertCase == nil; short != tc.short {
				t.Fatalf("record %s: leaves out ids and suppression key: %v, want %v", raw, short, tc.short)
			}
			// An earlier version decodes a record as the Escalation's own
			// JSON: given a compact one, it must fail (and retry its batch)
			// rather than read an escalation without a state.
			var earlier Escalation
			if err := json.Unmarshal([]byte(raw), &earlier); err == nil {
				t.Fatalf("an earlier version reads the compact record %s as %+v, without an error", raw, earlier)
			}
			got, err := NewEscalationStore(rdb, time.Hour).Get(ctx, want.CaseRef, want.ID)
			if err != nil {
				t.Fatal(err)
			}
			want.PolicyRef = got.PolicyRef // Save names the snapshot
			wj, _ := json.Marshal(want)
			gj, _ := json.Marshal(got)
			if string(wj) != string(gj) { // times as RFC 3339 with their offset
				t.Fatalf("read back\n%s\nwant\n%s\nrecord %s", gj, wj, raw)
			}
		})
	}
}

// recordOf decodes a positional (version 4) escalation record.
func recordOf(t *testing.T, raw string) escRecord4 {
	t.Helper()
	var r escRecord4
	if v, err := decodePositional([]byte(raw), &r); err != nil || v != escRecordVersion {
		t.Fatalf("record %s: version %d (%v)", raw, v, err)
	}
	return r
}

// A record written before the compact form (the Escalation's own JSON)
// still reads, and an ack code is found in it by a replayed decision.
func TestEscalationRecordEarlierFormatReads(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	s := NewEscalationStore(rdb, time.Hour)
	pol := rules.PolicySnapshot{ID: "p", Steps: []rules.PolicyStep{{AckWithin: rules.Duration(5 * time.Minute)}}}
	pref, praw, err := policyRef(pol)
	if err != nil {
		t.Fatal(err)
	}
	rdb.Set(ctx, policyKey(pref), praw, 0)
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	old := Escalation{ID: "00000000000000e1", CaseRef: "C-EF1", AckCode: "K7Q2MX", State: EscOpen, OpenedAt: now,
		DueAt: now.Add(5 * time.Minute), Notified: []string{"pl-x"}, PolicyRef: pref,
		Alert: rules.Alert{ID: "00000000000000e1", CaseID: "C-EF1", Rule: "r", SuppressKey: "r/C-EF1", Level: event.Alto}}
	b, _ := json.Marshal(old)
	rdb.Set(ctx, escKey(old.CaseRef, old.ID), b, time.Hour)
	got, err := s.Get(ctx, old.CaseRef, old.ID)
	if err != nil || got.AckCode != "K7Q2MX" || got.Alert.SuppressKey != "r/C-EF1" || len(got.Alert.Policy.Steps) != 1 || !got.DueAt.Equal(old.DueAt) {
		t.Fatalf("earlier record read as %+v (%v)", got, err)
	}
	codes, _, err := s.allocateCodes(ctx, []codeRequest{{caseRef: old.CaseRef, alertID: old.ID}})
	if err != nil || codes[0] != "K7Q2MX" {
		t.Fatalf("replayed allocation %v (%v), want the earlier record's code", codes, err)
	}
}

// An open escalation is one record and one field of its case's hash; the
// esc-code key lives only until the record is saved; finished, the field
// goes. A case hash holding only such fields is not a known case.
func TestEscalationKeysFoldedIntoRecordAndCaseHash(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	s := NewEscalationStore(rdb, time.Hour)
	e := codeEscalation(1, "")
	e.Alert.Policy = rules.PolicySnapshot{ID: "p", Steps: []rules.PolicyStep{{AckWithin: rules.Duration(5 * time.Minute)}}}
	codes, _, err := s.allocateCodes(ctx, []codeRequest{{caseRef: e.CaseRef, alertID: e.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := rdb.Get(ctx, escCodeKey(e.CaseRef, e.ID)).Result(); v != codes[0] {
		t.Fatalf("before the record: esc-code %q, want %s", v, codes[0])
	}
	e.AckCode = codes[0]
	if err := s.Save(ctx, e); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, escCodeKey(e.CaseRef, e.ID), caseEscKey(e.CaseRef)).Result(); n != 0 {
		t.Fatalf("%d of esc-code and esc-open still exist after the record was saved", n)
	}
	if v, _ := rdb.HGet(ctx, caseKey(e.CaseRef), caseOpenEscField(e.ID)).Result(); v != "1" {
		t.Fatalf("case hash field %q, want the open escalation named", v)
	}
	if open, err := s.OpenForCase(ctx, e.CaseRef); err != nil || len(open) != 1 || open[0].ID != e.ID {
		t.Fatalf("open for case: %v (%v)", open, err)
	}
	if _, ok, err := NewStore(rdb, time.Hour).Case(ctx, e.CaseRef); ok || err != nil {
		t.Fatalf("a case hash naming only an escalation reads as a known case (%v)", err)
	}
	if again, _, err := s.allocateCodes(ctx, []codeRequest{{caseRef: e.CaseRef, alertID: e.ID}}); err != nil || again[0] != e.AckCode {
		t.Fatalf("replayed allocation %v (%v), want %s from the record", again, err, e.AckCode)
	}
	e.State = EscAcked
	if err := s.Save(ctx, e); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, caseKey(e.CaseRef)).Result(); n != 0 {
		t.Fatal("the case hash still names the escalation after it finished")
	}
	if open, err := s.OpenForCase(ctx, e.CaseRef); err != nil || len(open) != 0 {
		t.Fatalf("open for case after the acknowledgement: %v (%v)", open, err)
	}
}

// downgrade rewrites an open escalation's case keys as the version before
// the compact record wrote them: the Escalation's own JSON, the case's
// esc-open set, the esc-code key, and no field in the case hash. Its
// global keys (escidx, ackcode, open set, step timer) are unchanged.
func downgrade(t *testing.T, s *EscalationStore, e *Escalation) {
	t.Helper()
	ctx := context.Background()
	rec := *e
	pref, praw, err := policyRef(e.Alert.Policy)
	if err != nil {
		t.Fatal(err)
	}
	rec.PolicyRef, rec.Alert.Policy = pref, rules.PolicySnapshot{}
	b, _ := json.Marshal(rec)
	if err := s.rdb.SetNX(ctx, policyKey(pref), praw, 0).Err(); err != nil {
		t.Fatal(err)
	}
	tx := s.rdb.TxPipeline()
	tx.Set(ctx, escKey(e.CaseRef, e.ID), b, s.ttl)
	tx.SAdd(ctx, caseEscKey(e.CaseRef), e.ID)
	tx.Set(ctx, escCodeKey(e.CaseRef, e.ID), e.AckCode, s.ttl)
	tx.HDel(ctx, caseKey(e.CaseRef), caseOpenEscField(e.ID))
	if _, err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// Escalations left open by the previous version keep working after the
// upgrade: one is acknowledged by an SMS reply with its code, one times
// out and climbs (its record is then rewritten in the compact form), one
// is closed with its case; each leaves the earlier esc-open set drained.
func TestEscalationsOpenBeforeUpgradeKeepWorking(t *testing.T) {
	clock := newFakeNow(time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC))
	p := startPipeline(t, clock.Now)
	tw := providertest.NewTwilio(t, testSID, testToken)
	srv := ackServer(t, p, testToken)
	ctx := context.Background()
	cases := []string{"C-UP1", "C-UP2", "C-UP3"}
	esc := map[string]*Escalation{}
	for i, c := range cases {
		p.publish(t, ev(fmt.Sprintf("up%d-1", i), event.CaseOpened, c, 1, event.Medio), ev(fmt.Sprintf("up%d-2", i), event.RiskAssessed, c, 2, event.Extremo))
		esc[c] = waitEscalation(t, p, c)
		downgrade(t, p.esc, esc[c])
		raw, _ := p.esc.rdb.Get(ctx, escKey(c, esc[c].ID)).Result()
		if !strings.HasPrefix(raw, `{"id":"`) {
			t.Fatalf("not downgraded: %s", raw)
		}
		if open, err := p.esc.OpenForCase(ctx, c); err != nil || len(open) != 1 || open[0].ID != esc[c].ID {
			t.Fatalf("%s open through the earlier set: %v (%v)", c, open, err)
		}
	}
	drained := func(c string) {
		t.Helper()
		if n, _ := p.esc.rdb.Exists(ctx, caseEscKey(c), escCodeKey(c, esc[c].ID)).Result(); n != 0 {
			t.Errorf("%s: %d of the earlier esc-open set and esc-code key left", c, n)
		}
	}

	// 1: ACK <code> by SMS.
	e1 := esc["C-UP1"]
	if got, err := p.esc.ByCode(ctx, e1.AckCode); err != nil || got.ID != e1.ID {
		t.Fatalf("ACK %s reaches %v (%v)", e1.AckCode, got, err)
	}
	if err := tw.SendInbound(ctx, srv.URL+"/v1/twilio/inbound", "+34600000011", "+34600000999", "ACK "+e1.AckCode); err != nil {
		t.Fatal(err)
	}
	if acked := waitState(t, p, e1, EscAcked); acked.AckVia != "sms" {
		t.Fatalf("acked: %+v", acked)
	}
	drained("C-UP1")
	if v, _ := p.esc.rdb.Get(ctx, ackCodeKey(e1.AckCode)).Result(); v != freedCodePrefix+EscRef(e1.CaseRef, e1.ID) {
		t.Errorf("ack code %s after the acknowledgement: %q, want freed", e1.AckCode, v)
	}

	// 3: the case closes.
	e3 := esc["C-UP3"]
	p.publish(t, ev("up2-3", event.CaseClosed, "C-UP3", 3, event.LevelNone))
	waitState(t, p, e3, EscClosed)
	drained("C-UP3")

	// 2: the step times out; the ladder climbs and rewrites the record.
	e2 := esc["C-UP2"]
	clock.Add(11 * time.Minute)
	fireAll(t, p.timers)
	p.intents.waitFor(t, "step 0 round 1 of the earlier escalation", func(in Intent) bool {
		return in.CaseRef == "C-UP2" && in.AlertID == e2.ID && in.Step == 0 && in.Round == 1
	})
	var got *Escalation
	waitFor(t, ctx, func() bool {
		g, err := p.esc.Get(ctx, e2.CaseRef, e2.ID)
		if err == nil && g.Round == 1 {
			got = g
		}
		return got != nil
	})
	if got.State != EscOpen || got.AckCode != e2.AckCode || !got.DueAt.After(e2.DueAt) {
		t.Fatalf("after the timeout: %+v", got)
	}
	raw, _ := p.esc.rdb.Get(ctx, escKey(e2.CaseRef, e2.ID)).Result()
	if !strings.HasPrefix(raw, `[4,`) {
		t.Errorf("record not rewritten in the compact form: %s", raw)
	}
	drained("C-UP2")
	open, err := p.esc.OpenForCase(ctx, "C-UP2") // with the missed check-ins the timers raised
	if err != nil || !slices.ContainsFunc(open, func(x *Escalation) bool { return x.ID == e2.ID }) {
		t.Fatalf("C-UP2 open after the move: %v (%v)", open, err)
	}
}

// ByRefs (the timers' read of a claim's escalations, one round trip)
// gives what ByRef gives one at a time, in order: saved records, a record
// of the earlier format, and nil for a ref with no record or no ref form.
func TestEscalationsByRefsReadAsByRef(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	s := NewEscalationStore(rdb, time.Hour)
	refs := saveEscalations(t, s, 40, 3)
	old := codeEscalation(50, "OLD001")
	if err := s.Save(ctx, old); err != nil {
		t.Fatal(err)
	}
	downgrade(t, s, old)
	refs = append(refs, EscRef("C-TC99", "00000000deadbeef"), "not-a-ref", EscRef(old.CaseRef, old.ID))
	got, bad, err := s.ByRefs(ctx, refs)
	if err != nil || len(got) != len(refs) || errors.Join(bad...) != nil {
		t.Fatalf("ByRefs: %d (%v, %v)", len(got), err, bad)
	}
	for i, ref := range refs {
		want, err := s.ByRef(ctx, ref)
		if err == ErrNoEscalation {
			if got[i] != nil {
				t.Fatalf("%s: ByRefs gave %+v, ByRef none", ref, got[i])
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(got[i])
		if got[i] == nil || string(wj) != string(gj) {
			t.Fatalf("%s: ByRefs gave\n%s\nByRef\n%s", ref, gj, wj)
		}
	}
	if got[0].Step != 0 || got[2].Step != 2 || got[5].AckCode != "OLD001" || got[3] != nil || got[4] != nil {
		t.Fatalf("out of order or missing: %+v", got)
	}
}

// An escalation that cannot be read (a record that does not decode, a
// missing policy snapshot, a key of another type) fails its own entry of
// ByRefs, not the others; a missing record before it is no error.
func TestEscalationsByRefsFailOnlyTheUnreadable(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	s := NewEscalationStore(rdb, time.Hour)
	refs := saveEscalations(t, s, 70, 5)
	c1, a1, _ := ParseEscRef(refs[1])
	rdb.Set(ctx, escKey(c1, a1), "{not json", time.Hour)
	c2, a2, _ := ParseEscRef(refs[2])
	rdb.Del(ctx, escKey(c2, a2))
	rdb.HSet(ctx, escKey(c2, a2), "f", "v")                                // another type: WRONGTYPE
	refs = append([]string{EscRef("C-TC98", "00000000deadbeef")}, refs...) // missing, first
	s2 := NewEscalationStore(rdb, time.Hour)                               // no profile cached
	pkey := profileKey(onlyProfile(t, rdb))
	praw, _ := rdb.Get(ctx, pkey).Result()
	rdb.Del(ctx, pkey)
	got, bad, err := s2.ByRefs(ctx, refs)
	if err != nil {
		t.Fatalf("one unreadable entry failed them all: %v", err)
	}
	for i := range refs {
		wantBad := i >= 1 // with the policy gone every saved one fails; see below
		if (bad[i] != nil) != wantBad || (got[i] != nil) {
			t.Fatalf("entry %d: %v, %v", i, got[i], bad[i])
		}
	}
	// With the profile back, only the corrupt record and the hash fail.
	rdb.Set(ctx, pkey, praw, 0)
	got, bad, err = s2.ByRefs(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{false, false, true, true, false, false} {
		if (bad[i] != nil) != want || (got[i] == nil) != (want || i == 0) {
			t.Fatalf("entry %d: %+v, %v (want failed: %v)", i, got[i], bad[i], want)
		}
	}
}

func testPolicy() rules.PolicySnapshot {
	return rules.PolicySnapshot{ID: "p", Steps: []rules.PolicyStep{{AckWithin: rules.Duration(5 * time.Minute)}}}
}

// saveEscalations saves n open escalations (codeEscalation first..,
// step i, testPolicy) and returns their refs.
func saveEscalations(t *testing.T, s *EscalationStore, first, n int) []string {
	t.Helper()
	var refs []string
	for i := range n {
		e := codeEscalation(first+i, fmt.Sprintf("S%05d", first+i))
		e.Step, e.Alert.Policy = i, testPolicy()
		if err := s.Save(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, EscRef(e.CaseRef, e.ID))
	}
	return refs
}

// Version 4 (as version 3 did) writes the event type as its number and
// the event's and due times as spans from the opening, where it can;
// every case reads back as it was written, and a typical open
// escalation's record stays within 156 bytes, so that Redis keeps it (with
// its 4 bytes of header) in a 160-byte allocation, with an event id of 17
// characters as the load command's or of 36 as a UUID.
func TestEscalationRecordVersion4Compaction(t *testing.T) {
	opened := time.UnixMilli(1796102226761).UTC()
	typical := func() *Escalation {
		return &Escalation{ID: "ea0d57a0ee84a579", CaseRef: "C-LTc8487e0014731", AckCode: "VGZ2WJ", State: EscOpen,
			OpenedAt: opened, DueAt: opened.Add(24 * time.Hour), Notified: []string{"lt-unidad"}, profileRef: "d26efc55322ae801",
			Alert: rules.Alert{ID: "ea0d57a0ee84a579", CaseID: "C-LTc8487e0014731", Rule: "lt-escalate", Severity: "critical",
				Critical: true, Level: event.Extremo, Template: "device_alarm", EventID: "lt-c8487e-0014731", EventType: event.BreachReported,
				OccurredAt: opened.Add(-8452601501 * time.Nanosecond), SuppressKey: "lt-escalate/C-LTc8487e0014731/extremo",
				Route: rules.RouteContext{Jurisdiction: event.Jurisdiction{Municipality: "13047", Province: "13", Region: "CM"}, ResponsibleUnit: "lt-unidad"}}}
	}
	for _, tc := range []struct {
		name string
		edit func(e *Escalation)
		want string // in the record
	}{
		{"typical", func(e *Escalation) {}, `[4,"lt-c8487e-0014731",7,-8452.601501,`},
		{"typical, a UUID event id", func(e *Escalation) { e.Alert.EventID = "5f0c9a52-7d1e-4b8e-9a4f-2c3d1e0b7a96" }, `,7,-8452.601501,`},
		{"event a fraction of a millisecond before", func(e *Escalation) { e.Alert.OccurredAt = opened.Add(-500) }, `,-0.000500,`},
		{"event after, due at the opening", func(e *Escalation) { e.Alert.OccurredAt, e.DueAt = opened.Add(3*time.Millisecond), opened }, `,3,`},
		{"no due time", func(e *Escalation) { e.DueAt = time.Time{} }, `,"VGZ2WJ",1796102226761,null,`},
		{"event time with an offset", func(e *Escalation) {
			e.Alert.OccurredAt = time.Date(2026, 3, 29, 3, 30, 0, 5, time.FixedZone("", 2*3600))
		}, `"2026-03-29T03:30:00.000000005+02:00"`},
		{"event centuries before", func(e *Escalation) { e.Alert.OccurredAt = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC) }, `"1600-01-01T00:00:00Z"`},
		{"no opening time", func(e *Escalation) { e.OpenedAt = time.Time{} }, `,1796102218308.398499,1796188626761]`},
		{"a type this version has no number for", func(e *Escalation) { e.Alert.EventType = "case.future" }, `"case.future"`},
		{"the last type numbered", func(e *Escalation) { e.Alert.EventType = event.EscalationAcknowledged }, `,16,`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := typical()
			tc.edit(e)
			b, err := encodeEscalation(e, WriteCurrent)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tc.want) {
				t.Fatalf("record %s, want %s in it", b, tc.want)
			}
			if testing.Verbose() {
				t.Logf("%d bytes: %s", len(b), b)
			}
			if strings.HasPrefix(tc.name, "typical") && len(b) > 156 {
				t.Fatalf("record %s: %d bytes, want at most 156", b, len(b))
			}
			got, err := decodeEscalation(e.CaseRef, e.ID, b)
			if err != nil {
				t.Fatal(err)
			}
			if got.profileRef != e.profileRef {
				t.Fatalf("record %s: profile %q, want %q", b, got.profileRef, e.profileRef)
			}
			profileOf(e.Alert).apply(got) // as EscalationStore.decode does
			wj, _ := json.Marshal(e)
			gj, _ := json.Marshal(got)
			if string(wj) != string(gj) {
				t.Fatalf("read back\n%s\nwant\n%s\nrecord %s", gj, wj, b)
			}
		})
	}
	bad := `[3,"r",null,null,"ev",17]`
	if _, err := decodeEscalation("C-1", "a1", []byte(bad)); err == nil || !strings.Contains(err.Error(), "event type number 17") {
		t.Fatalf("record %s: %v, want an error naming the event type number", bad, err)
	}
	for _, bad := range []string{`[3,` + strings.Repeat("null,", 45) + `1]`, `[4,` + strings.Repeat("null,", 40) + `1]`} {
		if _, err := decodeEscalation("C-1", "a1", []byte(bad)); err == nil {
			t.Fatalf("record with more fields than this version knows read without an error")
		}
	}
	for bad, want := range map[string]string{`[4,"ev",17,null,null,null,null,null,null,null,"p"]`: "event type number 17",
		`[4,"ev",7]`: "without its profile", `[5,"ev"]`: "version 5", `[x]`: "version", `[]`: "version", `[4`: "not a positional"} {
		if _, err := decodeEscalation("C-1", "a1", []byte(bad)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("record %s: %v, want an error naming %q", bad, err, want)
		}
	}
}

// A positional record's fields are known by their place, and an event
// type by its number: records already stored are read by them. Fields
// may be added at the end only (from the independent review).
func TestRecordLayoutsFrozen(t *testing.T) {
	frozen := map[reflect.Type][]string{
		reflect.TypeFor[escRecord](): {"V", "Rule", "Severity", "Template", "EventID", "Event", "Occurred", "Place", "Unit", "AckCode",
			"OpenedAt", "Due", "Notified", "PolicyRef", "Level", "Critical", "State", "Step", "Round", "LastCheckin", "PrevLevel",
			"Skipped", "AckedBy", "AckedAt", "AckVia", "AckedOperator", "Merged", "SuppressFor", "Missed", "MissedSince",
			"PrevPlace", "PrevUnit", "ReleaseTo", "Unrouted", "AlertID", "AlertCase", "SuppressKey", "EventType", "OccurredAt", "DueAt"},
		reflect.TypeFor[escRecord4](): {"V", "EventID", "Event", "Occurred", "Place", "Unit", "AckCode", "OpenedAt", "Due", "Notified",
			"Profile", "Level", "State", "Step", "Round", "LastCheckin", "PrevLevel", "Skipped", "AckedBy", "AckedAt", "AckVia",
			"AckedOperator", "Merged", "Missed", "MissedSince", "PrevPlace", "PrevUnit", "ReleaseTo", "Unrouted", "AlertID", "AlertCase",
			"SuppressKey", "EventType", "OccurredAt", "DueAt"},
		reflect.TypeFor[sentRecord](): {"V", "AgencyID", "ProviderID", "At", "Attempt", "LatencyMS", "Step", "Round", "ContactID",
			"AlertID", "Rule", "Kind", "IntentID", "CaseRef", "Channel", "Outcome", "ErrorClass", "ErrorCode", "Error", "Operator",
			"NoteID", "NoteSHA256", "NoteLength", "Silence"},
	}
	for typ, names := range frozen {
		if typ.NumField() < len(names) {
			t.Fatalf("%s has %d fields, stored records have %d", typ, typ.NumField(), len(names))
		}
		for i, n := range names {
			if typ.Field(i).Name != n {
				t.Errorf("%s field %d is %s, stored records have %s there", typ, i, typ.Field(i).Name, n)
			}
		}
	}
	numbered := []event.Type{"case.opened", "risk.assessed", "incident.reported", "checkin.recorded",
		"protection_order.issued", "protection_order.expired", "breach.reported", "penitentiary.release",
		"device.alarm", "case.relocated", "case.closed", "case.reactivated",
		"checkin.missed", "reassessment.overdue", "escalation.timeout", "escalation.acknowledged"}
	if !slices.Equal(recEventTypes[:min(len(recEventTypes), len(numbered))], numbered) {
		t.Errorf("event type numbers %v, stored records have %v", recEventTypes, numbered)
	}
	// A stored record of every kind of field reads as it was written.
	stored := `[3,"r","high","tpl","ev-1",2,-1500.000250,["13047","13","CM"],"unit","K7Q2MX",1773133200000,300000,["a","b"],"pref","alto",true,"acknowledged",1,2,1773133100000,"medio",[0],"ag",1773133260000,"sms","op",["m1"],600000000000,3,1773133000000,["28079","28","MD"],"punit","rel",true,"alert-2","C-2","sk"]`
	got, err := decodeEscalation("C-1", "a1", []byte(stored))
	if err != nil {
		t.Fatal(err)
	}
	opened := time.UnixMilli(1773133200000).UTC()
	want := &Escalation{ID: "a1", CaseRef: "C-1", AckCode: "K7Q2MX", State: EscAcked, Step: 1, Round: 2,
		OpenedAt: opened, DueAt: opened.Add(5 * time.Minute), Notified: []string{"a", "b"}, Skipped: []int{0},
		LastCheckin: time.UnixMilli(1773133100000).UTC(), AckedBy: "ag", AckedAt: time.UnixMilli(1773133260000).UTC(),
		AckVia: "sms", AckedOperator: "op", Merged: []string{"m1"}, PolicyRef: "pref",
		Alert: rules.Alert{ID: "alert-2", CaseID: "C-2", Rule: "r", Severity: "high", Critical: true, Template: "tpl",
			SuppressKey: "sk", SuppressFor: rules.Duration(10 * time.Minute), Unrouted: true, EventID: "ev-1",
			EventType: event.RiskAssessed, OccurredAt: opened.Add(-1500000250 * time.Nanosecond), Level: event.Alto, PrevLevel: event.Medio,
			Route: rules.RouteContext{Jurisdiction: event.Jurisdiction{Municipality: "13047", Province: "13", Region: "CM"}, ResponsibleUnit: "unit",
				PreviousJurisdiction: event.Jurisdiction{Municipality: "28079", Province: "28", Region: "MD"}, PreviousUnit: "punit", ReleaseDestination: "rel"},
			Missed: 3, MissedSince: time.UnixMilli(1773133000000).UTC()}}
	wj, _ := json.Marshal(want)
	gj, _ := json.Marshal(got)
	if string(wj) != string(gj) {
		t.Fatalf("stored record read as\n%s\nwant\n%s", gj, wj)
	}

	// Version 4: the same escalation, its rule's fields in its profile.
	stored4 := `[4,"ev-1",2,-1500.000250,["13047","13","CM"],"unit","K7Q2MX",1773133200000,300000,["a",""],"prof",3,"acknowledged",1,2,1773133100000,2,[0],"ag",1773133260000,"sms","op",["m1"],3,1773133000000,["28079","28","MD"],"punit","rel",true,"alert-2","C-2","sk"]`
	got, err = decodeEscalation("C-1", "a1", []byte(stored4))
	if err != nil {
		t.Fatal(err)
	}
	if got.profileRef != "prof" {
		t.Fatalf("version 4 record: profile %q, want prof", got.profileRef)
	}
	profileOf(want.Alert).apply(got)
	want.PolicyRef, want.Notified = "", []string{"a", "unit"}
	wj, _ = json.Marshal(want)
	gj, _ = json.Marshal(got)
	if string(wj) != string(gj) {
		t.Fatalf("stored version 4 record read as\n%s\nwant\n%s", gj, wj)
	}
	// Version 4 has every field of version 3 with its type, except the
	// profile's and the levels (numbers).
	inProfile := []string{"Rule", "Severity", "Template", "Critical", "SuppressFor", "PolicyRef"}
	for f := range reflect.TypeFor[escRecord]().Fields() {
		f4, ok := reflect.TypeFor[escRecord4]().FieldByName(f.Name)
		switch {
		case slices.Contains(inProfile, f.Name):
			if ok {
				t.Errorf("version 4 has %s, which its profile holds", f.Name)
			}
		case f.Name == "Level" || f.Name == "PrevLevel":
		case !ok || f4.Type != f.Type:
			t.Errorf("version 4 has no field %s of type %s", f.Name, f.Type)
		}
	}
}

// Malformed times and spans, and event type numbers out of the table, are
// errors, never a panic or a different time (from the independent review).
func TestRecordNumbersStrict(t *testing.T) {
	for _, bad := range []string{`--5`, `+5`, `5.-00001`, `5.1`, `9300000000000`, `-9300000000000`, `1e3`, ``} {
		var d recSpan
		if err := d.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("span %q read as %d without an error", bad, d)
		}
	}
	for _, bad := range []string{`-5`, `+5`, `5.-00001`, `9300000000000`} {
		var tm recTime
		if err := tm.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("time %q read as %v without an error", bad, time.Time(tm))
		}
	}
	for _, d := range []recSpan{math.MinInt64, math.MaxInt64, -1, 1, 0, -1500000250} {
		b, _ := d.MarshalJSON()
		var got recSpan
		if err := got.UnmarshalJSON(b); err != nil || got != d {
			t.Errorf("span %d written %s read as %d (%v)", d, b, got, err)
		}
	}
	for _, n := range []string{"-1", "0.5", "17", "-9223372036854775808"} {
		for _, rec := range []string{`[3,"r",null,null,"ev",` + n + `]`, `[4,"ev",` + n + `,null,null,null,null,null,null,null,"p"]`} {
			if _, err := decodeEscalation("C-1", "a1", []byte(rec)); err == nil {
				t.Errorf("record %s read without an error", rec)
			}
		}
	}
	for _, n := range []string{"-1", "5", "128", "1.5", `"alto"`} {
		rec := `[4,"ev",1,null,null,null,null,null,null,null,"p",` + n + `]`
		if _, err := decodeEscalation("C-1", "a1", []byte(rec)); err == nil {
			t.Errorf("record %s read without an error", rec)
		}
	}
}

// An escalation's own times are in UTC and whole milliseconds whatever
// the process's zone, so the record writes them as short spans.
func TestEscalationTimesUTC(t *testing.T) {
	madrid := time.FixedZone("CET", 3600) // Europe/Madrid in March
	now := time.Date(2026, 3, 10, 10, 0, 0, 123456789, madrid)
	due := dueAt(rules.PolicyStep{AckWithin: rules.Duration(5 * time.Minute)}, now)
	if opened := escTime(now); opened.Location() != time.UTC || due.Location() != time.UTC || !opened.Equal(now.Truncate(time.Millisecond)) ||
		due.Sub(opened) != 5*time.Minute {
		t.Fatalf("opened %v, due %v, want UTC to the millisecond, 5 min apart", opened, due)
	}
}
