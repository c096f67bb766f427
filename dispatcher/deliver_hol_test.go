package dispatcher

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/internal/providertest"
)

// writeIntents publishes intents as the decide stage would.
func writeIntents(t *testing.T, w Sink, ins ...Intent) {
	t.Helper()
	msgs := make([]kafka.Message, len(ins))
	for i, in := range ins {
		b, err := in.Encode()
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = kafka.Message{Topic: TopicIntents, Key: []byte(in.CaseRef), Value: b}
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

func intentFor(id, contact, channel string, critical bool) Intent {
	in := testIntent(id)
	in.CaseRef = "C-HOL-" + id
	in.ContactID, in.Channels, in.Fallback, in.Critical = contact, []string{channel}, nil, critical
	return in
}

// While the SMS provider hangs, pages and e-mails written in the same
// window are delivered at once: a slow provider holds back only its own
// channel (issue 8, item 4). Every SMS hangs until the test ends, so the
// pages and e-mails can only have been delivered beside the hanging SMS.
func TestDeliverHangingSMSDoesNotDelayOtherChannels(t *testing.T) {
	e := newDeliverEnv(t)
	for _, n := range []string{"+34600000011", "+34600000012", "+34600000013"} {
		e.prov.twilio.FailFor(n, providertest.Hang)
	}
	d := newDeliverer(t, e.decideEnv, e.prov)
	d.cfg.SendTimeout = time.Minute // the hang outlasts the test
	runDeliverer(t, d)

	const n = 30
	var ins []Intent
	start := map[string]time.Time{}
	for i := range n {
		ins = append(ins,
			intentFor(fmt.Sprintf("hol-sms-%d", i), []string{"gc-cr-guardia", "gc-cr-sala", "gc-cr-mando"}[i%3], "sms", i%2 == 0),
			intentFor(fmt.Sprintf("hol-pager-%d", i), "gc-cr-guardia", "pager", i%2 == 0),
			intentFor(fmt.Sprintf("hol-email-%d", i), "gc-cr-mando", "email", false))
	}
	for _, in := range ins {
		start[in.ID] = time.Now()
	}
	writeIntents(t, e.d.Writer, ins...)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var delays []time.Duration
	seenPD, seenMail := 0, 0
	for seenPD < n || seenMail < n {
		if ctx.Err() != nil {
			t.Fatalf("only %d pages and %d e-mails of %d each arrived while SMS hung", seenPD, seenMail, n)
		}
		now := time.Now()
		pd, mail := len(e.prov.pd.Events()), len(e.prov.smtp.Messages())
		for range (pd - seenPD) + (mail - seenMail) {
			delays = append(delays, now.Sub(start[ins[0].ID]))
		}
		seenPD, seenMail = pd, mail
		time.Sleep(5 * time.Millisecond)
	}
	if got := len(e.prov.twilio.Messages()); got != 0 {
		t.Fatalf("%d SMS accepted: the provider was meant to hang throughout", got)
	}
	if a := e.prov.twilio.Attempts(); a == 0 {
		t.Fatal("no SMS was in flight: the test proves nothing")
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	t.Logf("SMS hanging (%d in flight); %d pages and e-mails delivered: p50 %v, p95 %v, max %v after publishing",
		e.prov.twilio.Attempts(), len(delays), delays[len(delays)/2], delays[len(delays)*95/100], delays[len(delays)-1])
}
