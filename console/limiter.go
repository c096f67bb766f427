package console

import (
	"sync"
	"time"
)

// limiter counts failed logins per key (client address, operator id) in
// a fixed window. It is per process: with several replicas an attacker
// gets LoginLimit tries per replica, still far too few to guess a
// password.
type limiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	fails  map[string]*window
}

type window struct {
	n     int
	reset time.Time
}

func newLimiter(limit int, w time.Duration) *limiter {
	return &limiter{limit: limit, window: w, fails: map[string]*window{}}
}

// blocked reports whether any key used up its failures.
func (l *limiter) blocked(now time.Time, keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if w := l.fails[k]; w != nil && now.Before(w.reset) && w.n >= l.limit {
			return true
		}
	}
	return false
}

func (l *limiter) fail(now time.Time, keys ...string) {
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

func (l *limiter) clear(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.fails, k)
	}
}
