package dispatcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/event"
)

func runningDeliverer(t *testing.T, e *deliverEnv) *Deliverer {
	t.Helper()
	d := newDeliverer(t, e.decideEnv, e.prov)
	t.Cleanup(runDeliverer(t, d))
	eventually(t, "the deliverer to run", d.running.Load)
	return d
}

// A handed-off intent is sent without its Kafka copy (it is not written
// until after the send here), and the copy, when it comes, is found
// queued already: skipped and committed, not sent again.
func TestHandoffSendsWithoutTheCopyAndSkipsIt(t *testing.T) {
	e := newDeliverEnv(t)
	d := runningDeliverer(t, e)
	in := testIntent("handoff-1")
	d.Handoff(context.Background(), []kafka.Message{intentMsg(t, in)})
	if n := counterValue(t, d.metrics.handoffs.started); n != 1 {
		t.Fatalf("%v jobs started by hand-off, want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := e.prov.twilio.Wait(ctx, 1); err != nil {
		t.Fatalf("the handed-off intent was not sent before its copy existed: %v", err)
	}
	writeIntents(t, e.d.Writer, in)
	eventually(t, "the copy to be skipped", func() bool { return counterValue(t, d.metrics.handoffs.copies) == 1 })
	eventually(t, "the queue to empty", func() bool { return queueSize(t, d) == 0 })
	readResults(t, e.brokers, func(rs []Result) bool { return count(rs, OutcomeSent, "sms") >= 1 })
	if n := len(e.prov.twilio.Messages()); n != 1 {
		t.Fatalf("provider accepted %d SMS, want 1", n)
	}
}

// A hand-off that cannot queue its jobs (Redis refuses: here its context
// has ended) starts nothing and remembers nothing: the Kafka copy
// delivers the intent.
func TestHandoffThatCannotQueueLeavesTheIntentToItsCopy(t *testing.T) {
	e := newDeliverEnv(t)
	d := runningDeliverer(t, e)
	in := testIntent("handoff-unqueued-1")
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	d.Handoff(ended, []kafka.Message{intentMsg(t, in)})
	if n := counterValue(t, d.metrics.handoffs.started); n != 0 {
		t.Fatalf("%v jobs started by a hand-off that could not queue them, want 0", n)
	}
	if n := counterValue(t, d.metrics.handoffs.failed); n != 1 {
		t.Errorf("%v hand-offs counted as failed to queue, want 1", n)
	}
	writeIntents(t, e.d.Writer, in)
	wantSentOnce(t, e, d, "the copy of an intent the hand-off could not queue")
	if n := counterValue(t, d.metrics.handoffs.copies); n != 0 {
		t.Errorf("%v copies skipped, want 0", n)
	}
}

// The hand-off declines, leaving the intents to Kafka, when delivery is
// not running, when it is turned off, and when the batch is large (load:
// the batched way is cheaper). Intents that cannot be read are left to
// the copy, which dead-letters them.
func TestHandoffDeclines(t *testing.T) {
	e := newDeliverEnv(t)
	one := []kafka.Message{intentMsg(t, testIntent("handoff-declined-1"))}
	idle := newDeliverer(t, e.decideEnv, e.prov)
	idle.Handoff(context.Background(), one)
	off := newDeliverer(t, e.decideEnv, e.prov)
	off.cfg.NoHandoff = true
	t.Cleanup(runDeliverer(t, off))
	eventually(t, "the deliverer to run", off.running.Load)
	off.Handoff(context.Background(), one)
	d := runningDeliverer(t, e)
	var many []kafka.Message
	for i := range handoffMaxJobs + 1 {
		many = append(many, intentMsg(t, testIntent(fmt.Sprintf("handoff-many-%d", i))))
	}
	d.Handoff(context.Background(), many)
	d.Handoff(context.Background(), []kafka.Message{{Value: []byte(`{"id":"handoff-garbled",`)}})
	for name, x := range map[string]*Deliverer{"not running": idle, "turned off": off, "large batch, garbled intent": d} {
		if n := counterValue(t, x.metrics.handoffs.started); n != 0 {
			t.Errorf("%s: %v jobs started, want 0", name, n)
		}
	}
	if n := queueSize(t, d); n != 0 {
		t.Errorf("%d jobs queued by declined hand-offs, want 0", n)
	}
}

// The decide stage hands off exactly the intents it writes (byte for
// byte: the copy is recognised by its queue member), before writing them.
func TestDecideHandsOffTheIntentsItWrites(t *testing.T) {
	e := newDecideEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var handed []kafka.Message
	var written int64
	e.d.Handoff = func(_ context.Context, msgs []kafka.Message) {
		handed = append(handed, msgs...)
		written += topicSize(ctx, t, e.brokers, TopicIntents)
	}
	e.run(t, ev("h1", "case.opened", "C-HO1", 1, 2), ev("h2", "risk.assessed", "C-HO1", 2, 4))
	msgs := readTopic(ctx, t, e.brokers, TopicIntents, int(topicSize(ctx, t, e.brokers, TopicIntents)))
	if len(handed) == 0 || len(handed) != len(msgs) {
		t.Fatalf("handed off %d intents, wrote %d", len(handed), len(msgs))
	}
	if written != 0 {
		t.Errorf("%d intents were in Kafka at the hand-off, want it before the write", written)
	}
	for i, m := range msgs {
		if !bytes.Equal(m.Value, handed[i].Value) {
			t.Errorf("intent %d: handed off %s, wrote %s", i, handed[i].Value, m.Value)
		}
	}
}

// A job remembered again after its copy came keeps being remembered
// when the ring comes round to the slot of its first hand-off.
func TestHandoffSeenForgetsOnlyItsOwnSlot(t *testing.T) {
	s := newHandoffSeen()
	x := queued{raw: "job-x"}
	s.add([]queued{x})
	if _, n := s.skip([]queued{x}); n != 1 {
		t.Fatalf("first copy: %d skipped, want 1", n)
	}
	s.add([]queued{x}) // handed off again (a replay), in the next slot
	for i := range handoffSeenCap - 1 {
		s.add([]queued{{raw: fmt.Sprint("job-", i)}}) // the ring comes round to x's first slot
	}
	if _, n := s.skip([]queued{x}); n != 1 {
		t.Fatalf("second copy: %d skipped, want 1 (forgotten with its first slot)", n)
	}
	s.add([]queued{{raw: "one-more"}}) // x's second slot: forgets x, it is gone already
	if _, n := s.skip([]queued{x}); n != 0 {
		t.Fatalf("third copy: %d skipped, want 0", n)
	}
}

// A job whose lane has no room is not handed off (it would only go
// back to Redis): the e-mail lane is full while few jobs are held.
func TestHandoffDeclinesWhenTheLaneIsFull(t *testing.T) {
	e := newDeliverEnv(t)
	d := newDeliverer(t, e.decideEnv, e.prov)
	d.running.Store(true) // as if running, without workers emptying the lane
	l := d.lanes["email"]
	for i := 0; l.free() > 0; i++ {
		q := laneJob(t, fmt.Sprint("handoff-full-", i), false)
		q.job.Channel = "email"
		l.offer(q)
	}
	in := testIntent("handoff-email-1")
	in.Channels = []string{"email"}
	d.Handoff(context.Background(), []kafka.Message{intentMsg(t, in)})
	if n := counterValue(t, d.metrics.handoffs.started); n != 0 {
		t.Errorf("%v jobs handed off to a full lane, want 0", n)
	}
	if n := queueSize(t, d); n != 0 {
		t.Errorf("%d jobs queued, want 0", n)
	}
}

// failingWrites fails the first n writes.
type failingWrites struct {
	Sink
	n int
}

func (f *failingWrites) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if f.n > 0 {
		f.n--
		return errors.New("broker refused the write")
	}
	return f.Sink.WriteMessages(ctx, msgs...)
}

// A batch whose write failed is not handed off again when it is retried
// (decided again, its intents would be new jobs each time), and nothing
// is handed off while Kafka refuses; the next batch after a good write
// is.
func TestDecideHandsOffOnlyWhileKafkaTakesTheWrites(t *testing.T) {
	e := newDecideEnv(t)
	e.d.Writer = &failingWrites{Sink: e.d.Writer, n: 2}
	handoffs := 0
	e.d.Handoff = func(context.Context, []kafka.Message) { handoffs++ }
	ctx := context.Background()
	evs := []event.Event{ev("r1", "case.opened", "C-HO2", 1, 2), ev("r2", "risk.assessed", "C-HO2", 2, 4)}
	outs, err := e.store.Apply(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	items := []Item{{Event: evs[0], Outcome: outs[0]}, {Event: evs[1], Outcome: outs[1]}}
	for attempt := 1; attempt <= 3; attempt++ {
		err := e.d.Handle(ctx, items)
		if (err != nil) != (attempt < 3) {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		if handoffs != 1 {
			t.Fatalf("after attempt %d: %d hand-offs, want 1 (the first attempt's)", attempt, handoffs)
		}
	}
	e.run(t, ev("r3", "risk.assessed", "C-HO3", 1, 4))
	if handoffs != 2 {
		t.Errorf("%d hand-offs after a good write and a new batch, want 2", handoffs)
	}
}

// beginCalls counts begin scripts run on rdb, once the script is loaded
// (a server without it answers NOSCRIPT and the hand-off leaves the begin
// to the worker).
func beginCalls(t *testing.T, rdb redis.UniversalClient) *cmdCounter {
	t.Helper()
	if err := beginScript.Load(context.Background(), rdb).Err(); err != nil {
		t.Fatal(err)
	}
	c := &cmdCounter{match: func(cmd redis.Cmder) bool {
		a := cmd.Args()
		return cmd.Name() == "evalsha" && len(a) > 1 && a[1] == beginScript.Hash()
	}}
	rdb.AddHook(c)
	return c
}

// The hand-off begins each job's attempt in the round trip that queues
// it, and the worker goes on from there: one begin per send, not two (a
// worker beginning again would find the hand-off's claim held, and wait).
// The claim is the worker's: released with the sent-marker.
func TestHandoffBeginsTheAttemptWhereItQueuesIt(t *testing.T) {
	e := newDeliverEnv(t)
	begins := beginCalls(t, e.store.rdb)
	d := runningDeliverer(t, e)
	in := testIntent("handoff-begun-1")
	d.Handoff(context.Background(), []kafka.Message{intentMsg(t, in)})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := e.prov.twilio.Wait(ctx, 1); err != nil {
		t.Fatalf("the handed-off intent was not sent: %v", err)
	}
	eventually(t, "the queue to empty", func() bool { return queueSize(t, d) == 0 })
	if n := begins.n.Load(); n != 1 {
		t.Errorf("%d begin calls for one handed-off send, want 1", n)
	}
	if n := e.store.rdb.Exists(ctx, sendingKey(in.CaseRef, in.ID, "sms")).Val(); n != 0 {
		t.Error("the in-flight claim outlived the send")
	}
	if _, claims := d.holds.count(); claims != 0 {
		t.Errorf("%d claims still held after the send", claims)
	}
}

// Handed-off jobs that never started (the stage stops first) go back to
// the queue due now with their claims given back: the instance that
// takes them over sends at once instead of finding them busy for a lease.
func TestHandoffJobsGivenBackUnstartedReleaseTheirClaims(t *testing.T) {
	e := newDeliverEnv(t)
	d := newDeliverer(t, e.decideEnv, e.prov)
	d.running.Store(true) // as if running, with no worker to start the job
	beginCalls(t, e.store.rdb)
	in := testIntent("handoff-unstarted-1")
	d.Handoff(context.Background(), []kafka.Message{intentMsg(t, in)})
	ctx := context.Background()
	key := sendingKey(in.CaseRef, in.ID, "sms")
	if n := counterValue(t, d.metrics.handoffs.started); n != 1 {
		t.Fatalf("%v jobs handed off, want 1", n)
	}
	if n := e.store.rdb.Exists(ctx, key).Val(); n != 1 {
		t.Fatal("the hand-off took no claim")
	}
	order := &cmdLog{}
	e.store.rdb.AddHook(order)
	d.drain(ctx, func() {}, &sync.WaitGroup{})
	if n := e.store.rdb.Exists(ctx, key).Val(); n != 0 {
		t.Error("the claim of a job given back unstarted was kept")
	}
	// Released before the job is due: whoever claimed it in between would
	// find it busy and put it off for a lease.
	released, due := order.first(func(a []any) bool { return a[0] == "evalsha" && a[1] == ownedScript.Hash() }),
		order.first(func(a []any) bool { return a[0] == "zadd" && len(a) > 2 && a[2] == "xx" })
	if released < 0 || due < 0 || released > due {
		t.Errorf("claim released at command %d, job made due at %d: want the release first", released, due)
	}
	if jobs, claims := d.holds.count(); jobs != 0 || claims != 0 {
		t.Errorf("still held after the drain: %d jobs, %d claims", jobs, claims)
	}
	next := runningDeliverer(t, e)
	wantSentOnce(t, e, next, "the job given back, by the next instance")
}

// wantSentOnce waits until what was sent (one SMS) and d's queue is
// empty, and checks the provider accepted exactly one SMS.
func wantSentOnce(t *testing.T, e *deliverEnv, d *Deliverer, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := e.prov.twilio.Wait(ctx, 1); err != nil {
		t.Fatalf("%s: not sent: %v", what, err)
	}
	eventually(t, "the queue to empty", func() bool { return queueSize(t, d) == 0 })
	if n := len(e.prov.twilio.Messages()); n != 1 {
		t.Fatalf("provider accepted %d SMS, want 1", n)
	}
}

// cmdLog records the arguments of every command, in order.
type cmdLog struct {
	mu   sync.Mutex
	args [][]any
}

func (c *cmdLog) add(cmds ...redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cmd := range cmds {
		c.args = append(c.args, cmd.Args())
	}
}

// first is the index of the first command matching, or -1.
func (c *cmdLog) first(match func([]any) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, a := range c.args {
		if match(a) {
			return i
		}
	}
	return -1
}

func (c *cmdLog) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *cmdLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.add(cmd); return next(ctx, cmd) }
}
func (c *cmdLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.add(cmds...); return next(ctx, cmds) }
}

// A hand-off's begin is trusted while its claim cannot have run out;
// a job that waited longer in its lane begins again as the same owner,
// reading the sent-marker right before the send: here another attempt
// sent it meanwhile, and the late job finds that instead of sending.
// A begin whose reply was lost begins again as the same owner too.
func TestHandoffBeginIsTrustedOnlyWhileFresh(t *testing.T) {
	e := newDeliverEnv(t)
	d := newDeliverer(t, e.decideEnv, e.prov)
	ctx := context.Background()
	job := func(id string) queued {
		q := laneJob(t, id, false)
		if st, _, _, err := d.state.begin(ctx, q.job.Intent, "sms", "handoff-owner", d.cfg.Lease); err != nil || st != beganClaimed {
			t.Fatalf("begin: %q %v", st, err)
		}
		return q
	}
	sentMeanwhile := func(q queued) {
		r := resultFor(q.job.Intent, "sms", 1, OutcomeSent, time.Now())
		if err := d.state.markSent(ctx, q.job.Intent, r, "another-owner"); err != nil {
			t.Fatal(err)
		}
	}

	fresh := job("handoff-fresh")
	fresh.begun = &begun{owner: "handoff-owner", state: beganClaimed, at: d.now()}
	if owner, st, _, _, err := d.begin(ctx, fresh); err != nil || st != beganClaimed || owner != "handoff-owner" {
		t.Fatalf("fresh hand-off begin: %q %q %v, want claimed as handoff-owner", owner, st, err)
	}

	late := job("handoff-late")
	late.begun = &begun{owner: "handoff-owner", state: beganClaimed, at: d.now().Add(-renewEvery(d.cfg.Lease))}
	sentMeanwhile(late)
	if _, st, prev, _, err := d.begin(ctx, late); err != nil || st != beganSent || prev == nil {
		t.Fatalf("late hand-off begin: %q %v, want sent (found the marker)", st, err)
	}

	lost := job("handoff-lost-reply")
	lost.begun = &begun{owner: "handoff-owner", at: d.now()} // the reply never came
	if owner, st, _, _, err := d.begin(ctx, lost); err != nil || st != beganClaimed || owner != "handoff-owner" {
		t.Fatalf("begin after a lost reply: %q %q %v, want its own claim, as handoff-owner", owner, st, err)
	}
}

// A hand-off whose hold fails after its begins took their claims gives
// the claims back: the Kafka copy delivers at once instead of finding
// its own job busy for a lease.
func TestHandoffWhoseHoldFailsGivesItsClaimsBack(t *testing.T) {
	e := newDeliverEnv(t)
	d := newDeliverer(t, e.decideEnv, e.prov)
	d.running.Store(true) // as if running; its hold goes through a client whose ZADDs fail
	beginCalls(t, e.store.rdb)
	in := testIntent("handoff-hold-fails-1")
	failing := redis.NewClient(e.store.rdb.(*redis.Client).Options())
	t.Cleanup(func() { _ = failing.Close() })
	failing.AddHook(failCmdHook{name: "zadd"}) // every ZADD runs, and its reply is lost
	d.queue.rdb = failing
	d.Handoff(context.Background(), []kafka.Message{intentMsg(t, in)})
	if n := counterValue(t, d.metrics.handoffs.failed); n != 1 {
		t.Fatalf("%v hand-offs counted as failed to queue, want 1", n)
	}
	ctx := context.Background()
	if n := e.store.rdb.Exists(ctx, sendingKey(in.CaseRef, in.ID, "sms")).Val(); n != 0 {
		t.Fatal("the claim of a hand-off whose hold failed was kept")
	}
	if _, claims := d.holds.count(); claims != 0 {
		t.Errorf("%d claims still held", claims)
	}
	next := runningDeliverer(t, e)
	writeIntents(t, e.d.Writer, in)
	wantSentOnce(t, e, next, "the copy")
}
