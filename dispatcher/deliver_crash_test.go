package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// heldJob queues one SMS intent as an instance would, leased until the
// lease runs out, and returns it.
func heldJob(t *testing.T, d *Deliverer, id string) queued {
	t.Helper()
	in := testIntent(id)
	q, err := newQueued(retryJob{Intent: in, Channel: "sms", Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.queue.hold(context.Background(), []queued{q}, d.now().Add(d.cfg.Lease)); err != nil {
		t.Fatal(err)
	}
	return q
}

func queueSize(t *testing.T, d *Deliverer) int64 {
	t.Helper()
	n, err := d.queue.depth(context.Background(), laneNames)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// An instance dies holding the in-flight claim of a send it never made
// (killed during the provider call): nobody renews its job's lease or its
// claim, so a live instance takes the job over and sends it.
func TestDeliverDeadOwnersClaimIsTakenOver(t *testing.T) {
	e := newDeliverEnv(t)
	dead := newDeliverer(t, e.decideEnv, e.prov)
	q := heldJob(t, dead, "crash-claim-1")
	state, _, _, err := dead.state.begin(context.Background(), q.job.Intent, "sms", "dead-owner:1", dead.cfg.Lease)
	if err != nil || state != beganClaimed {
		t.Fatalf("dead instance's claim: %q %v", state, err)
	}
	live := newDeliverer(t, e.decideEnv, e.prov)
	runDeliverer(t, live)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := e.prov.twilio.Wait(ctx, 1); err != nil {
		t.Fatalf("the dead instance's send was never taken over: %v", err)
	}
	rs := readResults(t, e.brokers, func(rs []Result) bool { return count(rs, OutcomeSent, "sms") >= 1 })
	if rs[0].IntentID != q.job.Intent.ID {
		t.Errorf("audit record for %q, want %q", rs[0].IntentID, q.job.Intent.ID)
	}
	eventually(t, "the job to leave the queue", func() bool { return queueSize(t, live) == 0 })
}

// An instance dies after the provider accepted and the sent-marker was
// written, but before the audit record and the queue removal: the job is
// re-run by another instance, which sends nothing again and writes the
// audit record from the marker.
func TestDeliverAcceptedButUnrecordedIsAuditedNotResent(t *testing.T) {
	e := newDeliverEnv(t)
	dead := newDeliverer(t, e.decideEnv, e.prov)
	q := heldJob(t, dead, "crash-marker-1")
	f, err := dead.attempt(context.Background(), q)
	if err != nil || len(f.done) != 1 {
		t.Fatalf("attempt: %+v %v", f, err)
	}
	// Dies here: f is never recorded.
	live := newDeliverer(t, e.decideEnv, e.prov)
	runDeliverer(t, live)
	rs := readResults(t, e.brokers, func(rs []Result) bool { return count(rs, OutcomeSent, "sms") >= 1 })
	if rs[0].ProviderID == "" || rs[0].ProviderID != f.results[0].ProviderID {
		t.Errorf("re-emitted audit record %+v, want the provider id of the accepted send", rs[0])
	}
	eventually(t, "the job to leave the queue", func() bool { return queueSize(t, live) == 0 })
	if n := len(e.prov.twilio.Messages()); n != 1 {
		t.Fatalf("provider accepted %d SMS, want 1", n)
	}
}

// The stage dies after its jobs are durable in Redis but before the
// offsets are committed: the next instance gets the intents again from
// Kafka and finds the same jobs queued; each SMS goes out once. The
// intents come in two batches (a second case's after the first case's
// are queued): a test stage stopped after its first batch left the rest
// unqueued, which a loaded machine did to one case's intents alone
// (batching stops at the first gap).
func TestDeliverQueuedButUncommittedSendsOnce(t *testing.T) {
	e := newDeliverEnv(t)
	ctx := context.Background()
	e.run(t, ev("k1", "case.opened", "C-E5", 1, 2), ev("k2", "risk.assessed", "C-E5", 2, 4))
	first := newDeliverer(t, e.decideEnv, e.prov)
	first.cfg.Lease = 20 * time.Second // nothing of its runs out while the test waits
	first.crashAfterQueue = func() bool { return true }
	smsJobs := func() int64 {
		n, err := first.queue.depth(ctx, []string{"sms"})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	stopFirst := runDeliverer(t, first)
	eventually(t, "the first case's 3 SMS jobs queued", func() bool { return smsJobs() >= 3 })
	e.run(t, ev("k3", "case.opened", "C-E6", 1, 2), ev("k4", "risk.assessed", "C-E6", 2, 4))
	eventually(t, "the second case's 3 SMS jobs queued too", func() bool { return smsJobs() >= 6 })
	stopFirst()
	if n := len(e.prov.twilio.Messages()); n != 0 {
		t.Fatalf("the first deliverer sent %d SMS, want none (it died before offering any)", n)
	}
	second := newDeliverer(t, e.decideEnv, e.prov)
	runDeliverer(t, second)
	readResults(t, e.brokers, func(rs []Result) bool { return count(rs, OutcomeSent, "sms") >= 6 })
	eventually(t, "the queue to empty", func() bool { return queueSize(t, second) == 0 })
	if n := len(e.prov.twilio.Messages()); n != 6 {
		t.Fatalf("provider accepted %d SMS, want 6", n)
	}
}

// waitLimit bounds how long a test waits for something it expects to
// happen. Generous on purpose: a test waits only as long as the thing
// takes, and a machine loaded by other jobs (CI neighbours, a -count=20
// run) may take many times longer than an idle one; no test asserts
// a timing with it.
const waitLimit = 60 * time.Second

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			dumpGoroutines(t, what)
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kafka refuses the audit record of an accepted send: the job stays in
// the queue (its outcome is not durable yet); once Kafka is back and the
// lease has run out, the job is run again, which sends nothing and writes
// the audit record from the sent-marker.
func TestDeliverAuditWriteFailureKeepsTheJob(t *testing.T) {
	e := newDeliverEnv(t)
	d := newDeliverer(t, e.decideEnv, e.prov)
	good := d.writer
	dead := NewWriter([]string{"127.0.0.1:1"}, quietLog())
	dead.MaxAttempts, dead.WriteTimeout = 1, 200*time.Millisecond
	t.Cleanup(func() { _ = dead.Close() })
	d.writer = dead
	ctx := context.Background()
	in := testIntent("audit-down-1")
	jobs, _ := d.jobsOf([]kafka.Message{intentMsg(t, in)})
	if err := d.queue.hold(ctx, jobs, d.now().Add(d.cfg.Lease)); err != nil {
		t.Fatal(err)
	}
	if err := d.attemptAll(ctx, jobs); err != nil { // the record step gives up after its timeout
		t.Fatal(err)
	}
	if n := len(e.prov.twilio.Messages()); n != 1 {
		t.Fatalf("provider accepted %d SMS, want 1", n)
	}
	if n := queueSize(t, d); n != 1 {
		t.Fatalf("%d jobs queued after the audit write failed, want the job kept", n)
	}
	d.writer = good
	time.Sleep(d.cfg.Lease) // let the lease run out, as after a crash
	if err := d.workDue(ctx); err != nil {
		t.Fatal(err)
	}
	rs := readResults(t, e.brokers, func(rs []Result) bool { return count(rs, OutcomeSent, "sms") >= 1 })
	if rs[0].IntentID != in.ID || queueSize(t, d) != 0 || len(e.prov.twilio.Messages()) != 1 {
		t.Fatalf("after Kafka came back: record %+v, queue %d, SMS %d", rs[0], queueSize(t, d), len(e.prov.twilio.Messages()))
	}
}
