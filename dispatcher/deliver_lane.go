package dispatcher

import (
	"sync"
	"sync/atomic"
	"time"
)

// lane is one channel's local work: the jobs this process holds for it,
// critical ones taken first, and a bounded backlog so a slow provider
// makes its own jobs wait in Redis rather than fill memory. Each channel
// has its own lane and workers: a hanging SMS provider never delays a
// page, an e-mail or a webhook.
type lane struct {
	name   string
	limit  int
	mu     sync.Mutex
	cond   *sync.Cond
	crit   []queued
	norm   []queued
	closed bool
	wake   chan struct{} // asks the lane's poller to look at Redis now
	// due says Redis may hold jobs of this lane that are due now (overflow,
	// jobs given back): workers then ask the poller for more as they free
	// room, instead of waiting for its next tick.
	due atomic.Bool
}

func newLane(name string, limit int) *lane {
	l := &lane{name: name, limit: limit, wake: make(chan struct{}, 1)}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// offer takes a job if the backlog has room; false means it stays due in
// Redis for whoever has room first.
func (l *lane) offer(q queued) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || len(l.crit)+len(l.norm) >= l.limit {
		return false
	}
	if q.job.Intent.Critical {
		l.crit = append(l.crit, q)
	} else {
		l.norm = append(l.norm, q)
	}
	l.cond.Signal()
	return true
}

// free is how many more jobs the backlog takes.
func (l *lane) free() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0
	}
	return l.limit - len(l.crit) - len(l.norm)
}

// take blocks for the next job, critical first; false once closed.
func (l *lane) take() (queued, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		switch {
		case len(l.crit) > 0:
			q := l.crit[0]
			l.crit = l.crit[1:]
			l.refill()
			return q, true
		case l.closed:
			return queued{}, false
		case len(l.norm) > 0:
			q := l.norm[0]
			l.norm = l.norm[1:]
			l.refill()
			return q, true
		}
		l.cond.Wait()
	}
}

// close stops the lane and returns the jobs not started, to give back.
func (l *lane) close() []queued {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	left := append(l.crit, l.norm...)
	l.crit, l.norm = nil, nil
	l.cond.Broadcast()
	return left
}

// refill asks the poller for more once half the backlog is free and Redis
// may hold due jobs. Called with l.mu held.
func (l *lane) refill() {
	if l.due.Load() && len(l.crit)+len(l.norm) <= l.limit/2 {
		l.poke()
	}
}

// pending notes that Redis may hold due jobs and wakes the poller.
func (l *lane) pending() {
	l.due.Store(true)
	l.poke()
}

func (l *lane) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// holdings are the jobs and in-flight claims this process holds, so their
// leases are renewed while it lives; when it dies they run out and any
// instance takes the work over.
type holdings struct {
	mu     sync.Mutex
	jobs   map[string]*held // by queue member
	claims map[string]heldClaim
}

type held struct {
	q queued
	n int // local copies (a redelivered intent may be held twice)
}

func newHoldings() *holdings {
	return &holdings{jobs: map[string]*held{}, claims: map[string]heldClaim{}}
}

func (h *holdings) add(q queued) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if x := h.jobs[q.raw]; x != nil {
		x.n++
		return
	}
	h.jobs[q.raw] = &held{q: q, n: 1}
}

func (h *holdings) drop(q queued) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if x := h.jobs[q.raw]; x != nil {
		if x.n--; x.n <= 0 {
			delete(h.jobs, q.raw)
		}
	}
}

func (h *holdings) claim(c heldClaim)   { h.mu.Lock(); h.claims[c.owner] = c; h.mu.Unlock() }
func (h *holdings) unclaim(c heldClaim) { h.mu.Lock(); delete(h.claims, c.owner); h.mu.Unlock() }
func (h *holdings) count() (jobs, sends int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.jobs), len(h.claims)
}

func (h *holdings) snapshot() ([]queued, []heldClaim) {
	h.mu.Lock()
	defer h.mu.Unlock()
	js := make([]queued, 0, len(h.jobs))
	for _, x := range h.jobs {
		js = append(js, x.q)
	}
	cs := make([]heldClaim, 0, len(h.claims))
	for _, c := range h.claims {
		cs = append(cs, c)
	}
	return js, cs
}

// renewEvery is how often held leases are renewed: three times per lease.
func renewEvery(lease time.Duration) time.Duration { return max(lease/3, 10*time.Millisecond) }
