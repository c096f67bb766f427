package dispatcher

import "github.com/prometheus/client_golang/prometheus"

// deliverMetrics count delivery outcomes. Labels carry channels, outcomes
// and error classes only: never a case, a contact or an address.
type deliverMetrics struct {
	notifications *prometheus.CounterVec
	notices       prometheus.Counter
	undeliverable prometheus.Counter
	deadIntents   prometheus.Counter
	// receiptFailures counts status callbacks answered 500: the receipt
	// check finishes them, SMS_RECEIPT_TIMEOUT after the send.
	receiptFailures prometheus.Counter
	// corruptJobs counts claims that found a queue member that is not a
	// job (parked a day ahead): it may be an alert nobody can send.
	corruptJobs  prometheus.Counter
	latency      *prometheus.HistogramVec
	lag          *prometheus.GaugeVec
	stallRejoins prometheus.Counter
	handoffs     handoffMetrics
	reg          prometheus.Registerer // for the collectors registered while the stage runs
}

func newDeliverMetrics(reg prometheus.Registerer) *deliverMetrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &deliverMetrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatcher_notifications_total",
			Help: "Delivery attempts by channel, outcome (sent, retry, failed) and error class.",
		}, []string{"channel", "outcome", "error_class"}),
		notices: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatcher_notices_total",
			Help: "Coordinating-center notices raised for targets unreachable on every channel.",
		}),
		undeliverable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatcher_undeliverable_total",
			Help: "Coordinating-center notices that failed on a channel past their retry horizon.",
		}),
		deadIntents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatcher_intents_dead_lettered_total",
			Help: "Intents that could not be read or queued for delivery, written to the dead-letter topic.",
		}),
		receiptFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatcher_sms_receipt_failures_total",
			Help: "Twilio status callbacks that could not be recorded (answered 500); the receipt check handles them later.",
		}),
		corruptJobs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatcher_delivery_jobs_corrupt_total",
			Help: "Claims of the delivery queue that found a member that is not a job; it is parked a day ahead and reported again then.",
		}),
	}
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "dispatcher_notification_latency_seconds",
		Help: "From the event's occurred_at to the provider accepting the notification, by channel and severity.",
		// 50 ms to about 55 min.
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 17),
	}, []string{"channel", "severity"})
	reg.MustRegister(m.notifications, m.notices, m.undeliverable, m.deadIntents, m.receiptFailures, m.corruptJobs, m.latency)
	m.lag = newConsumerLag(reg)
	m.stallRejoins = newStallRejoins(reg).WithLabelValues("deliver")
	m.handoffs = newHandoffMetrics(reg)
	m.reg = reg
	return m
}

// sent counts a send the provider accepted and, given the intent sent,
// observes its latency from the event (when the intent carries the
// event's time).
func (m *deliverMetrics) sent(r Result, sent ...Intent) {
	m.outcome(r)
	for _, in := range sent {
		if in.OccurredAt.IsZero() {
			continue
		}
		sev := in.Severity
		if sev == "" {
			sev = "none"
		}
		m.latency.WithLabelValues(r.Channel, sev).Observe(max(float64(r.LatencyMS)/1000, 0))
	}
}

func (m *deliverMetrics) outcome(r Result) {
	m.notifications.WithLabelValues(r.Channel, r.Outcome, r.ErrorClass).Inc()
}
