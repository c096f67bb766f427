package sim

import (
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"

	"github.com/viogen-alerts/dispatcher/dispatcher"
)

// embedded is the simulation's Redis: miniredis in-process, every command
// of which (a script's own included) passes through one hook that keeps
// its TTLs moving with the virtual clock (lazyTTL) and tells the timers'
// deadline cache which keys were written.
type embedded struct {
	mr        *miniredis.Miniredis
	ttl       *lazyTTL
	deadlines *dispatcher.TimerDeadlines
}

func startEmbedded(start time.Time) (*embedded, error) {
	mr := miniredis.NewMiniRedis()
	// Dial starts the server without a listener; the hook needs it started.
	c, err := mr.Dial()
	if err != nil {
		return nil, fmt.Errorf("start embedded Redis: %w", err)
	}
	_ = c.Close()
	r := &embedded{mr: mr, ttl: newLazyTTL(mr, start), deadlines: dispatcher.NewTimerDeadlines()}
	srv := mr.Server()
	srv.SetPreHook(func(p *server.Peer, cmd string, args ...string) bool {
		r.written(srv, cmd, args)
		return r.ttl.hook(cmd, args, func(a []string) { srv.Dispatch(p, a) })
	})
	return r, nil
}

// written tells the deadline cache of the timer keys a command may write.
func (r *embedded) written(srv *server.Server, cmd string, args []string) {
	switch {
	case cmd == "FLUSHALL" || cmd == "FLUSHDB" || cmd == "SWAPDB" || cmd == "SELECT":
		r.deadlines.Forget()
	case !srv.IsReadOnlyCommand(cmd):
		for _, a := range args {
			r.deadlines.Touch(a)
		}
	}
}

// advance moves the embedded Redis's clock to t (later than its own).
func (r *embedded) advance(t time.Time) {
	walked, deleted := r.ttl.advance(t)
	if walked {
		r.deadlines.Forget() // keys may have expired
	}
	for _, k := range deleted {
		r.deadlines.Touch(k)
	}
}
