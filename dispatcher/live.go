package dispatcher

import (
	"sync"
	"sync/atomic"

	"github.com/viogen-alerts/dispatcher/rules"
	"github.com/viogen-alerts/dispatcher/templates"
)

// Snapshot is one loaded configuration with its engine and templates:
// what a reload swaps as a whole.
type Snapshot struct {
	Config    *rules.Config
	Engine    *rules.Engine
	Templates *templates.Set
}

// Live holds the snapshot in use. Components read it once per batch or
// request, so each sees one configuration; Swap replaces it atomically
// (SIGHUP reload). Open escalations are unaffected: they carry their
// policy's steps in their own snapshot (Escalation.Alert.Policy).
type Live struct {
	cur  atomic.Pointer[Snapshot]
	mu   sync.Mutex
	subs []chan struct{}
}

// NewLive holds s.
func NewLive(s *Snapshot) *Live {
	l := &Live{}
	l.cur.Store(s)
	return l
}

// Load returns the snapshot in use.
func (l *Live) Load() *Snapshot { return l.cur.Load() }

// Swap puts s in use and wakes every subscriber.
func (l *Live) Swap(s *Snapshot) {
	l.cur.Store(s)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.subs {
		select {
		case c <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// Changed returns a channel that receives after each Swap (coalesced).
func (l *Live) Changed() <-chan struct{} {
	c := make(chan struct{}, 1)
	l.mu.Lock()
	l.subs = append(l.subs, c)
	l.mu.Unlock()
	return c
}
