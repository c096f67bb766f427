package dispatcher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

func laneJob(t *testing.T, id string, critical bool) queued {
	t.Helper()
	in := testIntent(id)
	in.Critical = critical
	q, err := newQueued(retryJob{Intent: in, Channel: "sms", Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// A lane hands out critical jobs before any other, whatever the order
// they came in.
func TestLaneTakesCriticalFirst(t *testing.T) {
	l := newLane("sms", 10)
	for i, crit := range []bool{false, false, true, false, true} {
		if !l.offer(laneJob(t, fmt.Sprint(i), crit)) {
			t.Fatal("lane refused a job with room")
		}
	}
	var got []string
	for range 5 {
		q, ok := l.take()
		if !ok {
			t.Fatal("lane closed early")
		}
		got = append(got, q.job.Intent.ID)
	}
	if want := "[2 4 0 1 3]"; fmt.Sprint(got) != want {
		t.Fatalf("taken %v, want %s (critical first, each in arrival order)", got, want)
	}
	left := l.close()
	if _, ok := l.take(); ok || len(left) != 0 {
		t.Fatal("a closed, empty lane must stop its workers")
	}
}

// When a batch holds more jobs than a lane has room for, the critical ones
// get the room; the rest wait in Redis, due at once, for whoever has room.
func TestOfferGivesRoomToCriticalFirst(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	d := NewDeliverer(DeliverConfig{Workers: 1}, DeliverDeps{Redis: rdb, Log: quietLog()}) // room for 2 per lane
	ctx := context.Background()
	batch := []queued{laneJob(t, "n1", false), laneJob(t, "n2", false), laneJob(t, "n3", false), laneJob(t, "c1", true)}
	if err := d.queue.hold(ctx, batch, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	d.offer(ctx, batch)
	l := d.lanes["sms"]
	first, _ := l.take()
	second, _ := l.take()
	if first.job.Intent.ID != "c1" || second.job.Intent.ID != "n1" {
		t.Fatalf("lane holds %s, %s: want the critical job, then the first other", first.job.Intent.ID, second.job.Intent.ID)
	}
	due, err := d.queue.claim(ctx, "sms", time.Now(), 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 2 {
		t.Fatalf("%d jobs made due for others, want the 2 that found no room", len(due))
	}
}

// begin is one atomic step: after a send is recorded no attempt claims
// the job again, and while one attempt holds the claim another is told
// to wait, with how long (issue 13: the double-send race).
func TestBeginChecksAndClaimsAtomically(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	s := &deliveryState{rdb: rdb, ttl: time.Hour}
	ctx := context.Background()
	in := testIntent("begin-1")
	st, _, _, err := s.begin(ctx, in, "sms", "A", time.Minute)
	if err != nil || st != beganClaimed {
		t.Fatalf("first attempt: %q %v", st, err)
	}
	st, _, left, _ := s.begin(ctx, in, "sms", "B", time.Minute)
	if st != beganBusy || left <= 50*time.Second || left > time.Minute {
		t.Fatalf("second attempt while A sends: %q, %v left", st, left)
	}
	r := resultFor(in, "sms", 1, OutcomeSent, time.Now())
	r.ProviderID = "SM1"
	if err := s.markSent(ctx, in, r, "A"); err != nil {
		t.Fatal(err)
	}
	st, prev, _, _ := s.begin(ctx, in, "sms", "B", time.Minute)
	if st != beganSent || prev == nil || prev.ProviderID != "SM1" {
		t.Fatalf("attempt after A recorded its send: %q %+v", st, prev)
	}
	if n := rdb.Exists(ctx, sendingKey(in.CaseRef, in.ID, "sms")).Val(); n != 0 {
		t.Fatal("markSent left the claim behind")
	}
	// A claim is only released or renewed by its owner.
	in2 := testIntent("begin-2")
	_, _, _, _ = s.begin(ctx, in2, "sms", "A", time.Minute)
	s.release(ctx, in2, "sms", "B")
	if st, _, _, _ := s.begin(ctx, in2, "sms", "C", time.Minute); st != beganBusy {
		t.Fatalf("a non-owner released A's claim: %q", st)
	}
	s.release(ctx, in2, "sms", "A")
	if st, _, _, _ := s.begin(ctx, in2, "sms", "C", time.Minute); st != beganClaimed {
		t.Fatalf("after A released, C claims: %q", st)
	}
}

// A critical job waiting in Redis (it found no room in a lane) is claimed
// before a backlog of older non-critical ones.
func TestQueuedCriticalJobIsClaimedBeforeABacklog(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	q := &jobQueue{rdb: rdb, prefix: "deliver:queue:"}
	ctx := context.Background()
	now := time.Now()
	var backlog []queued
	for i := range 50 {
		backlog = append(backlog, laneJob(t, fmt.Sprint("old-", i), false))
	}
	if err := q.hold(ctx, backlog, now.Add(-time.Hour)); err != nil { // due for an hour
		t.Fatal(err)
	}
	crit := laneJob(t, "crit", true)
	if err := q.hold(ctx, []queued{crit}, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := q.giveBackNow(ctx, []queued{crit}, now); err != nil {
		t.Fatal(err)
	}
	got, err := q.claim(ctx, "sms", now, 1, time.Minute)
	if err != nil || len(got) != 1 || got[0].job.Intent.ID != "crit" {
		t.Fatalf("claimed %v (%v), want the critical job first", got, err)
	}
}

// A channel without a lane of its own is queued where the "other" lane's
// poller looks: overflow, retries and crash recovery find it.
func TestOtherChannelsShareTheOtherLanesQueue(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	q := &jobQueue{rdb: rdb, prefix: "deliver:queue:"}
	in := testIntent("other-1")
	if err := q.add(context.Background(), retryJob{Intent: in, Channel: "fax", Attempt: 1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := q.claim(context.Background(), "other", time.Now(), 10, time.Minute)
	if err != nil || len(got) != 1 || got[0].job.Channel != "fax" {
		t.Fatalf("the other lane claimed %v (%v)", got, err)
	}
}
