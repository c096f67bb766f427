package e2e

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// drainGrace is the SHUTDOWN_GRACE every process of these tests gets.
const drainGrace = 5 * time.Second

// TestSIGTERMDrains is issue 8 item 10: SIGTERM while sends are in flight
// at a provider answering in about 2 s. Every send the provider had
// received before the signal must be completed (answered to a process
// still connected) and audited, the process must exit 0 within the grace
// period and log the start and end of its shutdown, and a restarted
// process must finish the rest with nothing lost.
func TestSIGTERMDrains(t *testing.T) {
	requireE2E(t)
	dispatcherBinary(t)
	s := newStack(t, uniformDelay(1800*time.Millisecond, 2200*time.Millisecond))
	// A call cut off by the shutdown is never accepted: an abandoned send
	// shows as a loss, not as a lucky acceptance.
	s.sms.DropWhenGone(1)
	p := s.start(t, "drain-1", nil)
	p.waitReady(t, 20*time.Second)
	evs := extremoEvents("D", 1, 80) // 80 sends, 8 at a time: about 20 s of work
	exp := s.model.expected(evs)
	s.publish(t, evs)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	err := s.sms.WaitInFlight(ctx, 4)
	cancel()
	if err != nil {
		t.Fatalf("no sends in flight 20 s after publishing: %v (in flight %d, accepted %d)", err, s.sms.InFlight(), len(s.sms.Answers()))
	}
	time.Sleep(300 * time.Millisecond)
	inFlight := s.sms.InFlight()
	termAt := time.Now()
	p.term()
	if !p.waitExit(drainGrace + 10*time.Second) {
		t.Fatalf("still running %s after SIGTERM (grace %s)", time.Since(termAt).Round(time.Millisecond), drainGrace)
	}
	took := p.exitedAt.Sub(termAt)
	code := p.state.ExitCode()
	t.Logf("SIGTERM with %d sends in flight: exit code %d after %s", inFlight, code, took.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM (%s), want 0", code, p.state)
	}
	// The grace bounds the sends; stopping the consumers and writers adds a
	// little, and a loaded machine more (the backlog is about 20 s of work).
	if took > drainGrace+5*time.Second {
		t.Errorf("exit took %s after SIGTERM, want within the grace period %s (+5 s to close)", took.Round(time.Millisecond), drainGrace)
	}

	// Every request that reached the provider before the signal completed.
	before := 0
	for _, at := range s.sms.Arrivals() {
		if at.Before(termAt) {
			before++
		}
	}
	var done []string
	late := 0
	for _, a := range s.sms.Answers() {
		switch {
		case !a.Arrived.Before(termAt):
			late++
		case !a.ClientGone:
			done = append(done, a.Sid)
		}
	}
	t.Logf("before SIGTERM %d requests reached the provider, %d of them completed; %d requests arrived after it; %d cut off",
		before, len(done), late, s.sms.Dropped())
	if len(done) != before {
		t.Errorf("%d of %d sends under way at SIGTERM were cut off instead of completed", before-len(done), before)
	}
	sent := map[string]bool{}
	for _, r := range s.results(t) {
		if r.Outcome == "sent" {
			sent[r.ProviderID] = true
		}
	}
	unaudited := 0
	for _, sid := range done {
		if !sent[sid] {
			unaudited++
		}
	}
	if unaudited > 0 {
		t.Errorf("%d of %d sends completed during the drain have no audit record", unaudited, len(done))
	}

	msgs := shutdownMessages(p)
	t.Logf("shutdown log lines: %q", msgs)
	if len(msgs) < 2 {
		t.Errorf("want log lines for the start and the end of the shutdown (messages mentioning shutdown), got %q", msgs)
	}

	// A restart finishes the rest: nothing lost.
	p2 := s.start(t, "drain-2", nil)
	rep := s.settle(t, exp, nil, time.Now().Add(45*time.Second))
	if !rep.complete() {
		s.diagnose(t)
	}
	rep.assert(t, exp)
	termAt = time.Now()
	p2.term()
	if !p2.waitExit(drainGrace + 10*time.Second) {
		t.Fatalf("drain-2 still running %s after SIGTERM", time.Since(termAt).Round(time.Millisecond))
	}
	if c := p2.state.ExitCode(); c != 0 {
		t.Errorf("drain-2: exit code %d after SIGTERM, want 0", c)
	}
}

var shutdownRe = regexp.MustCompile(`(?i)shut\s?down|shutting`)

// shutdownMessages are the distinct log messages of p about its shutdown.
func shutdownMessages(p *proc) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range p.logLines(shutdownRe) {
		var rec struct {
			Msg string `json:"msg"`
		}
		msg := strings.TrimSpace(l)
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg != "" {
			msg = rec.Msg
		}
		if !seen[msg] {
			seen[msg] = true
			out = append(out, msg)
		}
	}
	return out
}
