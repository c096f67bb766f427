package webhook

import (
	"time"

	"github.com/viogen-alerts/dispatcher/channels"
)

// Payload is the JSON body of a delivery. It holds no contact data: only
// references and the rendered (PII-free) text.
type Payload struct {
	ID       string    `json:"id"`
	AlertID  string    `json:"alert_id"`
	CaseRef  string    `json:"case_ref"`
	Severity string    `json:"severity"`
	Critical bool      `json:"critical"`
	Subject  string    `json:"subject"`
	Body     string    `json:"body"`
	SentAt   time.Time `json:"sent_at"`
}

// NewPayload builds the payload of m sent at now.
func NewPayload(m channels.Message, now time.Time) Payload {
	return Payload{
		ID:       m.ID,
		AlertID:  m.AlertID,
		CaseRef:  m.CaseRef,
		Severity: m.Severity,
		Critical: m.Critical,
		Subject:  m.Subject,
		Body:     m.Body,
		SentAt:   now.UTC(),
	}
}
