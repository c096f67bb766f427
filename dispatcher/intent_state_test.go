package dispatcher

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/channels/sms"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// A channel that got through is "sent" by its sent-marker alone: the
// intent hash is not created for it (one key fewer per alert, issue 9),
// and states still reports it, so a replayed failure path neither counts
// it as untried nor lets it hide a failure recorded later. With
// WritePrevious the hash gets "sent" too, as the release before reads it.
func TestSentStateLivesInTheMarker(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	s := &deliveryState{rdb: rdb, ttl: time.Hour}
	in := testIntent("")
	in.ID = "st-1"
	in.Channels, in.Fallback = []string{"sms"}, []string{"email", "webhook"}
	send := func(s *deliveryState, in Intent, ch string) {
		t.Helper()
		owner := "o-" + ch
		if got, _, _, err := s.begin(ctx, in, ch, owner, time.Minute); err != nil || got != beganClaimed {
			t.Fatalf("begin %s: %q %v", ch, got, err)
		}
		if err := s.markSent(ctx, in, resultFor(in, ch, 1, OutcomeSent, time.Now()), owner); err != nil {
			t.Fatal(err)
		}
	}

	send(s, in, "email")
	if n := rdb.Exists(ctx, intentKey(in.CaseRef, in.ID)).Val(); n != 0 {
		t.Fatal("a send created the intent hash")
	}
	if st, err := s.states(ctx, in); err != nil || st["email"] != stateSent || len(st) != 1 {
		t.Fatalf("states %v %v, want email sent", st, err)
	}
	st, err := s.markFailed(ctx, in, "sms")
	if err != nil {
		t.Fatal(err)
	}
	if st["sms"] != stateFailed || st["email"] != stateSent {
		t.Fatalf("states after the failure %v", st)
	}
	if got := untried(st, in.Fallback); !slices.Equal(got, []string{"webhook"}) {
		t.Fatalf("untried %v, want the webhook only: the email went", got)
	}
	// A marker beside a recorded failure (a receipt said undelivered after
	// the provider accepted) does not hide the failure.
	if err := s.markSent(ctx, in, resultFor(in, "sms", 1, OutcomeSent, time.Now()), "o-sms"); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.states(ctx, in); st["sms"] != stateFailed {
		t.Fatalf("sms %q, want the recorded failure", st["sms"])
	}

	fresh := in
	fresh.ID = "st-2"
	if ok, err := s.claimStep(ctx, fresh, "notice", "send:"+fresh.ID); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if ttl := rdb.PTTL(ctx, intentKey(fresh.CaseRef, fresh.ID)).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("a hash created by a claimed step expires in %v", ttl)
	}

	prev := &deliveryState{rdb: rdb, ttl: time.Hour, format: WritePrevious}
	old := in
	old.ID = "st-3"
	send(prev, old, "email")
	if v := rdb.HGet(ctx, intentKey(old.CaseRef, old.ID), "email").Val(); v != stateSent {
		t.Fatalf("previous format: hash field %q, want sent", v)
	}
	if ttl := rdb.PTTL(ctx, intentKey(old.CaseRef, old.ID)).Val(); ttl <= 0 {
		t.Fatalf("previous format: hash expires in %v", ttl)
	}
}

// With Redis down, keeping and applying early statuses fail with an error
// (the callback is answered 500, the send job runs again), never as
// "nothing kept".
func TestEarlyStatusesRedisDown(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	d := NewDeliverer(DeliverConfig{Workers: 1}, DeliverDeps{Redis: rdb, Log: quietLog()})
	_ = rdb.Close()
	ctx := context.Background()
	in := testIntent("")
	if err := d.state.parkEarlyReceipt(ctx, sms.StatusCallback{MessageSid: "SM1", MessageStatus: "failed"}); err == nil {
		t.Error("parking an early status with Redis down did not fail")
	}
	if err := d.applyEarly(ctx, in, Result{Channel: sms.Name, ProviderID: "SM1"}); err == nil || !strings.Contains(err.Error(), "early") {
		t.Errorf("applying early statuses with Redis down: %v, want an error", err)
	}
	if err := d.state.mapSID(ctx, in, Result{Channel: sms.Name, ProviderID: "SM1"}); err == nil {
		t.Error("writing the sid mapping with Redis down did not fail")
	}
}
