package dispatcher

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// With Redis down, a batch is retried with backoff: nothing is committed
// and nothing is dead-lettered; once Redis is back everything applies.
func TestIngestRedisDownIsRetriedNotLost(t *testing.T) {
	_, brokers := testenv.StartKafka(t, 2, TopicCaseEvents, TopicInternal, TopicDLQ)
	srv := testenv.StartRedis(t)
	store := NewStore(srv.Client(t), time.Hour)
	srv.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := NewWriter(brokers, quietLog())
	defer w.Close()
	var msgs []kafka.Message
	for i := range 50 {
		e := ev(fmt.Sprintf("f-%02d", i), event.CaseOpened, fmt.Sprintf("C-F%02d", i), 1, event.Alto)
		b, _ := event.Encode(e)
		msgs = append(msgs, kafka.Message{Topic: TopicCaseEvents, Key: []byte(e.CaseID), Value: b})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	rec := newRecorder()
	cfg := IngestConfig{Brokers: brokers, GroupID: "fault", Backoff: Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond, For: time.Minute}}
	in := NewIngest(cfg, store, rec, NewWriter(brokers, quietLog()), quietLog(), NewStats(nil))
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- in.Run(rctx) }()

	waitFor(t, ctx, func() bool { return !in.Ready() })
	time.Sleep(500 * time.Millisecond)
	if n := committed(ctx, t, brokers, "fault"); n != 0 {
		t.Fatalf("committed %d offsets while redis was down", n)
	}
	if n := rec.distinct(); n != 0 {
		t.Fatalf("next stage saw %d events while redis was down", n)
	}

	srv.Restart(t)
	waitFor(t, ctx, func() bool { return rec.distinct() == 50 })
	waitFor(t, ctx, func() bool { return committed(ctx, t, brokers, "fault") == 50 })
	if !in.Ready() {
		t.Error("not ready after recovery")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := topicSize(ctx, t, brokers, TopicDLQ); n != 0 {
		t.Fatalf("%d messages dead-lettered for a transient failure", n)
	}
}

// A batch that keeps failing far past Backoff.For does not stop the
// consumer: it keeps retrying, commits nothing and reports not-ready, and
// once Redis is back the batch is applied and committed.
func TestIngestNeverGivesUp(t *testing.T) {
	_, brokers := testenv.StartKafka(t, 1, TopicCaseEvents, TopicInternal, TopicDLQ)
	srv := testenv.StartRedis(t)
	store := NewStore(srv.Client(t), time.Hour)
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := NewWriter(brokers, quietLog())
	defer w.Close()
	b, _ := event.Encode(ev("g-1", event.CaseOpened, "C-G1", 1, event.Alto))
	if err := w.WriteMessages(ctx, kafka.Message{Topic: TopicCaseEvents, Key: []byte("C-G1"), Value: b}); err != nil {
		t.Fatal(err)
	}
	cfg := IngestConfig{Brokers: brokers, GroupID: "giveup", Backoff: Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond, For: 100 * time.Millisecond}}
	stats := NewStats(nil)
	rec := newRecorder()
	in := NewIngest(cfg, store, rec, NewWriter(brokers, quietLog()), quietLog(), stats)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- in.Run(rctx) }()

	// Failed attempts go on well past For.
	waitFor(t, ctx, func() bool { return counterValue(t, stats.Retries) >= 2 })
	select {
	case err := <-done:
		t.Fatalf("Run returned after %s of failures: %v", time.Since(start), err)
	default:
	}
	if time.Since(start) < 3*cfg.Backoff.For {
		t.Fatalf("2 attempts in %s: Run did not go on past For", time.Since(start))
	}
	if in.Ready() {
		t.Error("ready while the batch fails")
	}
	if n := committed(ctx, t, brokers, "giveup"); n != 0 {
		t.Fatalf("committed %d", n)
	}
	srv.Restart(t)
	waitFor(t, ctx, func() bool { return rec.distinct() == 1 && committed(ctx, t, brokers, "giveup") == 1 })
	waitFor(t, ctx, in.Ready)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// committed sums the committed offsets of group over the case-events topic.
func committed(ctx context.Context, t *testing.T, brokers []string, group string) int64 {
	t.Helper()
	c, closeClient := KafkaSecurity{}.Client(brokers, 0)
	defer closeClient()
	parts := partitions(ctx, t, brokers, TopicCaseEvents)
	resp, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{TopicCaseEvents: parts}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	var n int64
	for _, p := range resp.Topics[TopicCaseEvents] {
		if p.CommittedOffset > 0 {
			n += p.CommittedOffset
		}
	}
	return n
}

func partitions(ctx context.Context, t *testing.T, brokers []string, topic string) []int {
	t.Helper()
	c, closeClient := KafkaSecurity{}.Client(brokers, 0)
	defer closeClient()
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 {
		t.Fatalf("metadata %s: %v", topic, err)
	}
	var ps []int
	for _, p := range md.Topics[0].Partitions {
		ps = append(ps, p.ID)
	}
	return ps
}

// topicSize is the number of messages in topic (sum of end offsets).
func topicSize(ctx context.Context, t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	c, closeClient := KafkaSecurity{}.Client(brokers, 0)
	defer closeClient()
	req := map[string][]kafka.OffsetRequest{}
	for _, p := range partitions(ctx, t, brokers, topic) {
		req[topic] = append(req[topic], kafka.LastOffsetOf(p))
	}
	resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	var n int64
	for _, p := range resp.Topics[topic] {
		n += p.LastOffset
	}
	return n
}

// An event dated in the future (a skewed producer clock) is refused with
// its reason, as is a message keyed by something else than its case.
func TestIngestRefusesFutureEventsAndWrongKeys(t *testing.T) {
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	cfg := IngestConfig{Now: func() time.Time { return now }}
	cfg.defaults()
	in := &Ingest{cfg: cfg}
	msg := func(e event.Event, key string) kafka.Message {
		b, _ := event.Encode(e)
		return kafka.Message{Topic: TopicCaseEvents, Key: []byte(key), Value: b}
	}
	ok := ev("f1", event.CaseOpened, "C-FU", 1, event.Alto)
	ok.OccurredAt = now.Add(4 * time.Minute)
	if _, err := in.decode(msg(ok, "C-FU")); err != nil {
		t.Fatalf("4 minutes ahead is within the skew: %v", err)
	}
	late := ok
	late.OccurredAt = now.Add(time.Hour)
	if _, err := in.decode(msg(late, "C-FU")); err == nil || !strings.HasPrefix(err.Error(), "occurred_at: is more than 5m0s in the future") {
		t.Fatalf("future event: %v", err)
	}
	if _, err := in.decode(msg(ok, "C-OTHER")); err == nil || !strings.HasPrefix(err.Error(), "$key:") {
		t.Fatalf("wrong key: %v", err)
	}
}
