package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// asEarlier is r as an earlier version read it back from its marker: the
// Result's own JSON, decoded. A compact marker must read back to exactly
// this.
func asEarlier(t *testing.T, r Result) Result {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out Result
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameResult fails unless got is exactly want (every field, the time's
// instant and offset) and re-emits the same audit message.
func sameResult(t *testing.T, what string, got *Result, want Result, raw string) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no result, want %+v (marker %s)", what, want, raw)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("%s: read back\n%+v\nwant\n%+v\nmarker %s", what, *got, want, raw)
	}
	gm, err := got.message(TopicResults)
	if err != nil {
		t.Fatal(err)
	}
	wm, _ := want.message(TopicResults)
	if string(gm.Value) != string(wm.Value) || string(gm.Key) != string(wm.Key) {
		t.Fatalf("%s: re-emits\n%s\nwant\n%s", what, gm.Value, wm.Value)
	}
}

// The compact sent-marker keeps every field of Result: each is filled
// through reflection (a field added to Result, or to SilenceRecord, and
// not to sentRecord fails here), written by markSent, and read back by
// sent, by begin (a replay: beganSent with the record to re-emit) and by
// the console's delivery view, exactly as the earlier layout read it. The
// intent id, case and channel equal to the key's and the outcome "sent"
// are left out of the marker and come back all the same; a time with an
// offset keeps it.
func TestSentRecordRoundTrip(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	s := &deliveryState{rdb: rdb, ttl: time.Hour}
	es := NewEscalationStore(rdb, time.Hour)
	for _, tc := range []struct {
		name string
		edit func(r *Result, in *Intent)
		// short: the marker leaves out ids, case, channel and outcome
		short bool
	}{
		{"every field its own value", func(r *Result, in *Intent) {}, false},
		{"as markSent writes it: ids, case and channel the key's, sent", func(r *Result, in *Intent) {
			r.IntentID, r.CaseRef, r.Channel, r.Outcome = in.ID, in.CaseRef, "webhook", OutcomeSent
			r.Silence, r.NoteID, r.NoteSHA256, r.NoteLength, r.Operator = nil, "", "", 0, ""
		}, true},
		{"as the send path makes it (resultFor): the intent's fields left out", func(r *Result, in *Intent) {
			*r = resultFor(*in, "webhook", 1, OutcomeSent, time.UnixMilli(1773133500123).UTC())
			r.ProviderID, r.LatencyMS = "wh-0001", 812
		}, true},
		{"an sms with its sid, whole milliseconds", func(r *Result, in *Intent) {
			r.IntentID, r.CaseRef, r.Channel, r.Outcome = in.ID, in.CaseRef, "sms", OutcomeSent
			r.At = time.UnixMilli(1773133500123).UTC()
		}, true},
		{"empty outcome and strings, a time with an offset", func(r *Result, in *Intent) {
			r.Outcome, r.AlertID, r.Error, r.Silence.Rule = "", "", "", ""
			r.At = time.Date(2026, 3, 29, 3, 30, 0, 5, time.FixedZone("", 2*3600))
		}, false},
		{"no time, no attempt, no silence", func(r *Result, in *Intent) {
			r.At, r.Attempt, r.Silence, r.LatencyMS = time.Time{}, 0, nil, 0
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want Result
			n := 0
			fillAll(t, reflect.ValueOf(&want).Elem(), "", &n)
			in := testIntent("rt-" + strings.ReplaceAll(tc.name, " ", "-"))
			tc.edit(&want, &in)
			if err := s.markSent(ctx, in, want, "owner-rt"); err != nil {
				t.Fatal(err)
			}
			ch := want.Channel // markSent keys the marker by the result's channel
			raw, err := rdb.Get(ctx, sentKey(in.CaseRef, in.ID, ch)).Result()
			if err != nil || !strings.HasPrefix(raw, `[4,`) {
				t.Fatalf("marker %q (%v), want the compact form", raw, err)
			}
			obj := markerObject(t, raw)
			short := !strings.Contains(obj, `"i":`) && !strings.Contains(obj, `"cr":`) && !strings.Contains(obj, `"o":`)
			if short != tc.short || strings.Contains(obj, `"ch":`) {
				t.Fatalf("marker %s: leaves out ids, case and outcome: %v, want %v (and the channel always)", raw, short, tc.short)
			}
			// An earlier version decodes a marker as the Result's own JSON:
			// given a compact one, it must fail (its job runs again later)
			// rather than read an empty Result and re-emit it.
			var earlier Result
			if err := json.Unmarshal([]byte(raw), &earlier); err == nil {
				t.Fatalf("an earlier version reads the compact marker %s as %+v, without an error", raw, earlier)
			}
			exp := asEarlier(t, want)
			got, err := s.sent(ctx, in, ch)
			if err != nil {
				t.Fatal(err)
			}
			sameResult(t, "sent", got, exp, raw)
			st, prev, _, err := s.begin(ctx, in, ch, "owner-replay", time.Minute)
			if err != nil || st != beganSent {
				t.Fatalf("replay: %q (%v), want %q", st, err, beganSent)
			}
			sameResult(t, "begin", prev, exp, raw)
			in.Channels, in.Fallback = []string{ch}, nil
			ds, err := es.intentDeliveries(ctx, in, 0, 0)
			if err != nil || len(ds) != 1 {
				t.Fatalf("delivery view %+v (%v)", ds, err)
			}
			if d := ds[0]; d.Outcome != exp.Outcome || d.Attempt != exp.Attempt || d.ProviderID != exp.ProviderID || !d.At.Equal(exp.At) {
				t.Fatalf("delivery view %+v, want the marker's %+v", d, exp)
			}
		})
	}
}

// Encoded and decoded without Redis, for a key none of whose parts the
// result shares (markSent never writes such a marker: it keys it by the
// result's own intent, case and channel), every field still comes back.
func TestSentRecordKeepsFieldsTheKeyDoesNotSay(t *testing.T) {
	var want Result
	n := 0
	fillAll(t, reflect.ValueOf(&want).Elem(), "", &n)
	other := testIntent("intent-other")
	other.CaseRef = "C-OTHER"
	b, err := encodeSent(other, "channel-other", want, WriteCurrent)
	if err != nil {
		t.Fatal(err)
	}
	obj := markerObject(t, string(b))
	for _, k := range []string{`"i":`, `"cr":`, `"ch":`, `"o":`, `"a":`, `"r":`, `"k":`, `"s":`, `"rn":`, `"g":`, `"c":`} {
		if !strings.Contains(obj, k) {
			t.Errorf("marker %s: no %s, though the result's differs from the key's", b, k)
		}
	}
	got, err := decodeSent(other, "channel-other", b)
	if err != nil {
		t.Fatal(err)
	}
	sameResult(t, "decode", &got, asEarlier(t, want), string(b))
}

// The marker the send path writes leaves out every field the key and the
// intent id say: a webhook's is its agency, attempt, provider id, time
// and latency.
func TestSentRecordLeavesOutWhatTheIntentSays(t *testing.T) {
	in := testIntent("")
	in.Step, in.Round = 1, 2
	in.ID = IntentID(in.AlertID, in.Step, in.Round, in.ContactID)
	r := resultFor(in, "webhook", 1, OutcomeSent, time.UnixMilli(1796080300011).UTC())
	r.ProviderID, r.LatencyMS = "wh_load", latencyOf(in, r.At) // as the send path writes them
	b, err := encodeSent(in, "webhook", r, WriteCurrent)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[4,"gc-ciudad-real","wh_load",1796080300011,1]`; string(b) != want {
		t.Fatalf("marker %s, want %s", b, want)
	}
	got, err := decodeSent(in, "webhook", b)
	if err != nil {
		t.Fatal(err)
	}
	sameResult(t, "decode", &got, asEarlier(t, r), string(b))
	// The same marker as the release before wrote it (version 3) reads
	// the same.
	v3 := fmt.Sprintf(`{"kind":3,"g":"gc-ciudad-real","n":1,"p":"wh_load","t":1796080300011,"l":%d}`, r.LatencyMS)
	got, err = decodeSent(in, "webhook", []byte(v3))
	if err != nil {
		t.Fatal(err)
	}
	sameResult(t, "version 3", &got, asEarlier(t, r), v3)
	// A latency other than the intent's says is kept.
	r.LatencyMS++
	if b, err = encodeSent(in, "webhook", r, WriteCurrent); err != nil {
		t.Fatal(err)
	}
	if got, err = decodeSent(in, "webhook", b); err != nil || got.LatencyMS != r.LatencyMS {
		t.Fatalf("marker %s: latency %d (%v), want %d", b, got.LatencyMS, err, r.LatencyMS)
	}
}

// markerObject is a positional (version 4) marker as the JSON object of
// its fields' names (sentRecord's tags), for tests that ask which fields
// it holds.
func markerObject(t *testing.T, raw string) string {
	t.Helper()
	var rec sentRecord
	if v, err := decodePositional([]byte(raw), &rec); err != nil || v != sentRecordVersion {
		t.Fatalf("marker %s: version %d (%v)", raw, v, err)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every notice of an alert to one contact shares its id (NoticeID) but
// carries the step and round of the intent whose failure caused it: the
// marker keeps them and the latency, so a replay of a later notice
// re-emits the first send as it was (from the independent reviews).
func TestSentRecordKeepsTheStepOfANotice(t *testing.T) {
	first := testIntent(NoticeID("a1", "cc-1"))
	first.Kind, first.AlertID, first.Step, first.Round, first.AgencyID, first.ContactID = KindNotice, "a1", 0, 0, "cc", "cc-1"
	first.OccurredAt = time.UnixMilli(1796080299011).UTC()
	second := first
	second.Step, second.Round = 2, 1
	second.OccurredAt = first.OccurredAt.Add(200 * time.Millisecond) // another step's failure
	r := resultFor(first, "sms", 1, OutcomeSent, time.UnixMilli(1796080300011).UTC())
	r.LatencyMS = latencyOf(first, r.At) // as the send path writes it
	b, err := encodeSent(first, "sms", r, WriteCurrent)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSent(second, "sms", b)
	if err != nil {
		t.Fatal(err)
	}
	sameResult(t, "replayed by a later notice", &got, asEarlier(t, r), string(b))
}

// A version-2 marker wrote the intent's fields unless empty: they are
// read from the marker, and a field it left out is empty, whatever the
// intent says.
func TestSentRecordVersion2Reads(t *testing.T) {
	in := testIntent("v2-1")
	raw := `{"kind":2,"a":"alert-v2","r":"rule-v2","k":"alert","s":1,"g":"agency-v2","n":2,"p":"wh-2","t":1796080300011,"l":5}`
	got, err := decodeSent(in, "webhook", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := Result{IntentID: in.ID, CaseRef: in.CaseRef, Channel: "webhook", AlertID: "alert-v2", Rule: "rule-v2", Kind: "alert",
		Step: 1, AgencyID: "agency-v2", Attempt: 2, Outcome: OutcomeSent, ProviderID: "wh-2", At: time.UnixMilli(1796080300011).UTC(), LatencyMS: 5}
	sameResult(t, "version 2", &got, want, raw)
}

// A marker written before the compact form (the Result's own JSON, as
// the audit message) still reads, the same way a compact one of the same
// result does: a replay re-emits it and does not send, and the console
// shows it.
func TestSentRecordEarlierFormatReads(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	s := &deliveryState{rdb: rdb, ttl: time.Hour}
	es := NewEscalationStore(rdb, time.Hour)
	at := time.Date(2026, 3, 10, 9, 0, 1, 234000000, time.UTC)
	old := testIntent("earlier-1")
	r := resultFor(old, "webhook", 2, OutcomeSent, at)
	r.ProviderID, r.LatencyMS = "wh-0001", 812
	b, _ := json.Marshal(r)
	if !strings.HasPrefix(string(b), `{"intent_id":"earlier-1",`) {
		t.Fatalf("the earlier layout is no longer the Result's JSON: %s", b)
	}
	rdb.Set(ctx, sentKey(old.CaseRef, old.ID, "webhook"), b, time.Hour)
	// The same result, marked by this version, for another intent.
	now := testIntent("earlier-2")
	r2 := r
	r2.IntentID = now.ID
	if err := s.markSent(ctx, now, r2, "A"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in   Intent
		want Result
	}{{old, r}, {now, r2}} {
		got, err := s.sent(ctx, c.in, "webhook")
		if err != nil {
			t.Fatal(err)
		}
		sameResult(t, "sent "+c.in.ID, got, c.want, string(b))
		st, prev, _, err := s.begin(ctx, c.in, "webhook", "B", time.Minute)
		if err != nil || st != beganSent {
			t.Fatalf("replay of %s: %q (%v), want %q", c.in.ID, st, err, beganSent)
		}
		sameResult(t, "begin "+c.in.ID, prev, c.want, string(b))
		c.in.Channels, c.in.Fallback = []string{"webhook"}, nil
		ds, err := es.intentDeliveries(ctx, c.in, 0, 0)
		if err != nil || len(ds) != 1 || ds[0].Outcome != OutcomeSent || ds[0].Attempt != 2 || ds[0].ProviderID != "wh-0001" || !ds[0].At.Equal(at) {
			t.Fatalf("delivery view of %s: %+v (%v)", c.in.ID, ds, err)
		}
	}
	if n := rdb.Exists(ctx, sendingKey(old.CaseRef, old.ID, "webhook"), sendingKey(now.CaseRef, now.ID, "webhook")).Val(); n != 0 {
		t.Fatalf("a replay of a sent intent took %d send claims", n)
	}
}

// A marker that does not decode (corrupt, or of a version unknown to this
// one) is an error on the send path, never "not sent": begin takes no
// claim, so nothing is sent again.
func TestSentRecordUndecodableIsAnError(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	s := &deliveryState{rdb: rdb, ttl: time.Hour}
	for i, raw := range []string{`{not json`, `{"kind":4,"a":"x"}`, `{"kind":2,"t":"yesterday"}`, `{"kind":2,"n":"one"}`, `{"intent_id":7}`, `[5,"g"]`, `[3,"g"]`, `[4,7]`} {
		in := testIntent("bad-" + string(rune('a'+i)))
		rdb.Set(ctx, sentKey(in.CaseRef, in.ID, "sms"), raw, time.Hour)
		if r, err := s.sent(ctx, in, "sms"); err == nil || !strings.Contains(err.Error(), "sent-marker") {
			t.Errorf("sent of marker %s: %+v, %v; want a sent-marker error", raw, r, err)
		}
		st, prev, _, err := s.begin(ctx, in, "sms", "A", time.Minute)
		if err == nil || st == beganClaimed || prev != nil {
			t.Errorf("begin on marker %s: %q %+v %v; want an error", raw, st, prev, err)
		}
		if rdb.Exists(ctx, sendingKey(in.CaseRef, in.ID, "sms")).Val() != 0 {
			t.Errorf("begin on marker %s took the send claim", raw)
		}
	}
}
