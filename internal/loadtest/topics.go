package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// topicEnd sums the next offsets of every partition of topic: how many
// messages it holds (nothing is deleted during a run).
func topicEnd(ctx context.Context, brokers string, partitions int, topic string) (int64, error) {
	ends, err := offsets(ctx, brokers, partitions, topic, kafka.LastOffset)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range ends {
		n += e
	}
	return n, nil
}

func offsets(ctx context.Context, brokers string, partitions int, topic string, which int64) (map[int]int64, error) {
	c := &kafka.Client{Addr: kafka.TCP(brokers), Timeout: 10 * time.Second}
	req := make([]kafka.OffsetRequest, partitions)
	for p := range req {
		req[p] = kafka.OffsetRequest{Partition: p, Timestamp: which}
	}
	res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	out := map[int]int64{}
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets of %s[%d]: %w", topic, po.Partition, po.Error)
		}
		if which == kafka.FirstOffset {
			out[po.Partition] = po.FirstOffset
		} else {
			out[po.Partition] = po.LastOffset
		}
	}
	return out, nil
}

// firedTimer is one checkin.missed event the dispatcher's timers wrote.
type firedTimer struct {
	caseID  string
	due     time.Time
	written time.Time // the Kafka message timestamp: when the timer's event was produced
}

// readFired reads case-events.internal from the start and returns its
// check-in timer events (id timer:checkin:<case>:<due ms>).
func readFired(ctx context.Context, brokers string, partitions int) ([]firedTimer, error) {
	var out []firedTimer
	err := readTopic(ctx, brokers, partitions, "case-events.internal", func(m kafka.Message) {
		var ev struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m.Value, &ev) == nil {
			if rest, ok := strings.CutPrefix(ev.ID, "timer:checkin:"); ok {
				if k := strings.LastIndexByte(rest, ':'); k > 0 {
					ms, _ := strconv.ParseInt(rest[k+1:], 10, 64)
					out = append(out, firedTimer{caseID: rest[:k], due: time.UnixMilli(ms), written: m.Time})
				}
			}
		}
	})
	return out, err
}

// readTopic calls fn with every message of topic, from the first offset
// to the last as of the call.
func readTopic(ctx context.Context, brokers string, partitions int, topic string, fn func(kafka.Message)) error {
	ends, err := offsets(ctx, brokers, partitions, topic, kafka.LastOffset)
	if err != nil {
		return err
	}
	for p, end := range ends {
		if end == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{brokers}, Topic: topic, Partition: p,
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(kafka.FirstOffset); err != nil {
			_ = r.Close()
			return err
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				_ = r.Close()
				return fmt.Errorf("read %s[%d]: %w", topic, p, err)
			}
			fn(m)
			if m.Offset+1 >= end {
				break
			}
		}
		_ = r.Close()
	}
	return nil
}
