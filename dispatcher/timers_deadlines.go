package dispatcher

import (
	"sync"
	"time"
)

// TimerDeadlines remembers the earliest deadline of each timer key for a
// driver of virtual time. The simulator asks NextDue after every step;
// reading the first member of all 51 timer keys each time was most of a
// simulated month's Redis traffic, though a step changes a few of them.
// Whoever sees every command the Redis runs (the simulator's embedded
// Redis calls it for each one, scripts' commands included) reports the
// keys written with Touch; NextDue and FireAllDue then read only those.
// Production's Run never uses it: it polls. Safe for concurrent use.
type TimerDeadlines struct {
	mu    sync.Mutex
	first map[string]time.Time // key → its earliest deadline (zero: empty)
	gen   uint64               // counts Touch and Forget calls
}

// timerKeys are the keys of every timer set, shards and legacy keys.
var timerKeys = func() map[string]bool {
	m := map[string]bool{}
	for _, set := range timerSets {
		for _, k := range set.keys() {
			m[k] = true
		}
	}
	return m
}()

// NewTimerDeadlines is an empty cache: every key is read at first.
func NewTimerDeadlines() *TimerDeadlines {
	return &TimerDeadlines{first: map[string]time.Time{}}
}

// Touch forgets the deadline of key if it is a timer key: it may have
// been written.
func (d *TimerDeadlines) Touch(key string) {
	if !timerKeys[key] {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.first, key)
	d.gen++
}

// Forget forgets every deadline (a flush, keys expired).
func (d *TimerDeadlines) Forget() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.first)
	d.gen++
}

// unknown lists the keys of fs whose deadline is not remembered, filling
// in the others, and returns the generation to store the reads under.
func (d *TimerDeadlines) unknown(fs []firstDeadline) ([]int, uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var idx []int
	for i := range fs {
		at, ok := d.first[fs[i].key]
		if !ok {
			idx = append(idx, i)
			continue
		}
		fs[i].at = at
	}
	return idx, d.gen
}

// remember stores what was read, unless a key was touched meanwhile.
func (d *TimerDeadlines) remember(fs []firstDeadline, idx []int, gen uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gen != gen {
		return
	}
	for _, i := range idx {
		d.first[fs[i].key] = fs[i].at
	}
}
