package dispatcher

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The two questions a driver of virtual time asks the timers (the
// simulator, package sim): when is the next deadline, and fire whatever
// is due now. Run answers neither: it polls.

// NextDue is the earliest deadline of any timer, zero when there is none.
// A timer claimed by a firing under way reads as due at its lease's end.
func (t *Timers) NextDue(ctx context.Context) (time.Time, error) {
	firsts, err := t.firstDeadlines(ctx)
	if err != nil {
		return time.Time{}, err
	}
	var next time.Time
	for _, f := range firsts {
		if !f.at.IsZero() && (next.IsZero() || f.at.Before(next)) {
			next = f.at
		}
	}
	return next, nil
}

// FireAllDue fires the due timers of every shard that has one, one shard
// after the other in a fixed order (so a simulation is repeatable), one
// batch each, and says how many it fired; a backlog over a batch is left
// due for the next call.
func (t *Timers) FireAllDue(ctx context.Context) (int, error) {
	t.defaults()
	firsts, err := t.firstDeadlines(ctx)
	if err != nil {
		return 0, err
	}
	now, total := t.Now(), 0
	for _, f := range firsts {
		if f.at.IsZero() || f.at.After(now) {
			continue
		}
		n, _, err := t.fireKey(ctx, f.set, f.key)
		if err != nil {
			return total, fmt.Errorf("fire %s: %w", f.key, err)
		}
		total += n
	}
	return total, nil
}

// firstDeadline is the earliest deadline in one key of a timer set.
type firstDeadline struct {
	set shardedSet
	key string
	at  time.Time // zero: the key is empty
}

// firstDeadlines reads the first deadline of every key of every timer
// set, in one round trip; with Deadlines set, only of the keys it does
// not remember.
func (t *Timers) firstDeadlines(ctx context.Context) ([]firstDeadline, error) {
	var out []firstDeadline
	for _, set := range timerSets {
		for _, key := range set.keys() {
			out = append(out, firstDeadline{set: set, key: key})
		}
	}
	if t.Deadlines == nil {
		return out, t.readDeadlines(ctx, out, nil)
	}
	idx, gen := t.Deadlines.unknown(out)
	if len(idx) == 0 {
		return out, nil
	}
	if err := t.readDeadlines(ctx, out, idx); err != nil {
		return nil, err
	}
	t.Deadlines.remember(out, idx, gen)
	return out, nil
}

// readDeadlines reads the first deadline of the keys of fs at idx (nil:
// all) in one round trip.
func (t *Timers) readDeadlines(ctx context.Context, fs []firstDeadline, idx []int) error {
	if idx == nil {
		idx = make([]int, len(fs))
		for i := range fs {
			idx[i] = i
		}
	}
	pipe := t.Redis.Pipeline()
	cmds := make([]*redis.ZSliceCmd, len(idx))
	for j, i := range idx {
		cmds[j] = pipe.ZRangeWithScores(ctx, fs[i].key, 0, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("read timer deadlines: %w", err)
	}
	for j, i := range idx {
		if zs := cmds[j].Val(); len(zs) > 0 {
			fs[i].at = time.UnixMilli(int64(zs[0].Score))
		}
	}
	return nil
}
