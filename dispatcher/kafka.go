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
		BatchTimeout: time.Millisecond,
		BatchBytes:   1_000_000,
		BatchSize:    1000,
		MaxAttempts:  3,
		WriteTimeout: 10 * time.Second,
		ErrorLogger:  kafka.LoggerFunc(log.WithField("component", "kafka-writer").Warnf),
	}
}

// batchGap is how long a batch that is not under load waits for one more
// message: messages the reader already holds are taken at once, and the
// batch ends at the first gap this long, so a lone message is handled
// without lingering.
const batchGap = 100 * time.Microsecond

// fillBatch adds to batch what fetch delivers, up to max messages and
// within limit of now; unless busy, it stops at the first gap of
// batchGap.
func fillBatch(ctx context.Context, fetch func(context.Context) (kafka.Message, error), batch []kafka.Message,
	max int, limit time.Duration, busy bool) []kafka.Message {
	deadline := time.Now().Add(limit)
	for len(batch) < max {
		wait := time.Until(deadline)
		if !busy {
			wait = min(wait, batchGap)
		}
		if wait <= 0 {
			break
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		m, err := fetch(wctx)
		cancel()
		if err != nil {
			break // the wait ran out (or ctx ended): handle what we have
		}
		batch = append(batch, m)
	}
	return batch
}

func kafkaMsg(topic, key string, value []byte) kafka.Message {
	return kafka.Message{Topic: topic, Key: []byte(key), Value: value}
}
