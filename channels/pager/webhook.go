package pager

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// PagerDuty Webhooks v3: a webhook subscription POSTs one JSON event per
// request, signed in X-PagerDuty-Signature as "v1=<hex HMAC-SHA256 of the
// raw body, keyed with the subscription's secret>". While a secret is
// being rotated the header carries several signatures, comma-separated:
// one matching is enough.
const (
	SignatureHeader = "X-PagerDuty-Signature"
	// MaxWebhookBytes bounds a webhook body; real ones are a few KB.
	MaxWebhookBytes = 1 << 20
	// EventIncidentAcknowledged is the v3 event type of an acknowledgement.
	EventIncidentAcknowledged = "incident.acknowledged"
)

// ErrBadSignature means a webhook was not signed with our secret.
var ErrBadSignature = errors.New("pager: bad or missing PagerDuty webhook signature")

// VerifyWebhook checks header (the X-PagerDuty-Signature value) against
// body, the raw request body, in constant time per signature. An empty
// secret verifies nothing.
func VerifyWebhook(secret, header string, body []byte) error {
	if secret == "" || header == "" {
		return ErrBadSignature
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Split(header, ",") {
		hexSig, ok := strings.CutPrefix(strings.TrimSpace(sig), "v1=")
		if !ok {
			continue
		}
		got, err := hex.DecodeString(hexSig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrBadSignature
}

// SignWebhook is the header value PagerDuty would send for body (tests,
// and operators checking a secret by hand).
func SignWebhook(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// WebhookEvent is the part of a v3 webhook the dispatcher reads. The
// agent's and assignees' names and e-mails are deliberately not decoded:
// they are personal data and have no use here.
type WebhookEvent struct {
	ID           string // the event id (opaque)
	EventType    string // e.g. "incident.acknowledged"
	ResourceType string // "incident"
	// IncidentKey is the incident's key: for an incident opened through
	// the Events API v2 it is the dedup_key it was triggered with, which
	// for us is the alert id.
	IncidentKey string
	IncidentID  string // PagerDuty's own incident id (opaque)
	AgentID     string // the PagerDuty user (or integration) id that acted (opaque)
}

type webhookBody struct {
	Event struct {
		ID           string `json:"id"`
		EventType    string `json:"event_type"`
		ResourceType string `json:"resource_type"`
		Agent        *struct {
			ID string `json:"id"`
		} `json:"agent"`
		Data struct {
			ID          string `json:"id"`
			IncidentKey string `json:"incident_key"`
		} `json:"data"`
	} `json:"event"`
}

// ParseWebhook decodes a (verified) v3 webhook body.
func ParseWebhook(body []byte) (WebhookEvent, error) {
	var b webhookBody
	if err := json.Unmarshal(body, &b); err != nil {
		return WebhookEvent{}, fmt.Errorf("pager: decode webhook: %w", err)
	}
	if b.Event.EventType == "" {
		return WebhookEvent{}, errors.New("pager: webhook without event.event_type")
	}
	ev := WebhookEvent{ID: b.Event.ID, EventType: b.Event.EventType, ResourceType: b.Event.ResourceType,
		IncidentKey: b.Event.Data.IncidentKey, IncidentID: b.Event.Data.ID}
	if b.Event.Agent != nil {
		ev.AgentID = b.Event.Agent.ID
	}
	return ev, nil
}
