package dispatcher

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// lagEvery is how often a consumer's lag is read from the broker.
const lagEvery = 5 * time.Second

// newConsumerLag is dispatcher_consumer_lag, shared by the consumers of
// one process (each reads its own topics).
func newConsumerLag(reg prometheus.Registerer) *prometheus.GaugeVec {
	return registerShared(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dispatcher_consumer_lag",
		Help: "Records not yet committed by the consumer group, by topic and partition (end offset - committed offset), read from the broker every few seconds.",
	}, []string{"topic", "partition"}))
}

// startLagWatch reads the lag of group on topics now and then every
// `every` until ctx ends or stop is called (which waits for it and removes
// its series). The lag is the group's, from the broker (end offsets
// against committed offsets), so it is per partition and keeps growing
// while a consumer is stuck; kafka-go's Reader.Stats().Lag is neither.
// A failing read leaves the last values; nil g does nothing.
// onLag, when not nil, is given the total lag after each read that worked.
func startLagWatch(ctx context.Context, sec KafkaSecurity, brokers []string, group string, topics []string, g *prometheus.GaugeVec, every time.Duration, onLag func(total int64)) (stop func()) {
	if g == nil || group == "" || len(brokers) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	c, closeClient := sec.Client(brokers, every)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			rctx, rcancel := context.WithTimeout(ctx, every)
			total, ok := readLag(rctx, c, group, topics, g)
			rcancel()
			if ok && onLag != nil {
				onLag(total)
			}
			t := time.NewTimer(every)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		closeClient()
		for _, topic := range topics {
			g.DeletePartialMatch(prometheus.Labels{"topic": topic})
		}
	}
}

// readLag sets g for every partition of topics and returns their sum;
// false when the broker did not answer.
func readLag(ctx context.Context, c *kafka.Client, group string, topics []string, g *prometheus.GaugeVec) (total int64, ok bool) {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return 0, false
	}
	parts := map[string][]int{}
	reqs := map[string][]kafka.OffsetRequest{}
	for _, t := range md.Topics {
		if t.Error != nil {
			continue
		}
		for _, p := range t.Partitions {
			parts[t.Name] = append(parts[t.Name], p.ID)
			reqs[t.Name] = append(reqs[t.Name], kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	if len(parts) == 0 {
		return 0, false
	}
	offs, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: reqs})
	if err != nil {
		return 0, false
	}
	committed, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: parts})
	if err != nil {
		return 0, false
	}
	if committed.Error != nil && !errors.Is(committed.Error, kafka.GroupIdNotFound) {
		return 0, false // (a group that never committed: everything is lag)
	}
	for topic, pos := range offs.Topics {
		done := map[int]int64{}
		for _, p := range committed.Topics[topic] {
			if p.Error == nil {
				done[p.Partition] = p.CommittedOffset
			}
		}
		for _, po := range pos {
			if po.Error != nil {
				continue
			}
			from, ok := done[po.Partition]
			if !ok || from < po.FirstOffset {
				from = po.FirstOffset // nothing committed (or expired): all that is there is to read
			}
			lag := max(po.LastOffset-from, 0)
			total += lag
			g.WithLabelValues(topic, strconv.Itoa(po.Partition)).Set(float64(lag))
		}
	}
	return total, true
}
