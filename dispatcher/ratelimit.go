package dispatcher

import (
	"context"
	"sync"
	"time"
)

// Limiter is a token bucket that queues callers and never drops them;
// critical callers are served before any non-critical one waiting.
type Limiter struct {
	mu       sync.Mutex
	rate     float64 // tokens per second; <= 0 = unlimited
	burst    float64
	tokens   float64
	last     time.Time
	critWait int
}

// NewLimiter allows rate messages per second with bursts of burst.
func NewLimiter(rate float64, burst int) *Limiter {
	if burst < 1 {
		burst = 1
	}
	return &Limiter{rate: rate, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// Wait blocks until a token is free or ctx ends.
func (l *Limiter) Wait(ctx context.Context, critical bool) error {
	if l == nil || l.rate <= 0 {
		return nil
	}
	if critical {
		l.mu.Lock()
		l.critWait++
		l.mu.Unlock()
		defer func() { l.mu.Lock(); l.critWait--; l.mu.Unlock() }()
	}
	for {
		wait, ok := l.take(critical)
		if ok {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// take takes a token if one is free and nobody with priority waits;
// otherwise it says how long to wait before trying again.
func (l *Limiter) take(critical bool) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	if l.tokens >= 1 && (critical || l.critWait == 0) {
		l.tokens--
		return 0, true
	}
	need := max(1-l.tokens, 0.05)
	return time.Duration(need / l.rate * float64(time.Second)), false
}
