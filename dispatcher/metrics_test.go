package dispatcher

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// gauges gathers reg and returns the values of the gauge (or the sample
// count and sum of the histogram) name, keyed by its labels as k=v,k=v.
func gathered(t *testing.T, reg *prometheus.Registry, name string) map[string][2]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string][2]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			out[labelKey(m)] = metricValue(m)
		}
	}
	return out
}

func labelKey(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

func metricValue(m *dto.Metric) [2]float64 {
	switch {
	case m.Gauge != nil:
		return [2]float64{m.GetGauge().GetValue()}
	case m.Counter != nil:
		return [2]float64{m.GetCounter().GetValue()}
	case m.Histogram != nil:
		return [2]float64{float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum()}
	}
	return [2]float64{}
}

func TestQueueMetricsReadRedis(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	now := time.Now()
	q := &jobQueue{rdb: rdb, prefix: "deliver:queue:"}
	job := func(id, ch string) retryJob {
		return retryJob{Intent: Intent{ID: id, CaseRef: "VG-2024-000123"}, Channel: ch, Attempt: 1}
	}
	for _, j := range []struct {
		job retryJob
		due time.Time
	}{
		{job("a", "sms"), now.Add(-30 * time.Second)}, // waiting 30 s
		{job("b", "sms"), now.Add(-5 * time.Second)},
		{job("c", "sms"), now.Add(time.Minute)}, // leased or a retry later: not due
		{job("d", "email"), now.Add(time.Minute)},
	} {
		if err := q.add(ctx, j.job, j.due); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&queueCollector{q: q, chans: []string{"email", "pager", "sms"}, now: func() time.Time { return now }})
	depth := gathered(t, reg, "dispatcher_delivery_queue_depth")
	want := map[string]float64{"channel=sms": 3, "channel=email": 1, "channel=pager": 0}
	for k, v := range want {
		if got, ok := depth[k]; !ok || got[0] != v {
			t.Errorf("queue depth %s = %v (present %v), want %v", k, got[0], ok, v)
		}
	}
	oldest := gathered(t, reg, "dispatcher_delivery_queue_oldest_seconds")
	if got := oldest["channel=sms"][0]; got < 29.9 || got > 30.1 {
		t.Errorf("oldest sms job: %vs, want 30s", got)
	}
	for _, ch := range []string{"email", "pager"} {
		if got, ok := oldest["channel="+ch]; !ok || got[0] != 0 {
			t.Errorf("oldest %s job: %v (present %v), want 0 (nothing due)", ch, got[0], ok)
		}
	}

	// Redis gone: the scrape still succeeds, without these series.
	_ = rdb.Close()
	if _, err := reg.Gather(); err != nil {
		t.Errorf("gather with Redis closed: %v", err)
	}
}

func TestTimerLatenessObserved(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	// A check-in deadline 42 s ago, of a case that is gone (so no event
	// needs publishing): it still fires, 42 s late.
	if err := rdb.ZAdd(ctx, keyTimerCheckin.key("VG-2024-000777"), redisZ(now.Add(-42*time.Second), "VG-2024-000777")).Err(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	tm := &Timers{Redis: rdb, Now: func() time.Time { return now }, Log: logrus.New(), Metrics: NewTimerMetrics(reg)}
	if _, err := tm.FireDue(ctx, keyTimerCheckin); err != nil {
		t.Fatal(err)
	}
	got := gathered(t, reg, "dispatcher_timer_lateness_seconds")["timer=checkin"]
	if got[0] != 1 || got[1] != 42 {
		t.Errorf("checkin lateness: count %v sum %v, want 1 and 42", got[0], got[1])
	}
	if timerName(keyTimerEscalation) != "escalation" || timerName(keyTimerReassess) != "reassessment" {
		t.Error("timer names")
	}
}

func TestEscalationsOpenByStep(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	store := NewEscalationStore(rdb, time.Hour)
	now := time.Now().UTC()
	for i, e := range []struct {
		state string
		step  int
	}{{EscOpen, 0}, {EscOpen, 1}, {EscOpen, 1}, {EscAcked, 2}, {EscClosed, 0}} {
		esc := &Escalation{ID: fmt.Sprintf("alert-%d", i), CaseRef: fmt.Sprintf("VG-2024-00000%d", i), AckCode: fmt.Sprintf("K%03d", i),
			State: e.state, Step: e.step, OpenedAt: now}
		if err := store.Save(ctx, esc); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewEscalationsCollector(store))
	got := gathered(t, reg, "dispatcher_escalations_open")
	want := map[string]float64{"step=0": 1, "step=1": 2}
	if len(got) != len(want) {
		t.Errorf("open escalations %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k][0] != v {
			t.Errorf("open escalations %s = %v, want %v", k, got[k][0], v)
		}
	}
}

// TestConsumerLagFromBroker: the lag gauge is the group's, per partition:
// everything written while nothing is committed, then what is left after
// a commit; it goes away when the watch stops.
func TestConsumerLagFromBroker(t *testing.T) {
	const topic = "lag-test"
	_, brokers := testenv.StartKafka(t, 2, topic)
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.CRC32Balancer{}, BatchTimeout: time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var msgs []kafka.Message
	for i := range 10 {
		msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("{}")})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	g := newConsumerLag(reg)
	stop := startLagWatch(ctx, KafkaSecurity{}, brokers, "lag-group", []string{topic}, g, 50*time.Millisecond, nil)
	total := func() (float64, int) {
		s, n := 0.0, 0
		for k, v := range gathered(t, reg, "dispatcher_consumer_lag") {
			if strings.Contains(k, "topic="+topic) {
				s += v[0]
				n++
			}
		}
		return s, n
	}
	waitUntil(t, 10*time.Second, "lag 10 over 2 partitions", func() bool { s, n := total(); return s == 10 && n == 2 })

	// The group reads and commits 4 records.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, GroupID: "lag-group", Topic: topic, MaxWait: 100 * time.Millisecond,
		StartOffset: kafka.FirstOffset, HeartbeatInterval: 500 * time.Millisecond, SessionTimeout: 6 * time.Second, RebalanceTimeout: 5 * time.Second})
	for range 4 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 10*time.Second, "lag 6 after 4 committed", func() bool { s, _ := total(); return s == 6 })
	_ = r.Close()
	stop()
	if _, n := total(); n != 0 {
		t.Errorf("%d lag series left after the watch stopped", n)
	}
}

func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, limit)
		}
	}
}

func TestConfigAndBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	RegisterRuntimeMetrics(reg)
	cm := NewConfigMetrics(reg)
	cm.Loaded("0123456789ab")
	cm.Reloaded("", fmt.Errorf("bad"))
	if got := gathered(t, reg, "dispatcher_config_info"); len(got) != 1 || got["hash=0123456789ab"][0] != 1 {
		t.Errorf("config info %v", got)
	}
	cm.Reloaded("ba9876543210", nil)
	if got := gathered(t, reg, "dispatcher_config_info"); len(got) != 1 || got["hash=ba9876543210"][0] != 1 {
		t.Errorf("config info after reload %v", got)
	}
	r := gathered(t, reg, "dispatcher_config_reload_total")
	if r["result=success"][0] != 1 || r["result=failure"][0] != 1 {
		t.Errorf("reloads %v", r)
	}
	if b := gathered(t, reg, "dispatcher_build_info"); len(b) != 1 {
		t.Errorf("build info %v", b)
	}
	for _, n := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if len(gathered(t, reg, n)) == 0 {
			t.Errorf("no %s", n)
		}
	}
	// Two components registering the shared lag gauge get the same one.
	if newConsumerLag(reg) != newConsumerLag(reg) {
		t.Error("consumer lag gauge not shared")
	}
}
