package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/dispatcher"
)

// runProc is `dispatcher run` started in-process through dispatch, with
// its own flags and environment, as a separate process would be.
type runProc struct {
	cancel context.CancelFunc
	done   chan int
	errOut *syncBuffer
	admin  string
}

var startedRe = regexp.MustCompile(`"http":"([^"]+)"[^\n]*"msg":"dispatcher started"`)

// startRun runs `dispatcher run args...` and waits until it listens and
// /readyz answers 200.
func startRun(t *testing.T, getenv env, args ...string) *runProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &runProc{cancel: cancel, done: make(chan int, 1), errOut: &syncBuffer{}}
	go func() {
		p.done <- dispatch(ctx, append([]string{"run"}, args...), stdio{in: strings.NewReader(""), out: &syncBuffer{}, err: p.errOut}, getenv)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for p.admin == "" {
		if m := startedRe.FindStringSubmatch(p.errOut.String()); m != nil {
			p.admin = "http://" + m[1]
			break
		}
		select {
		case code := <-p.done:
			t.Fatalf("run %v exited %d before it started:\n%s", args, code, tail(p.errOut.String()))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop(t)
			t.Fatalf("run %v did not start in 20s:\n%s", args, tail(p.errOut.String()))
		}
	}
	for {
		resp, err := http.Get(p.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			p.stop(t)
			t.Fatalf("run %v: /readyz not 200 in 20s: %v %v\n%s", args, resp, err, tail(p.errOut.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop cancels the run and expects exit status 0.
func (p *runProc) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	select {
	case code := <-p.done:
		if code != 0 {
			t.Errorf("run exited %d:\n%s", code, tail(p.errOut.String()))
		}
	case <-time.After(30 * time.Second):
		t.Error("run did not stop within 30s of cancel")
	}
}

// alertingEvents lists the events route-test says raise an alert.
func alertingEvents(t *testing.T, config string) []string {
	t.Helper()
	code, out, errOut := run(t, "", envMap(nil), "route-test", "--config", config, "--event", exampleEvents, "--output", "json")
	if code != 0 {
		t.Fatalf("route-test: exit %d: %s", code, errOut)
	}
	var rt struct {
		Events []struct {
			EventID string            `json:"event_id"`
			Alerts  []json.RawMessage `json:"alerts"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &rt); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var ids []string
	for _, e := range rt.Events {
		if len(e.Alerts) > 0 && !seen[e.EventID] {
			seen[e.EventID] = true
			ids = append(ids, e.EventID)
		}
	}
	sort.Strings(ids)
	return ids
}

// plannedSends counts the distinct (intent, channel) pairs: the topic may
// hold an intent twice (a replayed decision), which is sent once.
func plannedSends(intents []dispatcher.Intent) int {
	seen := map[string]bool{}
	n := 0
	for _, in := range intents {
		if !seen[in.ID] {
			seen[in.ID] = true
			n += len(in.Channels)
		}
	}
	return n
}

// waitDelivered waits until every (intent, channel) of the intents on the
// topic has a sent or failed result and the providers got exactly one
// message per distinct sent (intent, channel), all read together (in one
// process, timers may add intents meanwhile).
func waitDelivered(t *testing.T, st *pvStack, limit time.Duration) map[string]int {
	t.Helper()
	var state string
	var got map[string]int
	deadline := time.Now().Add(limit)
	for {
		intents := intentsOn(t, st.brokers)
		missing, sends := unsettled(intents, resultsOn(t, st.brokers))
		got = st.providerCounts()
		total, ok := 0, len(missing) == 0
		for ch, n := range got {
			total += n
			ok = ok && n == sends[ch]
		}
		want := plannedSends(intents)
		if ok && total == want {
			return got
		}
		state = fmt.Sprintf("%d of %d planned sends unsettled; the providers got %v, the audit trail records %v sent",
			len(missing), want, got, sends)
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", limit, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRunStagesFlag runs `dispatcher run --stages` as deployments split
// it: decide alone writes intents and sends nothing; deliver alone,
// started afterwards on the same broker and Redis, delivers them; both in
// one process do both; a bad value is refused with a clear message.
func TestRunStagesFlag(t *testing.T) {
	t.Run("bad values are refused", func(t *testing.T) {
		cfg := writeTestConfig(t, "https://127.0.0.1:1/hooks/viogen")
		getenv := envMap(map[string]string{"KAFKA_BROKERS": "127.0.0.1:1", "REDIS_URL": "redis://127.0.0.1:1",
			"DISPATCHER_CONFIG": cfg, "HTTP_ADDR": "127.0.0.1:0"})
		for _, bad := range []string{"nope", "", "DECIDE", "decide,nope", "deliver,decidee"} {
			ctx, cancel := context.WithCancel(context.Background())
			errOut := &syncBuffer{}
			done := make(chan int, 1)
			go func() {
				done <- dispatch(ctx, []string{"run", "--stages", bad}, stdio{in: strings.NewReader(""), out: &syncBuffer{}, err: errOut}, getenv)
			}()
			// Either it exits, or it starts: then it accepted the value.
			var code int
			started := false
		wait:
			for deadline := time.Now().Add(20 * time.Second); ; {
				select {
				case code = <-done:
					break wait
				case <-time.After(20 * time.Millisecond):
				}
				if strings.Contains(errOut.String(), "dispatcher started") {
					started = true
					cancel()
					code = <-done
					break wait
				}
				if time.Now().After(deadline) {
					cancel()
					t.Fatalf("--stages %q: neither refused nor started in 20s", bad)
				}
			}
			cancel()
			msg := errOut.String()
			switch {
			case started:
				t.Errorf("--stages %q was accepted: the dispatcher started (an unknown stage must be refused, not ignored):\n%s", bad, tail(msg))
			case code != 1 && code != 2:
				t.Errorf("--stages %q: exit %d, want 1 or 2", bad, code)
			case !strings.Contains(msg, "--stages") || !strings.Contains(msg, "decide") || !strings.Contains(msg, "deliver"):
				t.Errorf("--stages %q: the message does not say what --stages takes: %s", bad, msg)
			}
		}
	})

	t.Run("decide alone, then deliver alone", func(t *testing.T) {
		st := newPVStack(t, "127.0.0.1:0")
		defer trustWebhookCert(st.pool)()
		wantEvents := alertingEvents(t, st.config)

		decide := startRun(t, st.getenv(), "--stages", "decide")
		n := publishScenario(t, st.brokers)
		// The decide stage has processed every event once the group has
		// committed the end of the topic: it commits after writing intents.
		waitFor(t, 30*time.Second, "the decide stage to commit every case event", func() bool {
			return consumed(t, st.brokers, "dispatcher", dispatcher.TopicCaseEvents)
		})
		intents := intentsOn(t, st.brokers)
		have := map[string]bool{}
		for _, in := range intents {
			have[in.EventID] = true
		}
		for _, id := range wantEvents {
			if !have[id] {
				t.Errorf("no intent on %s for event %s", dispatcher.TopicIntents, id)
			}
		}
		// Every event is decided: nothing was sent, nothing recorded as sent.
		if a := st.providerAttempts(); a != 0 {
			t.Errorf("decide alone: providers got %d requests (%v), want none", a, st.providerCounts())
		}
		sent := 0
		for _, r := range resultsOn(t, st.brokers) {
			if r.Outcome == dispatcher.OutcomeSent {
				sent++
			}
		}
		if sent > 0 {
			t.Errorf("decide alone: %d results record a send, want none", sent)
		}
		decide.stop(t)
		if a := st.providerAttempts(); a != 0 {
			t.Errorf("decide alone: providers got %d requests by the time it stopped, want none", a)
		}
		if strings.Contains(decide.errOut.String(), `"component":"deliver"`) {
			t.Errorf("decide alone ran a deliver component:\n%s", tail(decide.errOut.String()))
		}
		// What decide wrote, timers included, up to its stop.
		intents = intentsOn(t, st.brokers)
		t.Logf("%d events published; decide alone wrote %d intents for %d alerting events", n, len(intents), len(wantEvents))

		deliver := startRun(t, st.getenv(), "--stages", "deliver")
		got := waitDelivered(t, st, 30*time.Second)
		deliver.stop(t)
		if want := plannedSends(intents); got["sms"]+got["email"]+got["pager"]+got["webhook"] < want {
			t.Errorf("deliver alone sent %v, fewer than the %d sends decide planned", got, want)
		}
		t.Logf("deliver alone sent %v", got)
		if strings.Contains(deliver.errOut.String(), `"component":"decide"`) {
			t.Errorf("deliver alone ran the decide stage:\n%s", tail(deliver.errOut.String()))
		}
	})

	t.Run("decide and deliver in one process", func(t *testing.T) {
		st := newPVStack(t, "127.0.0.1:0")
		defer trustWebhookCert(st.pool)()
		wantSends := routeTestSends(t, st.config)
		both := startRun(t, st.getenv(), "--stages", "decide,deliver")
		defer both.stop(t)
		publishScenario(t, st.brokers)
		waitFor(t, 30*time.Second, "the decide stage to commit every case event", func() bool {
			return consumed(t, st.brokers, "dispatcher", dispatcher.TopicCaseEvents)
		})
		got := waitDelivered(t, st, 30*time.Second)
		total := 0
		for _, n := range got {
			total += n
		}
		if total < wantSends {
			t.Errorf("providers got %d messages, route-test predicts at least %d", total, wantSends)
		}
	})
}
