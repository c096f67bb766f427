package dispatcher

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// pipeBatcher merges the Redis calls of concurrent delivery workers into
// one pipelined round trip (a group commit): a worker hands in the
// commands of its call and waits for the round trip that carries them.
// While one round trip is on the wire, the calls of the other workers
// gather for the next. Each caller reads its own commands' results and
// errors, exactly as after a pipeline of its own, so batching changes
// how many round trips there are, never what a call does.
type pipeBatcher struct {
	rdb  redis.UniversalClient
	reqs chan *pipeReq // unbuffered: a call handed in is always flushed
	stop chan struct{} // closed when run returns: calls go direct
	max  int
	// flushTimeout bounds one round trip (the callers wait for it).
	flushTimeout time.Duration
}

type pipeReq struct {
	queue func(redis.Pipeliner) // adds the call's commands
	done  chan struct{}
}

const (
	pipeBatchMax     = 256
	pipeFlushTimeout = 10 * time.Second
)

func newPipeBatcher(rdb redis.UniversalClient) *pipeBatcher {
	return &pipeBatcher{rdb: rdb, reqs: make(chan *pipeReq), stop: make(chan struct{}), max: pipeBatchMax, flushTimeout: pipeFlushTimeout}
}

// run flushes calls as they come until ctx ends. A call it has taken is
// always flushed, even after ctx ended.
func (b *pipeBatcher) run(ctx context.Context) {
	defer close(b.stop)
	batch := make([]*pipeReq, 0, b.max)
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-b.reqs:
			batch = append(batch[:0], r)
		}
	gather:
		for len(batch) < b.max {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		b.flush(ctx, batch)
	}
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

// do runs the commands queue adds, batched with other workers' calls
// when the batcher runs, in a pipeline of their own otherwise. It returns
// an error only when ctx ended before the call was handed in; otherwise
// the caller reads its commands.
func (b *pipeBatcher) do(ctx context.Context, rdb redis.UniversalClient, queue func(redis.Pipeliner)) error {
	if b != nil {
		r := &pipeReq{queue: queue, done: make(chan struct{})}
		select {
		case b.reqs <- r:
			<-r.done // bounded by flushTimeout
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-b.stop:
		}
	}
	pipe := rdb.Pipeline()
	queue(pipe)
	_, _ = pipe.Exec(ctx)
	return nil
}
