package e2e

import (
	"testing"
	"time"
)

// TestHarnessBaseline checks the harness and its model on a run with no
// fault: one process, a quick provider, every expected notification
// accepted exactly once and audited with its sid, nothing unexpected. If
// this fails, the crash test's figures mean nothing.
func TestHarnessBaseline(t *testing.T) {
	requireE2E(t)
	dispatcherBinary(t)
	s := newStack(t, uniformDelay(0, 30*time.Millisecond))
	p := s.start(t, "baseline", nil)
	p.waitReady(t, 20*time.Second)
	evs := extremoEvents("B", 1, 400)
	exp := s.model.expected(evs)
	began := time.Now()
	s.publish(t, evs)
	rep := s.settle(t, exp, nil, time.Now().Add(30*time.Second))
	if !rep.complete() {
		s.diagnose(t)
	}
	t.Logf("baseline: %d events, %d expected, %d accepted in %.1fs", len(evs), len(exp), rep.accepted, time.Since(began).Seconds())
	rep.assert(t, exp)
	if len(rep.duplicates) > 0 || rep.sidsClientGone+rep.sidsCrash > 0 {
		t.Errorf("with no fault: %d duplicate notifications, %d sids answered to a gone client, %d unaudited",
			len(rep.duplicates), rep.sidsClientGone, rep.sidsCrash)
	}
}
