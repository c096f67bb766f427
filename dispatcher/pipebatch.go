package dispatcher

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// pipeBatcher merges the Redis calls of concurrent delivery workers into
// one pipelined round trip (a group commit): while one round trip is on
// the wire, the calls of the other workers gather for the next. The
// round trip is made by a caller, not by a goroutine of its own: a call
// that finds none on the wire makes one at once with what is pending
// (its own call, when it comes alone), and hands the turn to the first
// call that gathered meanwhile, which takes all that gathered. So a lone
// call costs one round trip and no hand-over between goroutines. Each
// caller reads its own commands' results and errors, exactly as after a
// pipeline of its own: batching changes how many round trips there are,
// never what a call does.
type pipeBatcher struct {
	rdb redis.UniversalClient
	max int
	// flushTimeout bounds one round trip (the callers wait for it).
	flushTimeout time.Duration

	mu      sync.Mutex
	pending []*pipeReq
	// busy: a caller is making a round trip; calls handed in meanwhile
	// wait in pending for the turn it hands on.
	busy bool
}

type pipeReq struct {
	queue func(redis.Pipeliner) // adds the call's commands
	done  chan struct{}         // closed when its commands have their replies
	turn  chan struct{}         // closed when it is to make the next round trip
}

const (
	pipeBatchMax     = 256
	pipeFlushTimeout = 10 * time.Second
)

func newPipeBatcher(rdb redis.UniversalClient) *pipeBatcher {
	return &pipeBatcher{rdb: rdb, max: pipeBatchMax, flushTimeout: pipeFlushTimeout}
}

// do runs the commands queue adds, batched with other workers' calls
// (in a pipeline of its own when b is nil). The caller then reads its
// commands; do itself returns an error only for a nil batcher's ended
// ctx, as a pipeline would. A call handed in is always flushed: it waits
// at most for the round trips ahead of it, each bounded by flushTimeout.
func (b *pipeBatcher) do(ctx context.Context, rdb redis.UniversalClient, queue func(redis.Pipeliner)) error {
	if b == nil {
		pipe := rdb.Pipeline()
		queue(pipe)
		_, _ = pipe.Exec(ctx)
		return nil
	}
	r := &pipeReq{queue: queue, done: make(chan struct{}), turn: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	mine := !b.busy
	b.busy = true
	b.mu.Unlock()
	if !mine {
		select {
		case <-r.done:
			return nil
		case <-r.turn:
		}
	}
	// r is first in pending (a turn goes to the first waiting call, and a
	// caller that finds none on the wire found pending empty), so the
	// round trip below carries it.
	func() {
		defer b.handOn() // the turn is handed on whatever happens
		b.flush(ctx, b.take())
	}()
	<-r.done
	return nil
}

// take removes up to max calls from the front of pending.
func (b *pipeBatcher) take() []*pipeReq {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(b.pending), b.max)
	batch := make([]*pipeReq, n)
	copy(batch, b.pending)
	b.pending = append(b.pending[:0], b.pending[n:]...)
	return batch
}

// handOn gives the next round trip to the first call that gathered, or
// ends the busy spell when none did.
func (b *pipeBatcher) handOn() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) == 0 {
		b.busy = false
		return
	}
	close(b.pending[0].turn)
}

func (b *pipeBatcher) flush(ctx context.Context, batch []*pipeReq) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.flushTimeout)
	defer cancel()
	pipe := b.rdb.Pipeline()
	for _, r := range batch {
		r.queue(pipe)
	}
	// Every command carries its own reply or error (a failed round trip
	// sets its error on each); the callers read them.
	_, _ = pipe.Exec(fctx)
	for _, r := range batch {
		close(r.done)
	}
}
