package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// committedIntents sums the deliver group's committed offsets.
func committedIntents(t *testing.T, brokers []string, group string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, closeClient := KafkaSecurity{}.Client(brokers, 0)
	defer closeClient()
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

// The broker goes away and comes back empty: the deliver stage keeps
// running and reports not ready meanwhile, creates its missing topics,
// rejoins its group, and delivers what is written afterwards.
func TestDeliverSurvivesBrokerComingBackEmpty(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c1, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(2, TopicIntents, TopicResults))
	if err != nil {
		t.Fatal(err)
	}
	brokers := c1.ListenAddrs()
	rdb := testenv.StartRedis(t).Client(t)
	w := NewWriter(brokers, quietLog())
	t.Cleanup(func() { _ = w.Close() })
	e := &decideEnv{d: &Decider{Engine: exampleEngine(t), Writer: w}, store: NewStore(rdb, time.Hour), brokers: brokers}
	p := startProviders(t)
	d := newDeliverer(t, e, p)
	d.cfg.Batch = Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	d.cfg.CreateTopics = AllTopics(2, 1)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	writeIntents(t, w, intentFor("broker-1", "gc-cr-guardia", "sms", true))
	eventually(t, "the first SMS", func() bool { return len(p.twilio.Messages()) == 1 })
	c1.Close()
	eventually(t, "not ready with the broker gone", func() bool { return d.Ready() != nil })
	c2, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
	if err != nil {
		t.Fatalf("restart the broker on port %d: %v", port, err)
	}
	t.Cleanup(c2.Close)
	select {
	case err := <-done:
		t.Fatalf("the stage stopped during the outage: %v", err)
	default:
	}
	eventually(t, "ready again", func() bool { return d.Ready() == nil })
	// The writer may need a few tries while the topics are being created.
	for i := 0; ; i++ {
		b, _ := intentFor("broker-2", "gc-cr-sala", "sms", false).Encode()
		if err := w.WriteMessages(context.Background(), kafka.Message{Topic: TopicIntents, Key: []byte("C-HOL-broker-2"), Value: b}); err == nil {
			break
		} else if i == 50 {
			t.Fatalf("write after the restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	eventually(t, "the SMS written after the restart", func() bool { return len(p.twilio.Messages()) == 2 })
}
