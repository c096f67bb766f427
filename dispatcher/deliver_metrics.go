package dispatcher

import "github.com/prometheus/client_golang/prometheus"

// deliverMetrics count delivery outcomes. Labels carry channels, outcomes
// and error classes only: never a case, a contact or an address.
type deliverMetrics struct {
	notifications *prometheus.CounterVec
	notices       prometheus.Counter
	undeliverable prometheus.Counter
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
	}
	reg.MustRegister(m.notifications, m.notices, m.undeliverable)
	return m
}

func (m *deliverMetrics) sent(r Result) { m.outcome(r) }

func (m *deliverMetrics) outcome(r Result) {
	m.notifications.WithLabelValues(r.Channel, r.Outcome, r.ErrorClass).Inc()
}
