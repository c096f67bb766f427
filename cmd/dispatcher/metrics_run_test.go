package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/viogen-alerts/dispatcher/dispatcher"
)

// scrape reads admin's /metrics.
func scrape(t *testing.T, admin string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	return fams
}

// series lists a family's samples as label set (k=v,...) → value (for a
// histogram: its count).
func series(fams map[string]*dto.MetricFamily, name string) map[string]float64 {
	out := map[string]float64{}
	f := fams[name]
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		var parts []string
		for _, l := range m.GetLabel() {
			parts = append(parts, l.GetName()+"="+l.GetValue())
		}
		v := 0.0
		switch {
		case m.Gauge != nil:
			v = m.GetGauge().GetValue()
		case m.Counter != nil:
			v = m.GetCounter().GetValue()
		case m.Histogram != nil:
			v = float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			v = m.GetUntyped().GetValue()
		}
		out[strings.Join(parts, ",")] = v
	}
	return out
}

// sumWhere sums the series whose labels contain substr (a newline
// stands for the end of the labels).
func sumWhere(s map[string]float64, substr string) (float64, int) {
	total, n := 0.0, 0
	for k, v := range s {
		if strings.Contains(k+"\n", substr) {
			total += v
			n++
		}
	}
	return total, n
}

// TestRunMetrics runs `dispatcher run` (both stages) on a real Redis and
// the in-process broker, delivers the example scenario through the
// provider fakes, and reads /metrics: every series of issue 10 part 4 is
// there with a value that matches what happened, and no label value
// carries a case id, an address or a phone-like number.
func TestRunMetrics(t *testing.T) {
	st := newPVStack(t, "127.0.0.1:0")
	defer trustWebhookCert(st.pool)()
	p := startRun(t, st.getenv(), "--stages", "decide,deliver")
	defer p.stop(t)
	publishScenario(t, st.brokers)
	waitFor(t, 30*time.Second, "the decide stage to commit every case event", func() bool {
		return consumed(t, st.brokers, "dispatcher", dispatcher.TopicCaseEvents)
	})
	waitDelivered(t, st, 30*time.Second)

	// Latency: one observation per distinct send the providers accepted,
	// by channel (timers may add sends meanwhile: read until they agree).
	var fams map[string]*dto.MetricFamily
	var want map[string]float64
	waitFor(t, 20*time.Second, "one latency observation per send", func() bool {
		occurred := map[string]bool{}
		for _, in := range intentsOn(t, st.brokers) {
			occurred[in.ID] = !in.OccurredAt.IsZero()
		}
		want = map[string]float64{}
		seen := map[string]bool{}
		for _, r := range resultsOn(t, st.brokers) {
			if r.Outcome == dispatcher.OutcomeSent && occurred[r.IntentID] && !seen[r.IntentID+"/"+r.Channel] {
				seen[r.IntentID+"/"+r.Channel] = true
				want[r.Channel]++
			}
		}
		fams = scrape(t, p.admin)
		lat := series(fams, "dispatcher_notification_latency_seconds")
		for ch, n := range want {
			if got, _ := sumWhere(lat, "channel="+ch+","); got != n {
				return false
			}
		}
		total, _ := sumWhere(lat, "")
		return total == float64(len(seen))
	})
	if want["sms"] == 0 {
		t.Errorf("the scenario sent no SMS (%v): the latency check proves little", want)
	}
	t.Logf("latency observations by channel: %v", want)
	for k := range series(fams, "dispatcher_notification_latency_seconds") {
		if !regexp.MustCompile(`^channel=\w+,severity=\w+$`).MatchString(k) {
			t.Errorf("latency series %s: want channel and severity labels", k)
		}
	}

	// Consumer lag: every partition of both groups' topics, 0 once all
	// is committed (the watch reads the broker every 5 s).
	var lag map[string]float64
	defer func() {
		if t.Failed() {
			t.Logf("consumer lag: %v", lag)
		}
	}()
	waitFor(t, 20*time.Second, "consumer lag 0 on every partition", func() bool {
		fams = scrape(t, p.admin)
		lag = series(fams, "dispatcher_consumer_lag")
		for _, topic := range []string{dispatcher.TopicCaseEvents, dispatcher.TopicInternal, dispatcher.TopicIntents} {
			if v, n := sumWhere(lag, "topic="+topic+"\n"); n != 2 || v != 0 {
				return false
			}
		}
		return true
	})

	// The queue empties: every job finishes (its audit record, which the
	// latency check above waited for, is written before it leaves the
	// queue, and the gauge is read at each scrape).
	waitFor(t, 20*time.Second, "every delivery queue empty (dispatcher_delivery_queue_depth 0 on each channel)", func() bool {
		fams = scrape(t, p.admin)
		depth := series(fams, "dispatcher_delivery_queue_depth")
		for _, ch := range []string{"sms", "email", "pager", "webhook"} {
			if v, ok := depth["channel="+ch]; !ok || v != 0 {
				return false
			}
		}
		return true
	})
	oldest := series(fams, "dispatcher_delivery_queue_oldest_seconds")
	for _, ch := range []string{"sms", "email", "pager", "webhook"} {
		if _, ok := oldest["channel="+ch]; !ok {
			t.Errorf("no queue age for %s", ch)
		}
	}
	open := series(fams, "dispatcher_escalations_open")
	if _, n := sumWhere(open, "step="); n == 0 {
		t.Error("no dispatcher_escalations_open series")
	}
	t.Logf("open escalations by step: %v", open)

	raw, err := os.ReadFile(st.config)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if info := series(fams, "dispatcher_config_info"); len(info) != 1 || info["hash="+hex.EncodeToString(sum[:])[:12]] != 1 {
		t.Errorf("config info %v, want the config file's hash", info)
	}
	if r := series(fams, "dispatcher_config_reload_total"); len(r) != 2 || r["result=success"] != 0 || r["result=failure"] != 0 {
		t.Errorf("config reloads %v, want success and failure at 0", r)
	}
	if b := series(fams, "dispatcher_build_info"); len(b) != 1 {
		t.Errorf("build info %v", b)
	} else {
		for k, v := range b {
			if v != 1 || !strings.Contains(k, "goversion="+runtime.Version()) || !strings.Contains(k, "version=") {
				t.Errorf("build info %s = %v", k, v)
			}
		}
	}
	for _, n := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes",
		"dispatcher_notifications_total", "dispatcher_events_total"} {
		if len(series(fams, n)) == 0 {
			t.Errorf("no %s", n)
		}
	}

	checkLabelsPrivate(t, fams, caseIDs(t, exampleEvents))
}

// caseIDs are the case ids of an events file.
func caseIDs(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			CaseID string `json:"case_id"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.CaseID != "" && !seen[ev.CaseID] {
			seen[ev.CaseID] = true
			out = append(out, ev.CaseID)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no case ids in %s", path)
	}
	return out
}

var longDigits = regexp.MustCompile(`[0-9]{9,}`)

var configHash = regexp.MustCompile(`^[0-9a-f]{12}$`)

// checkLabelsPrivate fails on a label value, in any family, with a run of
// 9+ digits (a phone number or an id), an '@' (an address) or a case id.
func checkLabelsPrivate(t *testing.T, fams map[string]*dto.MetricFamily, cases []string) {
	t.Helper()
	n := 0
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				n++
				v := l.GetValue()
				if name == "dispatcher_config_info" && l.GetName() == "hash" {
					// A digest of the configuration (12 hex digits): it may hold 9
					// decimal digits in a row by chance (about 1 run in 20).
					if !configHash.MatchString(v) {
						t.Errorf("%s{hash=%q}: not 12 hex digits", name, v)
					}
					continue
				}
				if longDigits.MatchString(v) || strings.Contains(v, "@") {
					t.Errorf("%s{%s=%q}: a label value with a long number or an address", name, l.GetName(), v)
				}
				for _, c := range cases {
					if strings.Contains(strings.ToLower(v), strings.ToLower(c)) {
						t.Errorf("%s{%s=%q}: a label value carries case id %s", name, l.GetName(), v, c)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Error("no label values at all")
	}
}
