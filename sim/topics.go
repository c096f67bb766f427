package sim

import (
	"context"
	"sync"

	"github.com/segmentio/kafka-go"
)

// topics is the in-memory transport: a dispatcher.Sink that queues what
// is written per topic, in order, and hands it to the engine.
type topics struct {
	mu      sync.Mutex
	pending map[string][]kafka.Message
	offset  map[string]int64
	// seen, when set, is told of every message written (before it queues).
	seen func(kafka.Message)
}

func newTopics() *topics {
	return &topics{pending: map[string][]kafka.Message{}, offset: map[string]int64{}}
}

// WriteMessages implements dispatcher.Sink; it never fails.
func (t *topics) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range msgs {
		m.Offset = t.offset[m.Topic]
		t.offset[m.Topic]++
		if t.seen != nil {
			t.seen(m)
		}
		t.pending[m.Topic] = append(t.pending[m.Topic], m)
	}
	return nil
}

// take removes and returns what is queued on topic.
func (t *topics) take(topic string) []kafka.Message {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.pending[topic]
	delete(t.pending, topic)
	return out
}
