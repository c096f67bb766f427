package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// committedIntents sums the deliver group's committed offsets.
func committedIntents(t *testing.T, brokers []string, group string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...)}
	resp, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{TopicIntents: {0, 1}}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	var n int64
	for _, p := range resp.Topics[TopicIntents] {
		n += max(p.CommittedOffset, 0)
	}
	return n
}

// Redis is down when intents arrive: they cannot be queued, so their
// offsets are not committed and the stage reports not ready; it keeps
// running, and once Redis is back the intents are queued, committed and
// sent. An offset committed before its jobs were durable would lose them.
func TestDeliverCommitsOnlyDurablyQueuedIntents(t *testing.T) {
	_, brokers := testenv.StartKafka(t, 2, TopicIntents, TopicResults)
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	w := NewWriter(brokers, quietLog())
	t.Cleanup(func() { _ = w.Close() })
	e := &decideEnv{d: &Decider{Engine: exampleEngine(t), Writer: w}, store: NewStore(rdb, time.Hour), brokers: brokers}
	p := startProviders(t)
	d := newDeliverer(t, e, p)
	d.cfg.Batch = Backoff{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond}
	srv.Stop()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	writeIntents(t, w, intentFor("outage-1", "gc-cr-guardia", "sms", true), intentFor("outage-2", "gc-cr-sala", "sms", false))
	eventually(t, "the stage to report its queue failing", func() bool { return d.Ready() != nil })
	if n := committedIntents(t, brokers, d.cfg.GroupID); n != 0 {
		t.Fatalf("%d intent offsets committed while Redis was down: those intents would be lost", n)
	}
	select {
	case err := <-done:
		t.Fatalf("the stage stopped during the outage: %v", err)
	default:
	}
	srv.Restart(t)
	eventually(t, "both SMS to be sent after Redis came back", func() bool { return len(p.twilio.Messages()) == 2 })
	eventually(t, "both offsets committed", func() bool { return committedIntents(t, brokers, d.cfg.GroupID) == 2 })
	eventually(t, "the stage to be ready again", func() bool { return d.Ready() == nil })
}
