package dispatcher

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/internal/providertest"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// flakyStage fails its first `fails` calls, then blocks its next call
// until release is closed (telling started), then passes everything to
// rec.
type flakyStage struct {
	mu      sync.Mutex
	calls   int
	fails   int
	started chan struct{}
	release chan struct{}
	rec     *recorder
}

func (s *flakyStage) Handle(ctx context.Context, items []Item) error {
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.mu.Unlock()
	switch {
	case n <= s.fails:
		return errors.New("intents not written (injected)")
	case n == s.fails+1:
		close(s.started)
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.rec.Handle(ctx, items)
}

// TestIngestDoesNotCommitWhileNextStageFails: the decide stage's error is
// never swallowed. While the next stage fails (3 times), the group's
// committed offsets (read from the broker with OffsetFetch) stay where
// they were; once it succeeds, the batch is handed on and committed.
func TestIngestDoesNotCommitWhileNextStageFails(t *testing.T) {
	_, brokers := testenv.StartKafka(t, 2, TopicCaseEvents, TopicInternal, TopicDLQ)
	store, _ := newTestStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := NewWriter(brokers, quietLog())
	defer w.Close()
	msgs := normalEvents(t, "NF", 20)
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	stage := &flakyStage{fails: 3, started: make(chan struct{}), release: make(chan struct{}), rec: newRecorder()}
	cfg := IngestConfig{Brokers: brokers, GroupID: "nextfails", Backoff: Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}}
	in := NewIngest(cfg, store, stage, NewWriter(brokers, quietLog()), quietLog(), NewStats(nil))
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- in.Run(rctx) }()

	// Until the stage has failed 3 times and is called a 4th time, nothing
	// may be committed: a commit seen first is the defect.
	for waiting := true; waiting; {
		select {
		case <-stage.started:
			waiting = false
		case <-ctx.Done():
			t.Fatal("the failing batch was never retried (was its error swallowed?)")
		case <-time.After(20 * time.Millisecond):
			if n := committed(ctx, t, brokers, "nextfails"); n != 0 {
				t.Fatalf("%d offsets committed while the next stage was failing", n)
			}
		}
	}
	if n := committed(ctx, t, brokers, "nextfails"); n != 0 {
		t.Fatalf("%d offsets committed after 3 failures of the next stage", n)
	}
	if in.Ready() {
		t.Error("ready while the next stage fails")
	}
	close(stage.release)
	waitFor(t, ctx, func() bool { return committed(ctx, t, brokers, "nextfails") == int64(len(msgs)) })
	if n := stage.rec.distinct(); n != len(msgs) {
		t.Errorf("%d events passed on, want %d", n, len(msgs))
	}
	waitFor(t, ctx, in.Ready)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestIngestPersonalDataNeverInReasonOrLog: malformed events carrying
// synthetic personal data as unknown keys and as bad values are
// dead-lettered, and neither the DLQ reason header nor anything the ingest
// logs repeats it.
func TestIngestPersonalDataNeverInReasonOrLog(t *testing.T) {
	_, brokers := testenv.StartKafka(t, 2, TopicCaseEvents, TopicInternal, TopicDLQ)
	store, _ := newTestStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pii := []string{"+34600000001", "ana.garcia@example.org", "Maria Lopez Garcia", "12345678Z"}
	base := `"id":"p-%d","type":"risk.assessed","case_id":"C-PII","occurred_at":"2026-03-01T10:00:00Z","source":"viogen",` +
		`"jurisdiction":{"municipality":"13047","province":"13","region":"CM"},"responsible_unit":"gc-ciudad-real"`
	var msgs []kafka.Message
	add := func(v string) {
		msgs = append(msgs, kafka.Message{Topic: TopicCaseEvents, Key: []byte("C-PII"), Value: []byte(v)})
	}
	for _, s := range pii {
		q := `"` + s + `"`
		add(`{` + strings.Replace(base, "%d", "1", 1) + `,"risk":{"level":"alto"},` + q + `:` + q + `}`)                                 // unknown top-level key
		add(`{` + strings.Replace(base, "%d", "2", 1) + `,"risk":{"level":"alto",` + q + `:1}}`)                                         // unknown nested key
		add(`{` + strings.Replace(base, "%d", "3", 1) + `,"risk":{"level":` + q + `}}`)                                                  // bad level
		add(`{` + strings.Replace(strings.Replace(base, "%d", "4", 1), `"13047"`, q, 1) + `,"risk":{"level":"alto"}}`)                   // bad code
		add(`{` + strings.Replace(strings.Replace(base, "%d", "5", 1), `"gc-ciudad-real"`, `"-`+s+`"`, 1) + `,"risk":{"level":"alto"}}`) // bad id
		add(`{` + strings.Replace(strings.Replace(base, "%d", "6", 1), `"2026-03-01T10:00:00Z"`, q, 1) + `,"risk":{"level":"alto"}}`)
		add(`{"id":` + s + `}`)                                                       // invalid JSON around it
		add(`{` + q + `}`)                                                            // a key without a value
		add(`{"id":"p-9"} ` + s)                                                      // trailing data
		add(`{"id":"p-10","version":` + q + `}`)                                      // wrong type
		add(`{` + strings.Replace(base, "%d", "11", 1) + `,"risk":{"level":"alto"}}`) // a good event under a wrong key
		msgs[len(msgs)-1].Key = []byte(strings.ReplaceAll(s, " ", "-"))
	}
	w := NewWriter(brokers, quietLog())
	defer w.Close()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	logs := providertest.CaptureLog()
	in := NewIngest(IngestConfig{Brokers: brokers, GroupID: "pii"}, store, LogStage{Log: logs.Logger}, NewWriter(brokers, quietLog()), logs.Logger, NewStats(nil))
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- in.Run(rctx) }()
	waitFor(t, ctx, func() bool { return committed(ctx, t, brokers, "pii") == int64(len(msgs)) })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var secrets []string
	for _, s := range pii {
		secrets = append(secrets, s, strings.Trim(s, "+Z"))
		secrets = append(secrets, strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '@' || r == '.' })...)
	}
	secrets = slicesDeleteShort(secrets)
	dead := readTopic(ctx, t, brokers, TopicDLQ, len(msgs))
	for _, m := range dead {
		reason := headers(m)[HeaderReason]
		if reason == "" {
			t.Errorf("dead letter without a reason: %s", m.Value)
		}
		for _, s := range secrets {
			if strings.Contains(reason, s) {
				t.Errorf("DLQ reason %q repeats %q", reason, s)
			}
		}
	}
	if !strings.Contains(logs.String(), "malformed event dead-lettered") {
		t.Fatalf("ingest log not captured:\n%s", logs.String())
	}
	logs.AssertNotContains(t, secrets...)
}

func slicesDeleteShort(ss []string) []string {
	var out []string
	for _, s := range ss {
		if len(s) >= 4 && s != "example" {
			out = append(out, s)
		}
	}
	return append(out, "example.org")
}
