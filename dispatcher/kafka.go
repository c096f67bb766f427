package dispatcher

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"
)

// Topic names (overridable in Config).
const (
	TopicCaseEvents = "case-events"
	TopicDLQ        = "case-events.dlq"
	TopicInternal   = "case-events.internal"
	TopicIntents    = "notifications"
	TopicResults    = "notifications.results"
)

// newReader is a consumer-group reader tuned per docs/operations.md:
// short MaxWait so Close is quick, fast rebalances, explicit commits.
// It is plaintext: KafkaSecurity.newReader is the same with TLS and SASL.
func newReader(brokers []string, group string, topics []string, log logrus.FieldLogger) *kafka.Reader {
	return KafkaSecurity{}.newReader(brokers, group, topics, log)
}

func readerConfig(brokers []string, group string, topics []string, log logrus.FieldLogger) kafka.ReaderConfig {
	return kafka.ReaderConfig{
		Brokers:           brokers,
		GroupID:           group,
		GroupTopics:       topics,
		MinBytes:          1,
		MaxBytes:          10 << 20,
		MaxWait:           250 * time.Millisecond,
		HeartbeatInterval: 500 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
		RebalanceTimeout:  5 * time.Second,
		StartOffset:       kafka.FirstOffset,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    time.Second,
		ErrorLogger:       kafka.LoggerFunc(log.WithField("component", "kafka-reader").Warnf),
	}
}

// throttledLogger passes at most one message per every to log (with the
// count of those it dropped meanwhile): during a broker outage kafka-go
// reports every reconnection attempt.
func throttledLogger(log func(string, ...any), every time.Duration) kafka.LoggerFunc {
	var mu sync.Mutex
	var last time.Time
	dropped := 0
	return func(format string, args ...any) {
		mu.Lock()
		now := time.Now()
		if now.Sub(last) < every {
			dropped++
			mu.Unlock()
			return
		}
		n := dropped
		last, dropped = now, 0
		mu.Unlock()
		if n > 0 {
			format += fmt.Sprintf(" (%d similar messages dropped)", n)
		}
		log(format, args...)
	}
}

// NewWriter is a synchronous, fully acknowledged writer keyed by case id.
// CRC32Balancer matches librdkafka (kcat) so every producer of ours and
// theirs puts a case on the same partition. It is plaintext:
// KafkaSecurity.NewWriter is the same with TLS and SASL.
func NewWriter(brokers []string, log logrus.FieldLogger) *kafka.Writer {
	return KafkaSecurity{}.NewWriter(brokers, log)
}

func newWriter(brokers []string, log logrus.FieldLogger) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Balancer:     &kafka.CRC32Balancer{},
		RequiredAcks: kafka.RequireAll,
		// Every caller writes a whole batch in one call (a stage's batch,
		// the finisher's results), and kafka-go adds a call's messages to a
		// partition's batch under one lock: so the batch is sent as soon as
		// the call has added them, not after a linger. kafka-go allocates
		// BatchSize messages for every batch it opens (152 KB at 1,000 for
		// a write of one), so it is kept near the size of a call's share of
		// a partition; a larger call is sent as several requests.
		BatchTimeout: time.Microsecond,
		BatchBytes:   1_000_000,
		BatchSize:    100,
		MaxAttempts:  3,
		WriteTimeout: 10 * time.Second,
		ErrorLogger:  kafka.LoggerFunc(log.WithField("component", "kafka-writer").Warnf),
	}
}

// batchGap is how long a batch waits for one more message: messages the
// reader already holds are taken at once, and the batch ends at the first
// gap this long. Nothing lingers: a lone message is handled at once, and
// under load the batch is what arrived while the previous one was being
// handled, so batches grow with the load by themselves.
const batchGap = 100 * time.Microsecond

// fillBatch adds to batch what fetch delivers without a gap of batchGap,
// up to max messages.
func fillBatch(ctx context.Context, fetch func(context.Context) (kafka.Message, error), batch []kafka.Message, max int) []kafka.Message {
	for len(batch) < max {
		wctx, cancel := context.WithTimeout(ctx, batchGap)
		m, err := fetch(wctx)
		cancel()
		if err != nil {
			break // a gap (or ctx ended): handle what we have
		}
		batch = append(batch, m)
	}
	return batch
}

func kafkaMsg(topic, key string, value []byte) kafka.Message {
	return kafka.Message{Topic: topic, Key: []byte(key), Value: value}
}
