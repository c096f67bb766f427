package dispatcher

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Outcomes recorded on the results topic.
const (
	OutcomeSent      = "sent"      // the provider accepted the message
	OutcomeRetry     = "retry"     // a retryable failure; another attempt is scheduled
	OutcomeFailed    = "failed"    // a permanent failure (or retries exhausted) on this channel
	OutcomeFallback  = "fallback"  // every planned channel failed: fallback channels are used
	OutcomeNotice    = "notice"    // the target was unreachable: the coordinating center is told
	OutcomeDelivered = "delivered" // provider receipt: delivered to the handset
	OutcomeUndeliv   = "undelivered"
	// OutcomeUnconfirmed: an SMS the provider accepted got no final
	// delivery receipt within DeliverConfig.ReceiptTimeout.
	OutcomeUnconfirmed = "unconfirmed"
	OutcomeAcked       = "escalation.acknowledged"
)

// Result is one audit record: who was told what, when, by which channel.
// It names the contact by id, never by address (LO 7/2021 disclosure log).
type Result struct {
	IntentID  string `json:"intent_id"`
	AlertID   string `json:"alert_id"`
	CaseRef   string `json:"case_ref"`
	Rule      string `json:"rule"`
	Kind      string `json:"kind"`
	Step      int    `json:"step"`
	Round     int    `json:"round"`
	AgencyID  string `json:"agency_id"`
	ContactID string `json:"contact_id"`
	Channel   string `json:"channel"`
	// Operator is the console operator of an acknowledgement, a note or
	// a silence.
	Operator string `json:"operator,omitempty"`
	// NoteID, NoteSHA256 and NoteLength describe an escalation.note (its
	// text stays out of the audit trail).
	NoteID     string `json:"note_id,omitempty"`
	NoteSHA256 string `json:"note_sha256,omitempty"`
	NoteLength int    `json:"note_length,omitempty"`
	// Silence is the silence of a silence.created or silence.ended.
	Silence    *SilenceRecord `json:"silence,omitempty"`
	Attempt    int            `json:"attempt"`
	Outcome    string         `json:"outcome"`
	ProviderID string         `json:"provider_id,omitempty"`
	ErrorClass string         `json:"error_class,omitempty"`
	ErrorCode  string         `json:"error_code,omitempty"`
	Error      string         `json:"error,omitempty"`
	At         time.Time      `json:"at"`
	// LatencyMS is from the event's occurred_at to the provider accepting.
	LatencyMS int64 `json:"latency_ms,omitempty"`
}

// latencyOf is a result's LatencyMS: from the intent's event to at, in
// whole milliseconds; 0 without either time. A sent-marker leaves it out
// when it is this (the reader holds the intent and the marker's time).
func latencyOf(in Intent, at time.Time) int64 {
	if in.OccurredAt.IsZero() || at.IsZero() {
		return 0
	}
	return at.Sub(in.OccurredAt).Milliseconds()
}

// resultFor is the result of a delivery of in by channel at at, kept to
// the millisecond (its sent-marker then carries no fraction of one).
func resultFor(in Intent, channel string, attempt int, outcome string, at time.Time) Result {
	return Result{
		IntentID: in.ID, AlertID: in.AlertID, CaseRef: in.CaseRef, Rule: in.Rule, Kind: in.Kind,
		Step: in.Step, Round: in.Round, AgencyID: in.AgencyID, ContactID: in.ContactID,
		Channel: channel, Attempt: attempt, Outcome: outcome, At: at.UTC().Truncate(time.Millisecond),
	}
}

func (r Result) message(topic string) (kafka.Message, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode result of %s: %w", r.IntentID, err)
	}
	return kafka.Message{Topic: topic, Key: []byte(r.CaseRef), Value: b}, nil
}
