package dispatcher

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/channels/pager"
	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
)

const pdWebhookSecret = "whsec-synthetic-0000000000"

// pdServer serves the real acknowledgement API of the pipeline with the
// PagerDuty webhook on, and logs what it logs into the returned capture.
func pdServer(t *testing.T, p *pipeline) (*httptest.Server, *providertest.LogCapture) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	logs := providertest.CaptureLog()
	api := &AckAPI{Rules: p.ladder.Rules, Store: p.esc, Log: logs.Logger,
		Acks: &Acknowledger{Store: p.esc, Writer: p.writer, Now: p.now}, PagerDutySecret: pdWebhookSecret}
	api.Register(mux)
	return srv, logs
}

// deliverPipeline runs a deliverer on the pipeline's intents, sending to
// fake providers.
func deliverPipeline(t *testing.T, p *pipeline) *providers {
	t.Helper()
	prov := startProviders(t)
	d := newDeliverer(t, &decideEnv{brokers: p.brokers, store: p.store,
		d: &Decider{Engine: exampleEngine(t), Writer: p.writer}}, prov)
	runDeliverer(t, d)
	return prov
}

// pdAckBody is a synthetic PagerDuty v3 incident.acknowledged event for
// the incident with key incidentKey; the agent's name and e-mail are
// invented and must never reach a log line.
func pdAckBody(eventType, incidentKey string) []byte {
	return fmt.Appendf(nil, `{"event":{"id":"01SYNTHEVT%d","event_type":%q,"resource_type":"incident",`+
		`"occurred_at":"2026-03-10T09:05:00Z","agent":{"id":"PSYNUSR","type":"user_reference","summary":"Oncall Sintetico",`+
		`"email":"oncall.sintetico@example.org"},"data":{"id":"PSYNINC","type":"incident","number":7,"status":"acknowledged",`+
		`"incident_key":%q,"title":"Alerta","assignees":[{"id":"PSYNUSR","summary":"Oncall Sintetico"}]}}}`,
		time.Now().UnixNano(), eventType, incidentKey)
}

func postPD(t *testing.T, url string, body []byte, sig string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set(pager.SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// An acknowledgement from PagerDuty (a signed v3 incident.acknowledged
// whose incident key is the alert id) stops the ladder: no further step
// reaches the provider after the next timeout is fired. Our own
// "acknowledge" reaches PagerDuty with the alert's dedup_key, and its echo
// changes nothing. A bad signature is 401 and changes nothing.
func TestPagerDutyWebhookStopsLadder(t *testing.T) {
	clock := newFakeNow(time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC))
	p := startPipeline(t, clock.Now)
	prov := deliverPipeline(t, p)
	srv, logs := pdServer(t, p)
	url := srv.URL + "/v1/pagerduty/webhook"
	p.publish(t, ev("pd1", event.CaseOpened, "C-PD1", 1, event.Medio), ev("pd2", event.RiskAssessed, "C-PD1", 2, event.Extremo))
	e := waitEscalation(t, p, "C-PD1")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := prov.pd.Wait(ctx, 2); err != nil { // step 0 pages two on-calls
		t.Fatal(err)
	}

	body := pdAckBody(pager.EventIncidentAcknowledged, e.ID)
	for name, sig := range map[string]string{
		"no signature":   "",
		"another secret": pager.SignWebhook("whsec-other", body),
		"another body":   pager.SignWebhook(pdWebhookSecret, pdAckBody(pager.EventIncidentAcknowledged, "other")),
		"garbage":        "v1=00ff",
		"wrong version":  strings.Replace(pager.SignWebhook(pdWebhookSecret, body), "v1=", "v0=", 1),
	} {
		if code := postPD(t, url, body, sig); code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}
	// Unknown incidents and other event types: 2xx, ignored.
	for _, b := range [][]byte{pdAckBody(pager.EventIncidentAcknowledged, "not-ours-0001"),
		pdAckBody(pager.EventIncidentAcknowledged, ""), pdAckBody("incident.resolved", e.ID)} {
		if code := postPD(t, url, b, pager.SignWebhook(pdWebhookSecret, b)); code != http.StatusNoContent {
			t.Errorf("ignored event: %d, want 204", code)
		}
	}
	// The refused and ignored requests published nothing (they answered
	// before any write): the escalation is still open.
	p.waitProcessed(t)
	if got, err := p.esc.Get(context.Background(), e.CaseRef, e.ID); err != nil || got.State != EscOpen {
		t.Fatalf("after refused webhooks: %+v %v", got, err)
	}

	// Rotation: the old secret's signature first, ours second.
	sig := pager.SignWebhook("whsec-old", body) + "," + pager.SignWebhook(pdWebhookSecret, body)
	if code := postPD(t, url, body, sig); code != http.StatusAccepted {
		t.Fatalf("signed acknowledgement: %d, want 202", code)
	}
	acked := waitState(t, p, e, EscAcked)
	if acked.AckVia != "pagerduty" || !strings.Contains(acked.AckedBy, "gc-ciudad-real") {
		t.Fatalf("acked: %+v", acked)
	}
	// Our acknowledge reaches PagerDuty for each paged on-call, with the
	// alert id as dedup_key.
	acks := func() (n int) {
		for _, pe := range prov.pd.Events() {
			if pe.EventAction == "acknowledge" {
				n++
				if pe.DedupKey != e.ID {
					t.Errorf("acknowledge with dedup_key %q, want the alert id %q", pe.DedupKey, e.ID)
				}
			}
		}
		return n
	}
	waitFor(t, ctx, func() bool { return acks() >= 2 })
	// PagerDuty's echo of our acknowledge: ignored.
	if code := postPD(t, url, body, pager.SignWebhook(pdWebhookSecret, body)); code != http.StatusNoContent {
		t.Errorf("echo: %d, want 204", code)
	}
	assertLadderStopped(t, p, clock, "C-PD1")
	logs.AssertNotContains(t, "Sintetico", "oncall.sintetico@example.org", "PSYNUSR")
	if n := acks(); n != 2 {
		t.Errorf("%d acknowledges reached PagerDuty, want 2 (one per paged on-call)", n)
	}
}

// With no secret the route does not exist.
func TestPagerDutyWebhookOffWithoutSecret(t *testing.T) {
	mux := http.NewServeMux()
	(&AckAPI{}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	body := pdAckBody(pager.EventIncidentAcknowledged, "x")
	if code := postPD(t, srv.URL+"/v1/pagerduty/webhook", body, pager.SignWebhook("", body)); code != http.StatusNotFound {
		t.Fatalf("%d, want 404", code)
	}
}
