package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// TestEnsureTopicsCreatesMissingOnly: missing topics are created with the
// requested partitions; existing ones (whatever their partitions) count
// as success, and a second call changes nothing.
func TestEnsureTopicsCreatesMissingOnly(t *testing.T) {
	_, brokers := testenv.StartKafka(t, 1, TopicCaseEvents)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	specs := AllTopics(3, 1)
	created, err := ensureTopics(ctx, brokers, specs)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 4 {
		t.Errorf("created %v, want the 4 missing topics", created)
	}
	if err := EnsureTopics(ctx, brokers, specs); err != nil {
		t.Fatalf("second call: %v", err)
	}
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	md, err := (&kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr}).Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]int{}
	for _, tp := range md.Topics {
		parts[tp.Name] = len(tp.Partitions)
	}
	want := map[string]int{TopicCaseEvents: 1, TopicInternal: 3, TopicDLQ: 3, TopicIntents: 3, TopicResults: 3}
	for name, n := range want {
		if parts[name] != n {
			t.Errorf("topic %s has %d partitions, want %d", name, parts[name], n)
		}
	}
}
