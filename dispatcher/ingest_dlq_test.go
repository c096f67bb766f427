package dispatcher

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// bigBroker is a kfake cluster that takes produce batches up to 4 MB (a
// real cluster's upstream topics may allow more than our writer sends),
// with the upstream topics seeded and the DLQ topic limited to
// dlqMaxBytes per batch (0 = the broker's limit).
func bigBroker(t *testing.T, dlqMaxBytes int) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, TopicCaseEvents, TopicInternal),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": "4000000"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	topic := kafka.TopicConfig{Topic: TopicDLQ, NumPartitions: 2, ReplicationFactor: 1}
	if dlqMaxBytes > 0 {
		topic.ConfigEntries = []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(dlqMaxBytes)}}
	}
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr}).CreateTopics(context.Background(),
		&kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{topic}})
	if err != nil || resp.Errors[TopicDLQ] != nil {
		t.Fatalf("create %s: %v %v", TopicDLQ, err, resp)
	}
	return brokers
}

// readTopic reads n messages of topic from the start.
func readTopic(ctx context.Context, t *testing.T, brokers []string, topic string, n int) []kafka.Message {
	t.Helper()
	r := newTopicReader(t, brokers, topic)
	defer r.Close()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read %s after %d of %d: %v", topic, len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}

func headers(m kafka.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[string(x.Key)] = string(x.Value)
	}
	return h
}

func normalEvents(t *testing.T, prefix string, n int) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for i := range n {
		e := ev(fmt.Sprintf("%s-%02d", prefix, i), event.CaseOpened, fmt.Sprintf("C-%s%02d", prefix, i), 1, event.Alto)
		b, err := event.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, kafka.Message{Topic: TopicCaseEvents, Key: []byte(e.CaseID), Value: b})
	}
	return out
}

// TestIngestOversizedRecordsAreDeadLetteredBounded: a 1.5 MB upstream
// record (over the writer's 1,000,000-byte BatchBytes) and a 300 kB one
// (within it, but over the DLQ topic's 200 kB max.message.bytes, so the
// broker refuses it) sit between normal events. Neither stalls ingest:
// every normal event reaches the next stage, both are dead-lettered as
// bounded copies (first 64 KiB, original size, SHA-256 of the original,
// truncated, reason, original key), and all offsets are committed.
func TestIngestOversizedRecordsAreDeadLetteredBounded(t *testing.T) {
	brokers := bigBroker(t, 200_000)
	store, _ := newTestStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	big := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + (seed+byte(i*7))%26
		}
		return append(append([]byte(`{"id":"`), b[:n-10]...), `"}`...)
	}
	huge, large := big(1_500_000, 1), big(300_000, 2)
	msgs := normalEvents(t, "OA", 5)
	msgs = append(msgs, kafka.Message{Topic: TopicCaseEvents, Key: []byte("C-HUGE-1"), Value: huge,
		Headers: []kafka.Header{{Key: "producer", Value: []byte("test")}}})
	msgs = append(msgs, normalEvents(t, "OB", 5)...)
	msgs = append(msgs, kafka.Message{Topic: TopicCaseEvents, Key: []byte("C-LARGE-1"), Value: large})
	msgs = append(msgs, normalEvents(t, "OC", 5)...)
	pw := &kafka.Writer{Addr: kafka.TCP(brokers...), Balancer: &kafka.CRC32Balancer{}, BatchBytes: 4_000_000,
		BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer pw.Close()
	for _, m := range msgs { // one by one: keeps upstream order across partitions irrelevant
		if err := pw.WriteMessages(ctx, m); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}

	rec := newRecorder()
	logs := providertest.CaptureLog()
	w := NewWriter(brokers, quietLog())
	defer w.Close()
	in := NewIngest(IngestConfig{Brokers: brokers, GroupID: "oversize", Backoff: Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}},
		store, rec, w, logs.Logger, NewStats(nil))
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- in.Run(rctx) }()

	waitFor(t, ctx, func() bool { return rec.distinct() == 15 })
	waitFor(t, ctx, func() bool { return committed(ctx, t, brokers, "oversize") == int64(len(msgs)) })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	got := map[string]kafka.Message{}
	for _, m := range readTopic(ctx, t, brokers, TopicDLQ, 2) {
		got[string(m.Key)] = m
	}
	for key, orig := range map[string][]byte{"C-HUGE-1": huge, "C-LARGE-1": large} {
		m, ok := got[key]
		if !ok {
			t.Errorf("no dead letter with the original key %s (keys: %v)", key, keysOf(got))
			continue
		}
		h := headers(m)
		sum := sha256.Sum256(orig)
		if h[HeaderTruncated] != "true" || h[HeaderOriginalSize] != strconv.Itoa(len(orig)) || h[HeaderSHA256] != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: headers %v, want truncated, size %d, sha256 %x", key, h, len(orig), sum)
		}
		if !strings.HasPrefix(h[HeaderReason], "$: message is") || h[HeaderSourceTopic] != TopicCaseEvents || h[HeaderSourceOffset] == "" {
			t.Errorf("%s: reason/source headers %v", key, h)
		}
		if len(m.Value) != deadLetterKeep || !bytes.Equal(m.Value, orig[:deadLetterKeep]) {
			t.Errorf("%s: value is %d bytes, want the first %d of the original", key, len(m.Value), deadLetterKeep)
		}
		if key == "C-HUGE-1" && h["producer"] != "test" {
			t.Errorf("%s: original headers lost: %v", key, h)
		}
	}
	if !strings.Contains(logs.String(), `"truncated":true`) {
		t.Errorf("the dead-letter log does not say truncated:\n%s", logs.String())
	}
}

func keysOf(m map[string]kafka.Message) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestIngestDeadLetterKeepsOriginalKey: a malformed record is
// dead-lettered whole, with its original key, value and headers.
func TestIngestDeadLetterKeepsOriginalKey(t *testing.T) {
	_, brokers := testenv.StartKafka(t, 3, TopicCaseEvents, TopicInternal, TopicDLQ)
	store, _ := newTestStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := NewWriter(brokers, quietLog())
	defer w.Close()
	bad := []byte(`{"id":"k-1","type":"case.exploded"}`)
	msgs := append(normalEvents(t, "K", 2), kafka.Message{Topic: TopicCaseEvents, Key: []byte("C-KEY-0007"), Value: bad,
		Headers: []kafka.Header{{Key: "trace", Value: []byte("t-1")}}})
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	in := NewIngest(IngestConfig{Brokers: brokers, GroupID: "dlqkey"}, store, rec, NewWriter(brokers, quietLog()), quietLog(), NewStats(nil))
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- in.Run(rctx) }()
	waitFor(t, ctx, func() bool { return committed(ctx, t, brokers, "dlqkey") == 3 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m := readTopic(ctx, t, brokers, TopicDLQ, 1)[0]
	h := headers(m)
	if string(m.Key) != "C-KEY-0007" {
		t.Errorf("dead letter key %q, want the original C-KEY-0007", m.Key)
	}
	if !bytes.Equal(m.Value, bad) || h["trace"] != "t-1" || h[HeaderTruncated] != "" {
		t.Errorf("dead letter %s %v, want the original bytes and headers, not truncated", m.Value, h)
	}
	if rec.distinct() != 2 {
		t.Errorf("%d normal events reached the next stage, want 2", rec.distinct())
	}
}
