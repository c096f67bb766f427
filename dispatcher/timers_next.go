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
	pipe := t.Redis.Pipeline()
	var cmds []*redis.ZSliceCmd
	for _, set := range timerSets {
		for _, key := range set.keys() {
			cmds = append(cmds, pipe.ZRangeWithScores(ctx, key, 0, 0))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return time.Time{}, fmt.Errorf("read timer deadlines: %w", err)
	}
	var next time.Time
	for _, c := range cmds {
		for _, z := range c.Val() {
			if at := time.UnixMilli(int64(z.Score)); next.IsZero() || at.Before(next) {
				next = at
			}
		}
	}
	return next, nil
}

// FireAllDue fires every set's due timers (every shard, one batch each),
// as a pass of Run's round does, and says how many it fired; a backlog
// over one batch per shard is left due for the next call.
func (t *Timers) FireAllDue(ctx context.Context) (int, error) {
	total := 0
	for _, set := range timerSets {
		n, err := t.FireDue(ctx, set)
		if err != nil {
			return total, fmt.Errorf("fire %s: %w", set.base, err)
		}
		total += n
	}
	return total, nil
}
