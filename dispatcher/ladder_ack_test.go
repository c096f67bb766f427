package dispatcher

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
)

// ackServer serves the real acknowledgement API of the pipeline.
func ackServer(t *testing.T, p *pipeline, twilioToken string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	srv.Start()
	t.Cleanup(srv.Close)
	api := &AckAPI{Rules: p.ladder.Rules, Store: p.esc, Log: quietLog(),
		Acks:        &Acknowledger{Store: p.esc, Writer: p.writer, Now: p.now},
		TwilioToken: twilioToken, InboundURL: srv.URL + "/v1/twilio/inbound"}
	api.Register(mux)
	return srv
}

func postAck(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Over HTTP with the example config's synthetic tokens: another agency's
// token is refused, the notified agency's stops the ladder.
func TestLadderStopsOnAPIAck(t *testing.T) {
	clock := newFakeNow(time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC))
	p := startPipeline(t, clock.Now)
	srv := ackServer(t, p, "")
	p.publish(t, ev("h1", event.CaseOpened, "C-LD4", 1, event.Medio), ev("h2", event.RiskAssessed, "C-LD4", 2, event.Extremo))
	e := waitEscalation(t, p, "C-LD4")
	url := srv.URL + "/v1/escalations/" + e.ID + "/ack"
	if code := postAck(t, url, ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code := postAck(t, url, "dev-token-pl-palma"); code != http.StatusNotFound {
		t.Fatalf("another agency's token: %d, want 404 (as an unknown id)", code)
	}
	if code := postAck(t, url, "dev-token-gc-ciudad-real"); code != http.StatusAccepted {
		t.Fatalf("notified agency: %d, want 202", code)
	}
	acked := waitState(t, p, e, EscAcked)
	if acked.AckedBy != "gc-ciudad-real" || acked.AckVia != "api" {
		t.Fatalf("acked: %+v", acked)
	}
	assertLadderStopped(t, p, clock, "C-LD4")
}

// An SMS reply "ACK <code>" from a notified contact's phone stops it.
func TestLadderStopsOnSMSReply(t *testing.T) {
	clock := newFakeNow(time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC))
	p := startPipeline(t, clock.Now)
	tw := providertest.NewTwilio(t, testSID, testToken)
	srv := ackServer(t, p, testToken)
	p.publish(t, ev("s1", event.CaseOpened, "C-LD5", 1, event.Medio), ev("s2", event.RiskAssessed, "C-LD5", 2, event.Extremo))
	e := waitEscalation(t, p, "C-LD5")
	// The code printed in the SMS intents is the escalation's.
	sms := p.intents.waitFor(t, "step 0", func(in Intent) bool { return in.CaseRef == "C-LD5" && in.AckCode != "" })
	if sms[0].AckCode != e.AckCode {
		t.Fatalf("intent code %q, escalation code %q", sms[0].AckCode, e.AckCode)
	}
	err := tw.SendInbound(context.Background(), srv.URL+"/v1/twilio/inbound", "+34600000011", "+34600000999", "ack "+strings.ToLower(e.AckCode))
	if err != nil {
		t.Fatal(err)
	}
	acked := waitState(t, p, e, EscAcked)
	if acked.AckVia != "sms" || acked.AckedBy != "gc-ciudad-real" {
		t.Fatalf("acked: %+v", acked)
	}
	assertLadderStopped(t, p, clock, "C-LD5")
}

func assertLadderStopped(t *testing.T, p *pipeline, clock *fakeNow, caseRef string) {
	t.Helper()
	clock.Add(2 * time.Hour)
	fireAll(t, p.timers)
	p.waitProcessed(t) // every timer event fired is handled: what it sent is on the topic
	for _, in := range readIntents(t, p.brokers) {
		if in.CaseRef == caseRef && in.Rule == "risk-rises-to-extremo" && (in.Step > 0 || in.Round > 0) {
			t.Fatalf("ladder went on after the acknowledgement: %+v", in)
		}
	}
}
