package dispatcher

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff bounds a retry loop: delays grow from Min to Max with jitter,
// and the loop gives up once For has passed since the first attempt.
type Backoff struct {
	Min, Max time.Duration
	For      time.Duration
}

// DefaultBackoff is used for transient infrastructure failures.
var DefaultBackoff = Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second, For: 5 * time.Minute}

// Delay is the wait before retry number attempt (0-based), with ±20% jitter.
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Min
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Retry calls fn until it succeeds, ctx ends, or the time budget is spent;
// onErr sees every failure (for logging and readiness).
func (b Backoff) Retry(ctx context.Context, fn func() error, onErr func(attempt int, err error)) error {
	start := time.Now()
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if onErr != nil {
			onErr(attempt, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(start) >= b.For {
			return fmt.Errorf("gave up after %d attempts over %s: %w", attempt+1, time.Since(start).Round(time.Millisecond), err)
		}
		t := time.NewTimer(b.Delay(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// pause waits for d or until ctx ends (false).
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// everyTick calls fn every interval until ctx ends.
func everyTick(ctx context.Context, every time.Duration, fn func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
