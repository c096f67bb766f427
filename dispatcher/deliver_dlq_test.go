package dispatcher

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// gatedSink fails every write to topic while closed; the rest goes through.
type gatedSink struct {
	Sink
	topic  string
	closed atomic.Bool
}

func (g *gatedSink) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	for _, m := range msgs {
		if g.closed.Load() && m.Topic == g.topic {
			return errors.New("dead-letter topic unavailable")
		}
	}
	return g.Sink.WriteMessages(ctx, msgs...)
}

// An intent the deliver stage cannot read (not JSON) or queue (no
// channels) was dropped with a log line. It is now dead-lettered with the
// reason and its source, counted, and only then committed. A dead-letter
// topic that cannot be written holds back the commit (the offsets stay
// for a replay), not the good alert of the same batch.
func TestDeliverDeadLettersUndeliverableIntents(t *testing.T) {
	_, brokers := testenv.StartKafka(t, 1, TopicIntents, TopicResults, TopicDLQ)
	e := newDecideEnvOn(t, brokers)
	prov := startProviders(t)
	d := newDeliverer(t, e, prov)
	d.cfg.Batch = Backoff{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond}
	gate := &gatedSink{Sink: d.writer, topic: TopicDLQ}
	gate.closed.Store(true)
	d.writer = gate
	runDeliverer(t, d)

	noChannels := testIntent("dlq-no-channels")
	noChannels.Channels = nil
	good := testIntent("dlq-good")
	// The good intent first: the reader may hand these over as one batch
	// or several, and a batch holding a dead letter stays uncommitted
	// while the topic fails (one partition: in order).
	msgs := []kafka.Message{intentMsg(t, good), {Value: []byte(`{"id":"dlq-garbled",`)}, intentMsg(t, noChannels)}
	for i := range msgs {
		msgs[i].Topic, msgs[i].Key = TopicIntents, []byte("C-FIX")
	}
	if err := e.d.Writer.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the good intent's SMS", func() bool { return len(prov.twilio.Messages()) == 1 })
	eventually(t, "the stage to report its dead-letter writes failing", func() bool {
		err := d.Ready()
		return err != nil && strings.Contains(err.Error(), "dead letters")
	})
	// At most the good intent's offset (if it came in a batch of its own).
	if n := committedIntents(t, brokers, d.cfg.GroupID); n > 1 {
		t.Fatalf("offsets committed up to %d before the undeliverable intents were dead-lettered", n)
	}

	gate.closed.Store(false)
	eventually(t, "the batch committed", func() bool { return committedIntents(t, brokers, d.cfg.GroupID) == 3 })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	dead := readTopic(ctx, t, brokers, TopicDLQ, 2)
	for i, want := range []string{"decode intent", "channels are required"} {
		h := headers(dead[i])
		if !strings.HasPrefix(h[HeaderReason], "undeliverable intent: ") || !strings.Contains(h[HeaderReason], want) {
			t.Errorf("dead letter %d: reason %q, want one about %q", i, h[HeaderReason], want)
		}
		if h[HeaderSourceTopic] != TopicIntents || h[HeaderSourceOffset] != []string{"1", "2"}[i] {
			t.Errorf("dead letter %d: source %s offset %s", i, h[HeaderSourceTopic], h[HeaderSourceOffset])
		}
		if string(dead[i].Value) != string(msgs[i+1].Value) {
			t.Errorf("dead letter %d holds %q, want the original bytes", i, dead[i].Value)
		}
	}
	if got := counterValue(t, d.metrics.deadIntents); got != 2 {
		t.Errorf("dispatcher_intents_dead_lettered_total = %v, want 2", got)
	}
	if len(prov.twilio.Messages()) != 1 {
		t.Errorf("%d SMS, want the good intent's one", len(prov.twilio.Messages()))
	}
}
