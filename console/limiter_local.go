package console

import (
	"sync"
	"time"
)

// localLimiter counts failed logins per key in a fixed window, in this
// process only: the shared limiter's fallback while Redis fails.
type localLimiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	fails  map[string]*window
}

type window struct {
	n     int
	reset time.Time
}

func newLocalLimiter(limit int, w time.Duration) *localLimiter {
	return &localLimiter{limit: limit, window: w, fails: map[string]*window{}}
}

// blocked reports whether any key used up its failures.
func (l *localLimiter) blocked(now time.Time, keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if w := l.fails[k]; w != nil && now.Before(w.reset) && w.n >= l.limit {
			return true
		}
	}
	return false
}

func (l *localLimiter) fail(now time.Time, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fails) > 100000 { // bounded memory under a spray of addresses
		for k, w := range l.fails {
			if !now.Before(w.reset) {
				delete(l.fails, k)
			}
		}
	}
	for _, k := range keys {
		w := l.fails[k]
		if w == nil || !now.Before(w.reset) {
			w = &window{reset: now.Add(l.window)}
			l.fails[k] = w
		}
		w.n++
	}
}

func (l *localLimiter) clear(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.fails, k)
	}
}
