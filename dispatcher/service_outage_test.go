package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// signalStage records events and signals each one processed.
type signalStage struct {
	mu   sync.Mutex
	seen map[string]chan struct{}
}

func (s *signalStage) ch(id string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]chan struct{}{}
	}
	c, ok := s.seen[id]
	if !ok {
		c = make(chan struct{})
		s.seen[id] = c
	}
	return c
}

func (s *signalStage) Handle(_ context.Context, items []Item) error {
	for _, it := range items {
		c := s.ch(it.Event.ID)
		select {
		case <-c:
		default:
			close(c)
		}
	}
	return nil
}

// wait blocks until event id was processed, or fails after limit.
func (s *signalStage) wait(t *testing.T, id string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-s.ch(id):
		return time.Since(start)
	case <-time.After(limit):
		t.Fatalf("event %s not processed within %s", id, limit)
		return 0
	}
}

// publishEvent writes one case.opened event with a fresh transport (no
// metadata cached from an earlier broker).
func publishEvent(ctx context.Context, t *testing.T, brokers []string, id, caseID string) {
	t.Helper()
	b, err := event.Encode(ev(id, event.CaseOpened, caseID, 1, event.Alto))
	if err != nil {
		t.Fatal(err)
	}
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Balancer: &kafka.CRC32Balancer{}, BatchTimeout: time.Millisecond,
		RequiredAcks: kafka.RequireAll, Transport: tr}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Topic: TopicCaseEvents, Key: []byte(caseID), Value: b}); err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
}

func readyStatus(addr string) int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func waitReady(ctx context.Context, t *testing.T, addr string, want int) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, ctx, func() bool { return readyStatus(addr) == want })
	return time.Since(start)
}

// topicsExist reports whether all topics exist, asked with a fresh client.
func topicsExist(ctx context.Context, brokers []string, topics ...string) bool {
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	mctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	md, err := (&kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr}).Metadata(mctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil || len(md.Topics) != len(topics) {
		return false
	}
	for _, tp := range md.Topics {
		if tp.Error != nil || len(tp.Partitions) == 0 {
			return false
		}
	}
	return true
}

// TestServiceSurvivesKafkaOutage: the broker goes away for longer than
// the old give-up time; the service keeps running and answers /readyz
// 503; a new, empty broker comes up on the same port; the ingest
// recreates the topics, rejoins, processes a new event, and /readyz is 200
// again.
func TestServiceSurvivesKafkaOutage(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c1, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			c1.Close()
		}
	}()
	brokers := []string{fmt.Sprintf("127.0.0.1:%d", port)}
	rdb := testenv.StartRedis(t).Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	stage := &signalStage{}
	svc, err := NewService(Options{
		Ingest: IngestConfig{Brokers: brokers, GroupID: "outage", CreateTopics: AllTopics(2, 1),
			Backoff: Backoff{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond}, ProbeInterval: 100 * time.Millisecond,
			RejoinBackoff: 200 * time.Millisecond, PartitionWatch: 200 * time.Millisecond, OpTimeout: 2 * time.Second},
		Redis: rdb, Decide: stage, HTTPAddr: "127.0.0.1:0", Log: quietLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- svc.Run(rctx) }()
	running := func(when string) {
		t.Helper()
		select {
		case err := <-done:
			t.Fatalf("Run returned %s: %v", when, err)
		default:
		}
	}

	// The topics are created at start (the broker began empty).
	waitFor(t, ctx, func() bool { return topicsExist(ctx, brokers, TopicCaseEvents, TopicInternal, TopicDLQ) })
	publishEvent(ctx, t, brokers, "out-1", "C-OUT1")
	stage.wait(t, "out-1", 20*time.Second)
	waitReady(ctx, t, svc.HTTPAddr(), http.StatusOK)

	c1.Close()
	closed = true
	down := time.Now()
	toNotReady := waitReady(ctx, t, svc.HTTPAddr(), http.StatusServiceUnavailable)
	// Stay down past the old behaviour's exit (~10 s), checking all along.
	for time.Since(down) < 16*time.Second {
		running(fmt.Sprintf("%s into the outage", time.Since(down).Round(time.Millisecond)))
		if code := readyStatus(svc.HTTPAddr()); code != http.StatusServiceUnavailable {
			t.Fatalf("/readyz %d during the outage, want 503", code)
		}
		time.Sleep(250 * time.Millisecond) // the pace of the check, not an assertion
	}
	running("at the restart of the broker")

	c2, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
	if err != nil {
		t.Fatalf("restart the broker on port %d: %v", port, err)
	}
	defer c2.Close()
	up := time.Now()
	waitFor(t, ctx, func() bool { return topicsExist(ctx, brokers, TopicCaseEvents, TopicInternal, TopicDLQ) })
	topicsBack := time.Since(up)
	// Ready again with no traffic at all (a quiet topic gives no
	// successful fetch to clear the outage's fetch errors).
	waitReady(ctx, t, svc.HTTPAddr(), http.StatusOK)
	readyAgain := time.Since(up)
	publishEvent(ctx, t, brokers, "out-2", "C-OUT2")
	stage.wait(t, "out-2", 20*time.Second)
	processed := time.Since(up)
	if code := readyStatus(svc.HTTPAddr()); code != http.StatusOK {
		t.Errorf("/readyz %d after the event was processed", code)
	}
	running("after recovery")
	t.Logf("not ready %s after the broker closed; after restart: topics back in %s, ready in %s, new event processed %s after the restart",
		toNotReady.Round(time.Millisecond), topicsBack.Round(time.Millisecond), readyAgain.Round(time.Millisecond), processed.Round(time.Millisecond))

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel")
	}
}

// TestDeliverOnlyServiceDoesNotJoinDecideGroup: a deliver-only process
// (NoIngest) beside a decide process on the same broker never joins the
// `dispatcher` group, so it takes no case-event partitions: every event
// is processed promptly by the decide process, and the group has one
// member.
func TestDeliverOnlyServiceDoesNotJoinDecideGroup(t *testing.T) {
	_, brokers := testenv.StartKafka(t, 4, TopicCaseEvents, TopicInternal, TopicDLQ)
	rdb := testenv.StartRedis(t).Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	idle := func(ctx context.Context) error { <-ctx.Done(); return nil }

	deliverOnly, err := NewService(Options{Ingest: IngestConfig{Brokers: brokers}, Redis: rdb, NoIngest: true,
		Extra: []func(context.Context) error{idle}, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	stage := &signalStage{}
	decide, err := NewService(Options{Ingest: IngestConfig{Brokers: brokers}, Redis: rdb, Decide: stage, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, s := range []*Service{deliverOnly, decide} {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- s.Run(rctx) }()
	}

	// Events on every partition (20 cases spread by key).
	for i := range 20 {
		publishEvent(ctx, t, brokers, fmt.Sprintf("do-%02d", i), fmt.Sprintf("C-DO%02d", i))
	}
	for i := range 20 {
		stage.wait(t, fmt.Sprintf("do-%02d", i), 15*time.Second)
	}
	members := groupMembers(ctx, t, brokers, "dispatcher")
	if members != 1 {
		t.Errorf("group dispatcher has %d members, want 1 (the decide process only)", members)
	}
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func groupMembers(ctx context.Context, t *testing.T, brokers []string, group string) int {
	t.Helper()
	c, closeClient := KafkaSecurity{}.Client(brokers, 0)
	defer closeClient()
	resp, err := c.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		t.Fatalf("describe group %s: %v", group, err)
	}
	if len(resp.Groups) != 1 || resp.Groups[0].Error != nil && !errors.Is(resp.Groups[0].Error, kafka.GroupIdNotFound) {
		t.Fatalf("describe group %s: %+v", group, resp.Groups)
	}
	return len(resp.Groups[0].Members)
}
