package dispatcher

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
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
	if err := d.queue.hold(ctx, jobs, d.now().Add(d.cfg.Lease)); err != nil {
		d.metrics.handoffs.failed.Add(float64(len(jobs)))
		return // nothing remembered: the copy queues them
	}
	d.seen.add(jobs)
	d.metrics.handoffs.started.Add(float64(len(jobs)))
	d.offer(ctx, jobs)
}
