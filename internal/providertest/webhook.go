package providertest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/channels/webhook"
)

// WebhookDelivery is one delivery the webhook fake accepted.
type WebhookDelivery struct {
	Path           string
	IdempotencyKey string
	Timestamp      string
	Signature      string
	Payload        WebhookPayload
	Body           []byte
	Received       time.Time
}

// WebhookPayload is the delivery body, decoded independently of the webhook
// channel's types, so the fake checks them.
type WebhookPayload struct {
	ID       string    `json:"id"`
	AlertID  string    `json:"alert_id"`
	CaseRef  string    `json:"case_ref"`
	Severity string    `json:"severity"`
	Critical bool      `json:"critical"`
	Subject  string    `json:"subject"`
	Body     string    `json:"body"`
	SentAt   time.Time `json:"sent_at"`
}

// Webhook is a receiver that checks signatures with webhook.Verify (401 when
// bad), records deliveries and answers 200 {"id": "wh_N"}.
type Webhook struct {
	Script
	secret []byte
	http   *httpFake
	rec    recorder[WebhookDelivery]
	seq    atomic.Int64
	tol    atomic.Int64 // time.Duration for webhook.Verify; 0 = its default
}

// NewWebhook starts a receiver accepting POSTs on any path.
func NewWebhook(t testing.TB, secret []byte) *Webhook {
	t.Helper()
	f := &Webhook{secret: append([]byte(nil), secret...)}
	f.http = startHTTP(t, http.HandlerFunc(f.serve))
	return f
}

// SetTolerance sets how old a timestamp the receiver accepts (0 = webhook.DefaultTolerance).
func (f *Webhook) SetTolerance(d time.Duration) { f.tol.Store(int64(d)) }

// URL is the base URL; deliver to URL()+"/any/path".
func (f *Webhook) URL() string { return f.http.srv.URL }

// Deliveries returns the accepted deliveries, oldest first.
func (f *Webhook) Deliveries() []WebhookDelivery { return f.rec.all() }

// Wait returns the accepted deliveries once there are at least n.
func (f *Webhook) Wait(ctx context.Context, n int) ([]WebhookDelivery, error) {
	return f.rec.wait(ctx, n)
}

// Attempts counts every request, accepted or not.
func (f *Webhook) Attempts() int { return int(f.rec.attempts.Load()) }

// Reset forgets deliveries, attempts and faults.
func (f *Webhook) Reset() { f.rec.reset(); f.ClearFaults() }

func (f *Webhook) serve(w http.ResponseWriter, r *http.Request) {
	f.rec.attempts.Add(1)
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST only"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body too large"})
		return
	}
	d := WebhookDelivery{
		Path: r.URL.Path, IdempotencyKey: r.Header.Get(webhook.HeaderIdempotencyKey),
		Timestamp: r.Header.Get(webhook.HeaderTimestamp), Signature: r.Header.Get(webhook.HeaderSignature),
		Body: body, Received: time.Now(),
	}
	if err := webhook.Verify(f.secret, d.Timestamp, body, d.Signature, time.Now(), time.Duration(f.tol.Load())); err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
		return
	}
	if f.applyFault(w, r) {
		return
	}
	if json.Unmarshal(body, &d.Payload) != nil || d.IdempotencyKey == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad payload or missing Idempotency-Key"})
		return
	}
	f.rec.add(d)
	writeJSON(w, http.StatusOK, map[string]string{"id": "wh_" + strconv.FormatInt(f.seq.Add(1), 10)})
}

func (f *Webhook) applyFault(w http.ResponseWriter, r *http.Request) bool {
	switch f.fault(r.URL.Path) {
	case RateLimited:
		if v := f.retryAfterValue(); v != "" {
			w.Header().Set("Retry-After", v)
		}
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "slow down"})
	case Rejected, Unsubscribed:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "rejected"})
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
