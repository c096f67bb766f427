package dispatcher

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/internal/providertest"
)

func testIntent(id string) Intent {
	return Intent{ID: id, Kind: KindAlert, AlertID: "a3f9c2d1e8b74a10", Rule: "risk-rises-to-alto", Template: "risk_rise",
		Severity: "error", CaseRef: "C-FIX", ContactID: "gc-cr-sala", AgencyID: "gc-ciudad-real", AgencyName: "Guardia Civil",
		Locale: "es", Channels: []string{"sms"}, Fallback: []string{"email"}, DecidedAt: time.Now(), OccurredAt: time.Now()}
}

func intentMsg(t *testing.T, in Intent) kafka.Message {
	b, err := in.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Value: b}
}

// The same intent twice in one batch, or in two workers at once, reaches
// the provider once.
func TestDeliverDuplicateIntentsSendOnce(t *testing.T) {
	e := newDeliverEnv(t)
	d := newDeliverer(t, e.decideEnv, e.prov)
	ctx := context.Background()
	m := intentMsg(t, testIntent("fix-dup-1"))
	if err := d.handleBatch(ctx, []kafka.Message{m, m}); err != nil {
		t.Fatal(err)
	}
	if n := len(e.prov.twilio.Messages()); n != 1 {
		t.Fatalf("one batch with the intent twice: %d SMS, want 1", n)
	}
	m2 := intentMsg(t, testIntent("fix-dup-2"))
	other := newDeliverer(t, e.decideEnv, e.prov)
	var wg sync.WaitGroup
	for _, w := range []*Deliverer{d, other, d, other} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.handleBatch(ctx, []kafka.Message{m2}) }()
	}
	wg.Wait()
	if n := len(e.prov.twilio.Messages()); n != 2 {
		t.Fatalf("four concurrent workers on one intent: %d SMS in all, want 2", n)
	}
}

// Kafka fails while the coordinating center's notice is written: the
// batch is retried, and the retry completes the notice.
func TestDeliverNoticeIsCompletedOnReplay(t *testing.T) {
	e := newDeliverEnv(t)
	e.prov.twilio.FailFor("+34600000012", providertest.Rejected)
	e.prov.smtp.FailFor("sala.gc-cr@example.org", providertest.Rejected)
	d := newDeliverer(t, e.decideEnv, e.prov)
	ctx := context.Background()
	m := intentMsg(t, testIntent("fix-notice-1"))
	good := d.writer
	dead := NewWriter([]string{"127.0.0.1:1"}, quietLog())
	dead.MaxAttempts, dead.WriteTimeout = 1, time.Second
	defer dead.Close()
	d.writer = dead
	if err := d.handleBatch(ctx, []kafka.Message{m}); err == nil {
		t.Fatal("want the batch to fail with Kafka down")
	}
	d.writer = good
	if err := d.handleBatch(ctx, []kafka.Message{m}); err != nil {
		t.Fatal(err)
	}
	notices := readIntents(t, e.brokers)
	var n int
	for _, in := range notices {
		if in.Kind == KindNotice && in.AgencyID == "ses-viogen" {
			n++
		}
	}
	if n == 0 {
		t.Fatal("the notice to the coordinating center was lost after a failed write")
	}
}
