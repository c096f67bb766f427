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

// With REDIS_WRITE_FORMAT=previous every record whose layout changed in
// the 2026-12 releases is written as the release before them writes and
// reads it (the escalation record in version 2, not 3), so that release can run again (a rollback): the outcome record as a
// JSON array, the sent-marker in version 2 with the intent's fields, the
// id index and the history member of an open escalation. This version
// reads them back all the same.
func TestWritePreviousFormatKeepsARollbackPossible(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()

	st := NewStore(rdb, time.Hour)
	st.Format = WritePrevious
	e := ev("wp-1", event.CaseOpened, "C-WP", 1, event.Alto)
	first := applyOne(t, st, e)
	if b, _ := rdb.Get(ctx, seenKey("C-WP", "wp-1")).Result(); !strings.HasPrefix(b, `["0",`) {
		t.Fatalf("outcome record %q, want the JSON array", b)
	}
	if got, want := applyOne(t, st, e), replayOutcome(first, first); got != want {
		t.Fatalf("replay:\n got  %+v\n want %+v", got, want)
	}

	in := testIntent("")
	in.ID = IntentID(in.AlertID, in.Step, in.Round, in.ContactID)
	r := resultFor(in, "webhook", 1, OutcomeSent, time.UnixMilli(1796080300011).UTC())
	b, err := encodeSent(in, "webhook", r, WritePrevious)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"kind":2,"g":"gc-ciudad-real","t":1796080300011,"n":1,"c":"gc-cr-sala","a":"a3f9c2d1e8b74a10","r":"risk-rises-to-alto","k":"alert"}`; string(b) != want {
		t.Fatalf("marker %s, want version 2 %s", b, want)
	}
	got, err := decodeSent(in, "webhook", b)
	if err != nil {
		t.Fatal(err)
	}
	sameResult(t, "version 2 written", &got, asEarlier(t, r), string(b))

	es := NewEscalationStore(rdb, time.Hour)
	es.Format = WritePrevious
	esc := &Escalation{ID: "wp-esc-0001", CaseRef: "C-WP", State: EscOpen, OpenedAt: time.Now(), AckCode: AckCode("wp-esc-0001")}
	if err := es.Save(ctx, esc); err != nil {
		t.Fatal(err)
	}
	if c, err := rdb.Get(ctx, escIdxKey(esc.ID)).Result(); err != nil || c != "C-WP" {
		t.Fatalf("id index of an open escalation: %q %v", c, err)
	}
	if _, err := keyEscRecent.score(ctx, rdb, EscRef(esc.CaseRef, esc.ID)); err != nil {
		t.Fatalf("an open escalation is not in the history set: %v", err)
	}
	if got, err := es.Recent(ctx, time.Now().Add(-time.Hour), 10); err != nil || len(got) != 1 {
		t.Fatalf("recent %+v %v, want the escalation once", got, err)
	}
	if raw, _ := rdb.Get(ctx, escKey(esc.CaseRef, esc.ID)).Result(); !strings.HasPrefix(raw, `{"id":2,`) {
		t.Fatalf("escalation record %s, want version 2", raw)
	}
	if got, err := es.Get(ctx, esc.CaseRef, esc.ID); err != nil || got.AckCode != esc.AckCode {
		t.Fatalf("version 2 record read back as %+v (%v)", got, err)
	}

	// The default writes neither.
	cur := NewEscalationStore(rdb, time.Hour)
	esc2 := &Escalation{ID: "wp-esc-0002", CaseRef: "C-WP", State: EscOpen, OpenedAt: time.Now(), AckCode: AckCode("wp-esc-0002")}
	if err := cur.Save(ctx, esc2); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Get(ctx, escIdxKey(esc2.ID)).Err(); err != redis.Nil {
		t.Fatalf("id index of an open escalation written by default: %v", err)
	}
	if raw, _ := rdb.Get(ctx, escKey(esc2.CaseRef, esc2.ID)).Result(); !strings.HasPrefix(raw, `[4,`) {
		t.Fatalf("escalation record %s written by default, want version 4", raw)
	}
	if b, err := encodeSent(in, "webhook", r, WriteCurrent); err != nil || !strings.HasPrefix(string(b), `[4,`) {
		t.Fatalf("marker %s written by default (%v), want version 4", b, err)
	}
}
