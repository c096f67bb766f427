package dispatcher

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// failures is what fails now, by kind, for readiness.
type failures struct {
	mu    sync.Mutex
	now   map[string]error
	until map[string]time.Time // a failure that lapses unless set again
}

// set records the failure of what (nil clears it).
func (f *failures) set(what string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.until, what)
	if err == nil {
		delete(f.now, what)
		return
	}
	if f.now == nil {
		f.now = map[string]error{}
	}
	f.now[what] = err
}

// expire makes the current failure of what lapse after d.
func (f *failures) expire(what string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.now[what]; !ok {
		return
	}
	if f.until == nil {
		f.until = map[string]time.Time{}
	}
	f.until[what] = time.Now().Add(d)
}

func (f *failures) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := make([]string, 0, len(f.now))
	for n := range f.now {
		if u, ok := f.until[n]; ok && time.Now().After(u) {
			continue
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return fmt.Errorf("%s failing: %w", strings.Join(names, ", "), f.now[names[0]])
}
