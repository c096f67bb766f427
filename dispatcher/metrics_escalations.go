package dispatcher

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// escScanLimit bounds how many open escalations one scrape reads.
const escScanLimit = 2000

var escOpenDesc = prometheus.NewDesc("dispatcher_escalations_open",
	"Open (unacknowledged) escalations by ladder step, read from Redis at scrape time (at most 2000, oldest first).",
	[]string{"step"}, nil)

// escalationsCollector counts open escalations by step at scrape time,
// reading at most escScanLimit of them (oldest first) through the store's
// own index, so it stays right whatever opens, advances or closes them.
// Every decide instance reports the same values: aggregate with max.
type escalationsCollector struct{ store *EscalationStore }

// NewEscalationsCollector exposes dispatcher_escalations_open{step}.
func NewEscalationsCollector(store *EscalationStore) prometheus.Collector {
	return &escalationsCollector{store: store}
}

func (c *escalationsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- escOpenDesc }

func (c *escalationsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	open, err := c.store.Open(ctx, escScanLimit)
	if err != nil {
		return
	}
	byStep := map[int]int{0: 0} // the series exists even when nothing is open
	for _, e := range open {
		if e.State == EscOpen {
			byStep[e.Step]++
		}
	}
	for step, n := range byStep {
		ch <- prometheus.MustNewConstMetric(escOpenDesc, prometheus.GaugeValue, float64(n), strconv.Itoa(step))
	}
}
