package dispatcher

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

// The hand-off: when the decide stage runs in this process, it gives the
// intents it is about to write to the intents topic straight to
// delivery, which queues them in Redis and starts sending without
// waiting for the write and for the broker to hand them back (about a
// millisecond and a half of a lone alert's path). Nothing about
// durability changes:
//
//   - A handed-off job is durable before anything is sent, exactly as
//     after intake: queued in Redis with a lease, renewed while this
//     process has it, taken over by another instance when the lease runs
//     out. From then on the queue, not Kafka, finishes it.
//   - The intents are still written, and the event's offset committed
//     only after that: a crash before the write replays the event, which
//     decides the same intents (same ids) and writes them.
//   - Their Kafka copy is consumed as always. The copy of a job this
//     process queued is skipped (remembered in handoffSeen, exactly by its
//     queue member) and its offset committed. A copy not remembered
//     (another instance consumes that partition, a restart, a record
//     evicted) is queued again with ZADD NX and the sent-marker absorbs
//     it. Whatever the hand-off declined or failed to queue, the copy
//     delivers.
//
// Under load, batches are large and the lanes busy: the hand-off declines
// and the intents come the batched way, so a burst costs nothing more.

const (
	// handoffMaxJobs: larger batches of intents come through Kafka.
	handoffMaxJobs = 16
	// handoffSeenCap bounds the jobs remembered for their Kafka copy. The
	// copy comes back within milliseconds; the rest is slack.
	handoffSeenCap = 1024
)

// handoffSeen remembers the queue members of handed-off jobs until their
// Kafka copy comes, oldest forgotten first beyond handoffSeenCap.
type handoffSeen struct {
	mu    sync.Mutex
	held  map[string]int // queue member -> its slot in order
	order []string       // ring of insertion order
	next  int
}

func newHandoffSeen() *handoffSeen {
	return &handoffSeen{held: map[string]int{}, order: make([]string, handoffSeenCap)}
}

// add remembers the jobs (after they are durable in Redis). The slot it
// takes forgets its previous job, unless that job was remembered again
// in a later slot.
func (s *handoffSeen) add(jobs []queued) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range jobs {
		if old := s.order[s.next]; old != "" && s.held[old] == s.next {
			delete(s.held, old)
		}
		s.order[s.next] = q.raw
		s.held[q.raw] = s.next
		s.next = (s.next + 1) % len(s.order)
	}
}

// skip returns the jobs not handed off, forgetting the ones that were
// (their copy has come).
func (s *handoffSeen) skip(jobs []queued) (rest []queued, skipped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.held) == 0 {
		return jobs, 0
	}
	rest = jobs[:0:0]
	for _, q := range jobs {
		if _, ok := s.held[q.raw]; ok {
			delete(s.held, q.raw) // its ring slot is overwritten in turn
			skipped++
			continue
		}
		rest = append(rest, q)
	}
	return rest, skipped
}

// handoffMetrics count jobs started by hand-off, hand-offs whose jobs
// could not be queued (left to their copy), and Kafka copies skipped.
type handoffMetrics struct{ started, failed, copies prometheus.Counter }

func newHandoffMetrics(reg prometheus.Registerer) handoffMetrics {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dispatcher_delivery_handoffs_total",
		Help: "Delivery jobs started from the decide stage in the same process (started), jobs it could not queue and left to their Kafka copy (queue_failed), and Kafka copies found already queued (copy_skipped).",
	}, []string{"stage"})
	reg.MustRegister(v)
	return handoffMetrics{started: v.WithLabelValues("started"), failed: v.WithLabelValues("queue_failed"), copies: v.WithLabelValues("copy_skipped")}
}

// Handoff starts delivering intents the decide stage of this process is
// about to write to the intents topic (msgs are those messages). It
// declines, leaving them to their Kafka copy, when delivery is not
// running or is off, when it holds as many jobs as a lane has workers
// (none free) or a job's lane has no room for it, when the batch is
// large, and when anything fails. It never returns an error: the copy is
// the guarantee.
func (d *Deliverer) Handoff(ctx context.Context, msgs []kafka.Message) {
	if d.cfg.NoHandoff || !d.running.Load() || len(msgs) > handoffMaxJobs {
		return
	}
	if jobs, _ := d.holds.count(); jobs >= d.cfg.Workers {
		return // no worker free: the batched way costs less
	}
	jobs, dead := d.jobsOf(msgs)
	if len(dead) > 0 || len(jobs) == 0 || len(jobs) > handoffMaxJobs {
		return // the copy dead-letters what cannot be read
	}
	if _, full := d.byRoom(jobs); len(full) > 0 {
		return // a lane has no room: it would only go back to Redis
	}
	if err := d.holdAndBegin(ctx, jobs); err != nil {
		d.metrics.handoffs.failed.Add(float64(len(jobs)))
		return // nothing remembered: the copy queues them
	}
	d.seen.add(jobs)
	d.metrics.handoffs.started.Add(float64(len(jobs)))
	d.offer(ctx, jobs)
	// Let the worker just woken for these jobs run on this processor
	// now: it would otherwise wait until the caller blocks on its Kafka
	// write or another processor steals it (65-106 us p50 at a steady
	// 500/s, 9 us with the yield; docs/benchmarks.md). The caller goes on
	// on the next free processor.
	runtime.Gosched()
	// A test build can die here: jobs queued and claimed, maybe sending,
	// their intents not yet written (internal/e2e).
	failpoint("after-handoff")
}

// begun is what beginScript found for a handed-off job in the round trip
// that queued it: its worker goes on from there (Deliverer.begin).
type begun struct {
	owner string // the attempt's owner: its claim, when it took one
	// state is beganClaimed, beganSent, beganFailed or beganBusy; "" when
	// the reply was lost (the claim may be held: the worker begins again
	// as the same owner, which takes it or finds it its own).
	state string
	prev  *Result       // beganSent: the earlier audit record
	left  time.Duration // beganBusy: the other claim's time left
	at    time.Time     // when the begin ran
}

// holdAndBegin queues jobs leased, as intake does, and in the same round
// trip begins each one's attempt as its worker would (beginScript): the
// worker then sends without a round trip of its own. A claim taken is
// renewed from now on, like a worker's. A begin whose reply failed
// (NOSCRIPT after a restart, a lost reply) leaves its worker to begin
// again as the same owner; a hold that failed fails the hand-off, and
// every claim it may have taken is given back (or runs out, when Redis is
// gone: the copy's attempt then waits for it).
func (d *Deliverer) holdAndBegin(ctx context.Context, jobs []queued) error {
	now := d.now()
	pipe := d.queue.rdb.Pipeline()
	holds := d.queue.addHeld(ctx, pipe, jobs, now.Add(d.cfg.Lease))
	begins := make([]*redis.Cmd, len(jobs))
	for i, q := range jobs {
		b := &begun{owner: d.newOwner(), at: now}
		jobs[i].begun = b
		keys, args := beginArgs(q.job.Intent, q.job.Channel, b.owner, d.cfg.Lease)
		begins[i] = beginScript.EvalSha(ctx, pipe, keys, args...)
	}
	_, _ = pipe.Exec(ctx) // each command's reply or error is read below
	for i := range jobs {
		in, ch, b := jobs[i].job.Intent, jobs[i].job.Channel, jobs[i].begun
		state, prev, left, err := beginReply(begins[i], in, ch)
		if err != nil {
			continue // state "": its worker begins again
		}
		b.state, b.prev, b.left = state, prev, left
		if state == beganClaimed {
			d.holds.claim(heldClaim{caseRef: in.CaseRef, intentID: in.ID, channel: ch, owner: b.owner})
		}
	}
	for _, h := range holds {
		if err := h.Err(); err != nil {
			d.releaseBegun(ctx, jobs)
			return fmt.Errorf("queue %d handed-off jobs: %w", len(jobs), err)
		}
	}
	return nil
}

// begin is the start of an attempt: what the hand-off's begin found, or
// a begin of its own. A hand-off's begin is trusted only while its claim
// cannot have run out unrenewed (younger than a renewal period): a job
// that waited longer in its lane begins again, as the same owner, so the
// sent-marker is read right before the send, as a worker's own begin does.
func (d *Deliverer) begin(ctx context.Context, q queued) (owner, state string, prev *Result, left time.Duration, err error) {
	if b := q.begun; b == nil {
		owner = d.newOwner()
	} else if b.state != "" && d.now().Sub(b.at) < renewEvery(d.cfg.Lease) {
		return b.owner, b.state, b.prev, b.left, nil
	} else {
		owner = b.owner
	}
	state, prev, left, err = d.state.begin(ctx, q.job.Intent, q.job.Channel, owner, d.cfg.Lease)
	return owner, state, prev, left, err
}

// releaseBegun gives back, in one round trip, the claims handed-off jobs
// took or may have taken and will not use (they go back to the queue
// unstarted): it must come before they are made due, or whoever claims
// them first finds them busy and puts them off for a lease. A claim that
// cannot be given back runs out after a lease.
func (d *Deliverer) releaseBegun(ctx context.Context, jobs []queued) {
	var claims []heldClaim
	for _, q := range jobs {
		b := q.begun
		if b == nil || (b.state != beganClaimed && b.state != "") {
			continue
		}
		c := heldClaim{caseRef: q.job.Intent.CaseRef, intentID: q.job.Intent.ID, channel: q.job.Channel, owner: b.owner}
		d.holds.unclaim(c)
		claims = append(claims, c)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := d.state.releaseClaims(rctx, claims); err != nil {
		d.log.WithError(err).WithField("claims", len(claims)).Warn("hand-off claims not given back; they run out after a lease")
	}
}
