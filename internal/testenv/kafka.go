package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// StartKafka runs a one-broker in-process Kafka-protocol cluster on a
// random loopback port with the given topics, closed when the test ends.
// It returns once the broker reports every topic with its partitions, so
// a first write never meets "unknown topic" (seen under load).
func StartKafka(tb testing.TB, partitions int32, topics ...string) (*kfake.Cluster, []string) {
	tb.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.ListenFn(listenUnique)}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		tb.Fatalf("start kfake: %v", err)
	}
	tb.Cleanup(c.Close)
	if err := waitTopics(c.ListenAddrs()[0], int(partitions), topics); err != nil {
		tb.Fatalf("kfake topics not ready: %v", err)
	}
	return c, c.ListenAddrs()
}

// waitTopics polls the broker's metadata until every topic has its
// partitions, for up to 10 s.
func waitTopics(addr string, partitions int, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := topicsReady(addr, partitions, topics)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func topicsReady(addr string, partitions int, topics []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	ps, err := conn.ReadPartitions(topics...)
	if err != nil {
		return err
	}
	if len(ps) < partitions*len(topics) {
		return errTopicsPending
	}
	return nil
}

type pendingErr struct{}

func (pendingErr) Error() string { return "topics have fewer partitions than seeded" }

var errTopicsPending error = pendingErr{}
