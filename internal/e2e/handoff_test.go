package e2e

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKill9HandedOffLoneAlertsLoseNothing: a lone alert starts delivery
// by hand-off from the decide stage (dispatcher/deliver_handoff.go), and
// its Kafka copy is then skipped and committed, so after a SIGKILL only
// the Redis queue can finish it. Events published one at a time (each
// decided alone, so each handed off), SIGKILL while sends are in flight,
// a restart after each: every expected notification must be accepted by
// the provider at least once and audited. The hand-off counters of each
// killed process must show that jobs were handed off and copies skipped,
// or the test did not exercise what it must.
//
// E2E_HANDOFF_KILLS changes the number of kills (default 4).
func TestKill9HandedOffLoneAlertsLoseNothing(t *testing.T) {
	requireE2E(t)
	kills := envInt(t, "E2E_HANDOFF_KILLS", 4)
	const perRun = 12
	s := newStack(t, uniformDelay(300*time.Millisecond, 1200*time.Millisecond))
	s.sms.DropWhenGone(0.5) // a call cut off by the kill was accepted or not, at random
	evs := extremoEvents("H", 1, perRun*(kills+1))
	exp := s.model.expected(evs)
	var killTimes []time.Time
	var started, skipped float64
	for i := 0; ; i++ {
		// Workers to spare for the previous runs' jobs: a process that
		// holds as many jobs as it has workers declines hand-offs.
		p := s.start(t, fmt.Sprintf("handoff-%02d", i), nil, "DELIVER_WORKERS=64")
		p.waitReady(t, 30*time.Second)
		// One at a time, each decided (its offset committed) before the
		// next: the first may share its batch with the previous run's
		// replayed events, the others are decided alone.
		for _, e := range evs[i*perRun : (i+1)*perRun] {
			s.publish(t, []caseEvent{e})
			s.waitDecided(t)
		}
		if i == kills {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := s.sms.WaitInFlight(ctx, 1)
		cancel()
		if err != nil {
			t.Fatalf("run %d: no send started within 20s", i)
		}
		time.Sleep(rand.N(300 * time.Millisecond))
		st, sk := handoffCounters(t, p)
		started, skipped = started+st, skipped+sk
		n := s.sms.InFlight()
		p.kill()
		killTimes = append(killTimes, time.Now())
		t.Logf("kill %d: %d sends in flight; this process handed off %v jobs and skipped %v copies", i+1, n, st, sk)
	}
	rep := s.settle(t, exp, killTimes, time.Now().Add(3*time.Minute))
	if !rep.complete() {
		s.diagnose(t)
	}
	rep.assert(t, exp)
	if started == 0 || skipped == 0 {
		t.Errorf("the killed processes handed off %v jobs and skipped %v copies: the hand-off was not exercised", started, skipped)
	}
}

// handoffCounters reads dispatcher_delivery_handoffs_total from p's
// /metrics: jobs started by hand-off and Kafka copies skipped.
func handoffCounters(t *testing.T, p *proc) (started, skipped float64) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.http + "/metrics")
	if err != nil {
		t.Fatalf("%s metrics: %v", p.name, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "dispatcher_delivery_handoffs_total{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("%s metrics: %q: %v", p.name, line, err)
		}
		switch {
		case strings.Contains(line, `stage="started"`):
			started = v
		case strings.Contains(line, `stage="copy_skipped"`):
			skipped = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s metrics: %v", p.name, err)
	}
	return started, skipped
}

// waitDecided waits until the decide stage has committed every event
// published.
func (s *stack) waitDecided(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		lag, err := s.lag("dispatcher", "case-events")
		if err == nil && lag == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events not decided within a minute (lag %d, %v)", lag, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestKill9BetweenHandoffAndIntentWriteLosesNothing: the process dies by
// SIGKILL (a failpoint, in a build with -tags failpoints) right after a
// hand-off queued a lone alert's jobs in Redis, took their in-flight
// claims and woke their worker, before the intents are written to Kafka
// and the event's offset committed: the send may be under way, cut off,
// or not started. Redis alone holds the jobs and their claims; the event
// is replayed on restart and decided again. Every expected notification
// must still be accepted by the provider at least once and audited.
//
// E2E_FAILPOINT_KILLS changes the number of deaths (default 3).
func TestKill9BetweenHandoffAndIntentWriteLosesNothing(t *testing.T) {
	requireE2E(t)
	kills := envInt(t, "E2E_FAILPOINT_KILLS", 3)
	bin := failpointBinary(t)
	s := newStack(t, uniformDelay(20*time.Millisecond, 300*time.Millisecond))
	s.sms.DropWhenGone(0.5) // a call cut off by the death was accepted or not, at random
	const before = 3        // hand-offs each process makes before the one it dies after
	evs := extremoEvents("F", 1, (before+1)*(kills+1))
	exp := s.model.expected(evs)
	var deaths []time.Time
	next := 0
	for i := range kills {
		p := s.startBin(t, bin, fmt.Sprintf("failpoint-%02d", i), nil, "DELIVER_WORKERS=64",
			fmt.Sprintf("DISPATCHER_FAILPOINT=after-handoff:%d", before+1))
		p.waitReady(t, 30*time.Second)
		for p.running() && next < len(evs) {
			s.publish(t, evs[next:next+1])
			next++
			s.waitDecidedOrDead(t, p)
		}
		if !p.waitExit(30 * time.Second) {
			t.Fatalf("run %d: the failpoint never fired (%d events published)", i, next)
		}
		if ws, ok := p.state.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("run %d: the process ended with %v, not by the failpoint's SIGKILL", i, p.state)
		}
		deaths = append(deaths, p.exitedAt)
		t.Logf("death %d after event %d of %d", i+1, next, len(evs))
	}
	p := s.start(t, "after-deaths", nil, "DELIVER_WORKERS=64")
	p.waitReady(t, 30*time.Second)
	for ; next < len(evs); next++ {
		s.publish(t, evs[next:next+1])
		s.waitDecided(t)
	}
	rep := s.settle(t, exp, deaths, time.Now().Add(3*time.Minute))
	if !rep.complete() {
		s.diagnose(t)
	}
	rep.assert(t, exp)
}

// waitDecidedOrDead waits until the decide stage has committed every event
// published, or p has died.
func (s *stack) waitDecidedOrDead(t *testing.T, p *proc) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for p.running() {
		if lag, err := s.lag("dispatcher", "case-events"); err == nil && lag == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("events not decided within a minute, and the process lives")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
