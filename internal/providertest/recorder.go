package providertest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// maxRecords bounds what a fake remembers; older records are dropped.
const maxRecords = 10000

// recorder keeps what a fake accepted and lets tests wait for it.
type recorder[T any] struct {
	mu       sync.Mutex
	items    []T
	changed  chan struct{} // closed and replaced on every add
	attempts atomic.Int64
}

func (r *recorder[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.items) >= maxRecords {
		r.items = append(r.items[:0], r.items[1:]...)
	}
	r.items = append(r.items, v)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

func (r *recorder[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.items...)
}

func (r *recorder[T]) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = nil
	r.attempts.Store(0)
}

// wait returns the records once there are at least n, or ctx's error.
func (r *recorder[T]) wait(ctx context.Context, n int) ([]T, error) {
	for {
		r.mu.Lock()
		if len(r.items) >= n {
			out := append([]T(nil), r.items...)
			r.mu.Unlock()
			return out, nil
		}
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		ch, have := r.changed, len(r.items)
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("providertest: have %d of %d records: %w", have, n, ctx.Err())
		}
	}
}
