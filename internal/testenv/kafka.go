package testenv

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// StartKafka runs a one-broker in-process Kafka-protocol cluster on a
// random loopback port with the given topics, closed when the test ends.
func StartKafka(tb testing.TB, partitions int32, topics ...string) (*kfake.Cluster, []string) {
	tb.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		tb.Fatalf("start kfake: %v", err)
	}
	tb.Cleanup(c.Close)
	return c, c.ListenAddrs()
}
