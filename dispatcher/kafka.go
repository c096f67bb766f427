package dispatcher

import (
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

func kafkaMsg(topic, key string, value []byte) kafka.Message {
	return kafka.Message{Topic: topic, Key: []byte(key), Value: value}
}
