package dispatcher

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/internal/providertest"
)

var centerNumbers = []string{"+34600000001", "+34600000002", "+34600000003"}

// unreachableAlert is one alert to three contacts, SMS only, no fallback.
func unreachableAlert(alertID string) []Intent {
	var ins []Intent
	for _, c := range []string{"gc-cr-guardia", "gc-cr-sala", "gc-cr-mando"} {
		in := intentFor(alertID+"-"+c, c, "sms", true)
		in.AlertID, in.CaseRef = alertID, "C-"+alertID
		ins = append(ins, in)
	}
	return ins
}

func rejectGC(p *providers) {
	for _, n := range []string{"+34600000011", "+34600000012", "+34600000013"} {
		p.twilio.FailFor(n, providertest.Rejected)
	}
}

func smsTo(p *providers, to string) int {
	n := 0
	for _, m := range p.twilio.Messages() {
		if m.To == to {
			n++
		}
	}
	return n
}

// settled waits until every intent written so far was taken in by the
// deliver group and its queue is empty: a point where everything decided
// has been done, so counting now misses nothing.
func settled(t *testing.T, d *Deliverer, brokers []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, closeClient := KafkaSecurity{}.Client(brokers, 0)
	defer closeClient()
	for {
		end := topicSize(ctx, t, brokers, TopicIntents)
		resp, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: d.cfg.GroupID, Topics: map[string][]int{TopicIntents: {0, 1}}})
		var committed int64
		if err == nil {
			for _, p := range resp.Topics[TopicIntents] {
				committed += max(p.CommittedOffset, 0)
			}
		}
		if committed == end && queueSize(t, d) == 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("never settled: %d of %d intents committed, %d jobs queued", committed, end, queueSize(t, d))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Three targets of one alert unreachable: the coordinating center gets
// one notice about the alert per contact, not one per failed target
// (issue 8, item 8: 4,893 notices went out for 1,631 targets).
func TestDeliverOneNoticePerAlertAndContact(t *testing.T) {
	e := newDeliverEnv(t)
	rejectGC(e.prov)
	d := newDeliverer(t, e.decideEnv, e.prov)
	runDeliverer(t, d)
	writeIntents(t, e.d.Writer, unreachableAlert("a-notice-1")...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, n := range centerNumbers {
		for smsTo(e.prov, n) == 0 {
			if ctx.Err() != nil {
				t.Fatalf("no notice reached %s...", n[:6])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	settled(t, d, e.brokers)
	for _, n := range centerNumbers {
		if got := smsTo(e.prov, n); got != 1 {
			t.Errorf("center contact %s... got %d notice SMS for one alert, want 1", n[:6], got)
		}
	}
	if got := counterValue(t, d.metrics.notices); got != 3 {
		t.Errorf("notices metric %v, want 3 (one per unreachable target)", got)
	}
	for _, m := range e.prov.twilio.Messages() {
		checkPIIFree(t, "notice SMS", m.Body)
	}
}

// The center's own channels fail for a while (an outage): the notice is
// retried until it goes through, on every channel, permanent refusals
// included, rather than logged and forgotten.
func TestDeliverNoticeRetriedUntilDelivered(t *testing.T) {
	e := newDeliverEnv(t)
	rejectGC(e.prov)
	for _, n := range centerNumbers {
		e.prov.twilio.FailFor(n, providertest.Rejected)
	}
	e.prov.smtp.FailFor("sala.viogen@example.org", providertest.Rejected)
	e.prov.smtp.FailFor("jefatura.viogen@example.org", providertest.Rejected)
	d := newDeliverer(t, e.decideEnv, e.prov)
	runDeliverer(t, d)
	writeIntents(t, e.d.Writer, unreachableAlert("a-notice-2")...)
	// Several attempts fail on every channel of the center...
	readResults(t, e.brokers, func(rs []Result) bool {
		n := 0
		for _, r := range rs {
			if r.Kind == KindNotice && r.Outcome == OutcomeRetry && r.Attempt >= 3 {
				n++
			}
		}
		return n >= 3
	})
	// ...then the provider recovers, and the notice goes through.
	for _, n := range centerNumbers {
		e.prov.twilio.FailFor(n, providertest.None)
	}
	e.prov.smtp.ClearFaults()
	rs := readResults(t, e.brokers, func(rs []Result) bool {
		sent := map[string]bool{}
		for _, r := range rs {
			if r.Kind == KindNotice && r.Outcome == OutcomeSent {
				sent[r.ContactID+"/"+r.Channel] = true
			}
		}
		return len(sent) == 5 // 3 SMS + 2 e-mails of the center
	})
	for _, r := range rs {
		if r.Kind == KindNotice && r.Outcome == OutcomeFailed {
			t.Errorf("a notice was given up inside its horizon: %+v", r)
		}
	}
	if got := counterValue(t, d.metrics.undeliverable); got != 0 {
		t.Errorf("undeliverable %v, want 0", got)
	}
}

// Past its horizon a notice that still fails is declared undeliverable:
// counted, and logged at error level, loudly.
func TestDeliverNoticePastHorizonIsUndeliverable(t *testing.T) {
	e := newDeliverEnv(t)
	rejectGC(e.prov)
	for _, n := range centerNumbers {
		e.prov.twilio.FailFor(n, providertest.Rejected)
	}
	e.prov.smtp.FailFor("sala.viogen@example.org", providertest.Rejected)
	e.prov.smtp.FailFor("jefatura.viogen@example.org", providertest.Rejected)
	logs := providertest.CaptureLog()
	d := newDeliverer(t, e.decideEnv, e.prov)
	d.cfg.NoticeHorizon = 300 * time.Millisecond
	d.log = logs.Logger.WithField("component", "deliver")
	runDeliverer(t, d)
	writeIntents(t, e.d.Writer, unreachableAlert("a-notice-3")...)
	eventually(t, "the notices to be declared undeliverable", func() bool {
		return counterValue(t, d.metrics.undeliverable) >= 5
	})
	// The line is logged after the counter is incremented: wait for it too.
	eventually(t, "an UNDELIVERABLE line", func() bool { return strings.Contains(logs.String(), "UNDELIVERABLE") })
	if !strings.Contains(logs.String(), "UNDELIVERABLE") || !strings.Contains(logs.String(), `"level":"error"`) {
		t.Errorf("no error-level UNDELIVERABLE line:\n%s", logs.String())
	}
	for _, a := range addresses(e.d.Engine.Config()) {
		if strings.Contains(logs.String(), a) {
			t.Fatalf("an address reached the log")
		}
	}
}
