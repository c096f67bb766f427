package e2e

import (
	"fmt"
	"sort"
	"testing"
	"time"
)

// maxSplitDelay is the longest a critical alert may take from publishing
// to the provider with split stages and a quick provider.
const maxSplitDelay = 5 * time.Second

// TestSplitStagesDoNotStall is issue 8 item 6: a deliver-only and a
// decide-only process side by side. A deliver-only process must not take
// case-event partitions it never reads: every critical alert, on every
// partition, reaches the provider within seconds (it was 44 s).
func TestSplitStagesDoNotStall(t *testing.T) {
	requireE2E(t)
	dispatcherBinary(t)
	s := newStack(t, uniformDelay(0, 20*time.Millisecond))
	del := s.start(t, "deliver-only", []string{"--stages", "deliver"})
	del.waitReady(t, 20*time.Second)
	dec := s.start(t, "decide-only", []string{"--stages", "decide"})
	dec.waitReady(t, 20*time.Second)
	for _, g := range []string{"dispatcher", "dispatcher-deliver"} {
		s.waitGroupStable(t, g, 20*time.Second)
	}

	evs := extremoEvents("S", 1, 60)
	exp := s.model.expected(evs)
	published := map[string]time.Time{}
	for _, e := range evs {
		s.publish(t, []caseEvent{e})
		published[e.CaseID] = time.Now()
		time.Sleep(25 * time.Millisecond)
	}
	rep := s.settle(t, exp, nil, time.Now().Add(20*time.Second))

	// Delay: from publishing the event to the provider accepting each message.
	firstAt := map[notif]time.Time{}
	for _, a := range s.sms.Answers() {
		ref := refRe.FindStringSubmatch(a.Body)
		if ref == nil {
			continue
		}
		n := notif{ref[1], a.To}
		if at, ok := firstAt[n]; !ok || a.Received.Before(at) {
			firstAt[n] = a.Received
		}
	}
	var delays []time.Duration
	slow := 0
	for n, c := range exp {
		at, ok := firstAt[n]
		if !ok {
			continue
		}
		d := at.Sub(published[c])
		delays = append(delays, d)
		if d > maxSplitDelay {
			slow++
		}
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	if len(delays) > 0 {
		t.Logf("split stages: %d of %d notifications delivered; delay median %s, p95 %s, max %s",
			len(delays), len(exp), delays[len(delays)/2].Round(time.Millisecond),
			delays[len(delays)*95/100].Round(time.Millisecond), delays[len(delays)-1].Round(time.Millisecond))
	}
	if !rep.complete() {
		s.diagnose(t)
		s.logGroups(t)
	}
	rep.assert(t, exp)
	if slow > 0 {
		t.Errorf("%d notifications took longer than %s", slow, maxSplitDelay)
	}
}

// waitGroupStable waits until group has members and is Stable, then logs
// who holds which partitions.
func (s *stack) waitGroupStable(t *testing.T, group string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		state, members, err := s.groupMembers(group)
		if err == nil && state == "Stable" && len(members) > 0 {
			t.Logf("group %s stable: %s", group, fmtMembers(members))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s not stable after %s: state %q, members %s, err %v", group, d, state, fmtMembers(members), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *stack) logGroups(t *testing.T) {
	t.Helper()
	for _, g := range []string{"dispatcher", "dispatcher-deliver"} {
		state, members, err := s.groupMembers(g)
		t.Logf("group %s: state %q, members %s, err %v", g, state, fmtMembers(members), err)
	}
}

func fmtMembers(m map[string]map[string][]int) string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := fmt.Sprintf("%d:", len(m))
	for _, id := range ids {
		out += fmt.Sprintf(" [%s %v]", id, m[id])
	}
	return out
}
