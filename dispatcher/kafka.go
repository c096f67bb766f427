package dispatcher

import (
	"context"
	"errors"
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

// batchGap is how long a batch under load waits for one more message.
// A message that comes alone is handled at once: the batch first takes
// what the reader already holds, and only when that was more than the one
// message (the load is up) does it go on taking what comes without a gap
// this long. So batches grow with the load by themselves, and nothing
// lingers at a low rate (a 100 µs timer costs 0.2 ms at the median and
// about 1 ms at p90 on a busy machine, twice per event: docs/benchmarks.md).
const batchGap = 100 * time.Microsecond

// readyTries is how many times takeReady asks for a held message before it
// decides there is none. kafka-go's FetchMessage, given an ended context,
// picks at random between it and a held message, so one ask misses a held
// message half the time; 20 asks miss it about once in a million batches,
// which only makes that batch one message shorter.
const readyTries = 20

// done is a context that has ended: fetching with it never waits.
var done = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// fillBatch adds to batch what fetch holds, then, if that was more than
// one message, what it delivers without a gap of batchGap; up to max.
func fillBatch(ctx context.Context, fetch func(context.Context) (kafka.Message, error), batch []kafka.Message, max int) []kafka.Message {
	batch = takeReady(fetch, batch, max)
	if len(batch) <= 1 {
		return batch // alone: handled at once
	}
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

// takeReady adds to batch the messages fetch holds already, up to max,
// without waiting for any.
func takeReady(fetch func(context.Context) (kafka.Message, error), batch []kafka.Message, max int) []kafka.Message {
	for misses := 0; misses < readyTries && len(batch) < max; {
		m, err := fetch(done)
		switch {
		case err == nil:
			batch, misses = append(batch, m), 0
		case errors.Is(err, context.Canceled):
			misses++
		default:
			return batch // a reader error ends the batch, as a gap does
		}
	}
	return batch
}

func kafkaMsg(topic, key string, value []byte) kafka.Message {
	return kafka.Message{Topic: topic, Key: []byte(key), Value: value}
}
