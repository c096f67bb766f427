package dispatcher

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Stats are the dispatcher's Prometheus metrics. Labels never carry case,
// contact or personal data: only types, outcomes, channels and rules.
type Stats struct {
	Events       *prometheus.CounterVec
	DeadLetters  prometheus.Counter
	Retries      prometheus.Counter
	BatchSeconds prometheus.Histogram
	// RuleErrors counts rule evaluations that failed at run time: that
	// rule's alert for that event was not raised.
	RuleErrors prometheus.Counter
	// ConsumerLag is the case-event consumer group's lag (shared with the
	// deliver stage's, which reads other topics).
	ConsumerLag *prometheus.GaugeVec
	// StallRejoins counts the consumers' rejoins after they waited with
	// records waiting (stallWatch), by stage.
	StallRejoins *prometheus.CounterVec
}

// NewStats registers the metrics with reg (nil = a private registry).
func NewStats(reg prometheus.Registerer) *Stats {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Stats{
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatcher_events_total", Help: "Case events applied, by type and outcome (applied, stale, duplicate).",
		}, []string{"type", "outcome"}),
		DeadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatcher_dead_letters_total", Help: "Malformed messages sent to the dead-letter topic.",
		}),
		Retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatcher_batch_retries_total", Help: "Batch attempts that failed transiently and were retried.",
		}),
		BatchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dispatcher_batch_seconds", Help: "Time from applying one batch to case state to its commit (batches overlap: it includes waiting for the batch before).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		RuleErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatcher_rule_errors_total", Help: "Rule evaluations that failed at run time (that rule raised no alert for that event).",
		}),
	}
	reg.MustRegister(s.Events, s.DeadLetters, s.Retries, s.BatchSeconds, s.RuleErrors)
	s.ConsumerLag = newConsumerLag(reg)
	s.StallRejoins = newStallRejoins(reg)
	return s
}

func (s *Stats) countEvent(it Item) {
	outcome := "applied"
	switch {
	case it.Outcome.Transition.Duplicate:
		outcome = "duplicate"
	case it.Outcome.Transition.Stale:
		outcome = "stale"
	}
	s.Events.WithLabelValues(string(it.Event.Type), outcome).Inc()
}

// stallRejoin counts a stall rejoin; nil stats count nothing.
func (s *Stats) stallRejoin() {
	if s != nil {
		s.StallRejoins.WithLabelValues("decide").Inc()
	}
}

// consumerLag is the lag gauge, nil for nil stats.
func (s *Stats) consumerLag() *prometheus.GaugeVec {
	if s == nil {
		return nil
	}
	return s.ConsumerLag
}
