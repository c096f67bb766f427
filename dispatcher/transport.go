package dispatcher

import (
	"context"

	"github.com/segmentio/kafka-go"
)

// Sink is where the stages write their records: intents, internal timer
// and acknowledgement events, dead letters, delivery results. In production
// it is a *kafka.Writer built at the edge (cmd/dispatcher); the simulator
// (package sim) passes in-memory topics. A write that returns nil must be
// durable: the ingest commits its batch only after it.
type Sink interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Source is where a consuming stage reads its records: a kafka-go
// consumer-group Reader in production (built inside Ingest.Run and
// Deliverer.Run, which own the group's life cycle). Commit only what is
// durable: offsets committed are never read again.
type Source interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}
