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

// timerKeys are the sets Run fires, in the order it fires them.
var timerKeys = []string{keyTimerCheckin, keyTimerReassess, keyTimerEscalation}

// NextDue is the earliest deadline of any timer, zero when there is none.
// A timer claimed by a firing under way reads as due at its lease's end.
func (t *Timers) NextDue(ctx context.Context) (time.Time, error) {
	pipe := t.Redis.Pipeline()
	cmds := make([]*redis.ZSliceCmd, len(timerKeys))
	for i, key := range timerKeys {
		cmds[i] = pipe.ZRangeWithScores(ctx, key, 0, 0)
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

// FireAllDue fires every set's due timers once, as one round of Run does,
// and says how many it fired.
func (t *Timers) FireAllDue(ctx context.Context) (int, error) {
	total := 0
	for _, key := range timerKeys {
		n, err := t.FireDue(ctx, key)
		if err != nil {
			return total, fmt.Errorf("fire %s: %w", key, err)
		}
		total += n
	}
	return total, nil
}
