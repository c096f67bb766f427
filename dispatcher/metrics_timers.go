package dispatcher

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// TimerMetrics measure how late due timers fire, and count those that
// could not be fired.
type TimerMetrics struct {
	Lateness   *prometheus.HistogramVec
	Unreadable *prometheus.CounterVec
}

// NewTimerMetrics registers dispatcher_timer_lateness_seconds and
// dispatcher_timers_unreadable_total with reg (nil: unregistered).
func NewTimerMetrics(reg prometheus.Registerer) *TimerMetrics {
	return &TimerMetrics{Lateness: registerShared(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "dispatcher_timer_lateness_seconds",
		Help:    "How long after its due time a timer fired (check-in, reassessment, escalation step).",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600},
	}, []string{"timer"})), Unreadable: registerShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dispatcher_timers_unreadable_total",
		Help: "Due timers claimed and not fired because what they time out cannot be read (an escalation record or its policy snapshot); each is tried again when its lease runs out.",
	}, []string{"timer"}))}
}

// unreadable counts timers of set held back at a claim; nil m does nothing.
func (m *TimerMetrics) unreadable(set shardedSet, n int) {
	if m == nil || m.Unreadable == nil || n == 0 {
		return
	}
	m.Unreadable.WithLabelValues(timerName(set)).Add(float64(n))
}

// timerName is the timer label of a timer set.
func timerName(set shardedSet) string {
	switch set {
	case keyTimerCheckin:
		return "checkin"
	case keyTimerReassess:
		return "reassessment"
	case keyTimerEscalation:
		return "escalation"
	}
	return "other"
}

// fired observes the lateness of timers fired at now; nil m does nothing.
func (m *TimerMetrics) fired(set shardedSet, cs []claimed, now time.Time) {
	if m == nil || m.Lateness == nil {
		return
	}
	o := m.Lateness.WithLabelValues(timerName(set))
	for _, c := range cs {
		o.Observe(max(now.Sub(c.due).Seconds(), 0))
	}
}

var timersDueDesc = prometheus.NewDesc("dispatcher_timers_due",
	"Deadlines due now and not fired yet (check-in, reassessment, escalation step); shared by all instances: aggregate with max.",
	[]string{"timer"}, nil)

// TimersDueCollector counts due, unfired timers at scrape time: a number
// that stays above zero means timers are not being fired.
type TimersDueCollector struct {
	Redis redis.UniversalClient
	Now   func() time.Time
}

// Describe implements prometheus.Collector.
func (c *TimersDueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- timersDueDesc }

// Collect implements prometheus.Collector; a Redis that does not answer
// leaves the series out of this scrape.
func (c *TimersDueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	now := formatMS(c.Now())
	for _, set := range timerSets {
		n, err := set.count(ctx, c.Redis, now)
		if err != nil {
			return
		}
		ch <- prometheus.MustNewConstMetric(timersDueDesc, prometheus.GaugeValue, float64(n), timerName(set))
	}
}
