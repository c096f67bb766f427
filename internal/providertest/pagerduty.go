package providertest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
	"unicode/utf8"
)

// PagerDutyEvent is one event the PagerDuty fake accepted. It is decoded
// independently of the pager channel's types, so the fake checks them.
type PagerDutyEvent struct {
	RoutingKey  string            `json:"routing_key"`
	EventAction string            `json:"event_action"`
	DedupKey    string            `json:"dedup_key"`
	Payload     *PagerDutyPayload `json:"payload"`
	Raw         []byte            `json:"-"`
	Received    time.Time         `json:"-"`
}

// PagerDutyPayload is the payload of a trigger event.
type PagerDutyPayload struct {
	Summary  string `json:"summary"`
	Source   string `json:"source"`
	Severity string `json:"severity"`
}

// PagerDuty fakes the Events API v2 at POST /v2/enqueue.
type PagerDuty struct {
	Script
	http *httpFake
	rec  recorder[PagerDutyEvent]
}

// NewPagerDuty starts the fake. Any non-empty routing key is accepted
// (real ones are 32 characters); use FailFor(key, ...) to script one.
func NewPagerDuty(t testing.TB) *PagerDuty {
	t.Helper()
	f := &PagerDuty{}
	f.http = startHTTP(t, http.HandlerFunc(f.serve))
	return f
}

// URL is the base URL, for the pager channel's Config.URL.
func (f *PagerDuty) URL() string { return f.http.srv.URL }

// Events returns the accepted events, oldest first.
func (f *PagerDuty) Events() []PagerDutyEvent { return f.rec.all() }

// Wait returns the accepted events once there are at least n.
func (f *PagerDuty) Wait(ctx context.Context, n int) ([]PagerDutyEvent, error) {
	return f.rec.wait(ctx, n)
}

// Attempts counts every request, accepted or not.
func (f *PagerDuty) Attempts() int { return int(f.rec.attempts.Load()) }

// Reset forgets events, attempts and faults.
func (f *PagerDuty) Reset() { f.rec.reset(); f.ClearFaults() }

func (f *PagerDuty) serve(w http.ResponseWriter, r *http.Request) {
	f.rec.attempts.Add(1)
	if r.URL.Path != "/v2/enqueue" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 512<<10))
	var ev PagerDutyEvent
	if err != nil || json.Unmarshal(raw, &ev) != nil {
		pdInvalid(w, "Malformed JSON")
		return
	}
	if f.applyFault(w, r, ev.RoutingKey) {
		return
	}
	if msg := pdCheck(ev); msg != "" {
		pdInvalid(w, msg)
		return
	}
	if ev.DedupKey == "" {
		ev.DedupKey = randomHex(16)
	}
	ev.Raw, ev.Received = raw, time.Now()
	f.rec.add(ev)
	writeJSON(w, http.StatusAccepted, map[string]string{
		"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey,
	})
}

func (f *PagerDuty) applyFault(w http.ResponseWriter, r *http.Request, key string) bool {
	switch f.fault(key) {
	case RateLimited:
		if v := f.retryAfterValue(); v != "" {
			w.Header().Set("Retry-After", v)
		}
		writeJSON(w, http.StatusTooManyRequests, map[string]string{
			"status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later.",
		})
	case Rejected, Unsubscribed:
		pdInvalid(w, "Length of 'routing_key' is incorrect (should be 32 characters)")
	case ServerError:
		writeServerError(w)
	case Hang:
		f.http.hang(r)
		writeServerError(w)
	default:
		return false
	}
	return true
}

// pdCheck validates an event as the Events API does; "" means valid.
func pdCheck(ev PagerDutyEvent) string {
	switch {
	case ev.RoutingKey == "":
		return "'routing_key' is missing or blank"
	case ev.EventAction != "trigger" && ev.EventAction != "acknowledge" && ev.EventAction != "resolve":
		return "'event_action' is invalid (must be one of: trigger, acknowledge, resolve)"
	case ev.EventAction != "trigger":
		if ev.DedupKey == "" {
			return "'dedup_key' is missing or blank"
		}
		return ""
	case ev.Payload == nil:
		return "'payload' is missing or blank"
	case ev.Payload.Summary == "" || ev.Payload.Source == "":
		return "'payload.summary' and 'payload.source' are required"
	case utf8.RuneCountInString(ev.Payload.Summary) > 1024:
		return "'payload.summary' is longer than 1024 characters"
	}
	switch ev.Payload.Severity {
	case "critical", "error", "warning", "info":
		return ""
	}
	return "'payload.severity' is invalid (must be one of: critical, error, warning, info)"
}

func pdInvalid(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{
		"status": "invalid event", "message": "Event object is invalid", "errors": []string{msg},
	})
}
