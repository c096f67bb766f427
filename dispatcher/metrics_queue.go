package dispatcher

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// scrapeTimeout bounds the Redis reads a scrape makes: a slow or absent
// Redis leaves the series out of that scrape instead of stalling it.
const scrapeTimeout = 2 * time.Second

var (
	queueDepthDesc = prometheus.NewDesc("dispatcher_delivery_queue_depth",
		"Delivery jobs in the Redis queue of a channel (due, leased or scheduled for a retry).", []string{"channel"}, nil)
	queueOldestDesc = prometheus.NewDesc("dispatcher_delivery_queue_oldest_seconds",
		"How long the oldest due job of a channel has been waiting to be claimed (0 when none is due).", []string{"channel"}, nil)
)

// queueCollector reads the delivery queue (deliver:queue:<channel>) at
// scrape time. The queue is shared by every deliver instance, so each
// reports the same values: aggregate across instances with max, not sum.
type queueCollector struct {
	q     *jobQueue
	chans []string
	now   func() time.Time
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- queueOldestDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	now := c.now()
	for _, name := range c.chans {
		set := c.q.set(name)
		n, err := set.card(ctx, c.q.rdb)
		if err != nil {
			return
		}
		oldest, err := set.rangeByScore(ctx, c.q.rdb, "-inf", formatMS(now), 1)
		if err != nil {
			return
		}
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(n), name)
		age := 0.0
		if len(oldest) > 0 {
			age = queueAge(now, time.UnixMilli(int64(oldest[0].Score)))
		}
		ch <- prometheus.MustNewConstMetric(queueOldestDesc, prometheus.GaugeValue, age, name)
	}
}

// queueAge is how long a due job has waited. Critical jobs made due are
// scored critAhead early (so they are claimed first): an age past most of
// critAhead is such a job's, and critAhead is taken off. (A non-critical
// job would only wait that long after the stale-queue alert fired hours
// before.)
func queueAge(now, score time.Time) float64 {
	age := now.Sub(score)
	if age > critAhead-time.Hour {
		age -= critAhead
	}
	return max(age.Seconds(), 0)
}

func formatMS(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// registerQueueMetrics exposes the queue depth of every configured
// channel while the stage runs; the returned func withdraws it.
func (d *Deliverer) registerQueueMetrics() (unregister func()) {
	reg := d.metrics.reg
	if reg == nil {
		return func() {}
	}
	names := make([]string, 0, len(d.chans))
	for n := range d.chans {
		names = append(names, n)
	}
	sort.Strings(names)
	c := &queueCollector{q: d.queue, chans: names, now: d.now}
	if err := reg.Register(c); err != nil {
		d.log.WithError(err).Warn("delivery queue metrics not registered")
		return func() {}
	}
	return func() { reg.Unregister(c) }
}
