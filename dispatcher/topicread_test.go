package dispatcher

import (
	"context"
	"sync"
	"testing"

	"github.com/segmentio/kafka-go"
)

// topicReader reads every partition of a topic from its first offset
// with one partition reader each, without a consumer group: no join, no
// rebalance, nothing to stall when a loaded machine misses a heartbeat.
// It is how tests look at what a stage wrote.
type topicReader struct {
	msgs    chan kafka.Message
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	readers []*kafka.Reader
}

func newTopicReader(t testing.TB, brokers []string, topic string) *topicReader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, closeClient := KafkaSecurity{}.Client(brokers, 0)
	defer closeClient()
	meta, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(meta.Topics) != 1 || len(meta.Topics[0].Partitions) == 0 {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	rctx, stop := context.WithCancel(context.Background())
	tr := &topicReader{msgs: make(chan kafka.Message, 256), cancel: stop}
	for _, p := range meta.Topics[0].Partitions {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.ID, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 50e6})
		if err := r.SetOffset(kafka.FirstOffset); err != nil {
			t.Fatal(err)
		}
		tr.readers = append(tr.readers, r)
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for {
				m, err := r.ReadMessage(rctx)
				if err != nil {
					return
				}
				select {
				case tr.msgs <- m:
				case <-rctx.Done():
					return
				}
			}
		}()
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// FetchMessage returns the next message of any partition.
func (tr *topicReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	select {
	case m := <-tr.msgs:
		return m, nil
	case <-ctx.Done():
		return kafka.Message{}, ctx.Err()
	}
}

// Close stops the readers; safe to call twice.
func (tr *topicReader) Close() error {
	tr.cancel()
	tr.wg.Wait()
	for _, r := range tr.readers {
		_ = r.Close()
	}
	tr.readers = nil
	return nil
}
