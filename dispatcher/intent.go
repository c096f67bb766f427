package dispatcher

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/templates"
)

// Intent kinds.
const (
	KindAlert  = "alert"  // a rule's alert to one target
	KindNotice = "notice" // the coordinating center told that a target was unreachable
	KindDigest = "digest" // a scheduled digest
)

// Intent is one decided notification: one target contact and its channel
// plan. It carries the contact id, never an address: the deliver stage
// looks addresses up in the configuration, so no phone number or email
// sits in a Kafka topic.
type Intent struct {
	ID         string      `json:"id"`
	Kind       string      `json:"kind"`
	AlertID    string      `json:"alert_id"`
	Rule       string      `json:"rule"`
	Template   string      `json:"template"`
	Severity   string      `json:"severity"`
	Critical   bool        `json:"critical,omitempty"`
	Unrouted   bool        `json:"unrouted,omitempty"`
	CaseRef    string      `json:"case_ref"`
	EventID    string      `json:"event_id"`
	EventType  event.Type  `json:"event_type"`
	Level      event.Level `json:"level,omitempty"`
	PrevLevel  event.Level `json:"prev_level,omitempty"`
	OccurredAt time.Time   `json:"occurred_at"`
	DecidedAt  time.Time   `json:"decided_at"`
	Step       int         `json:"step"`
	Round      int         `json:"round"`
	Deadline   time.Time   `json:"deadline,omitzero"`
	AckCode    string      `json:"ack_code,omitempty"`
	// Missed, MissedSince: periods a timer alert covers, since when.
	Missed      int       `json:"missed,omitempty"`
	MissedSince time.Time `json:"missed_since,omitzero"`

	AgencyID    string   `json:"agency_id"`
	AgencyName  string   `json:"agency_name"`
	OtherAgency string   `json:"other_agency,omitempty"`
	ContactID   string   `json:"contact_id"`
	Locale      string   `json:"locale"`
	Channels    []string `json:"channels"`
	Fallback    []string `json:"fallback,omitempty"`

	// PagerAction is "trigger" (default), "acknowledge" or "resolve".
	PagerAction string `json:"pager_action,omitempty"`

	// Digest lists the cases of a scheduled digest (KindDigest only).
	Digest []templates.DigestItem `json:"digest,omitempty"`
}

// IntentID is deterministic in the alert, the escalation step and round,
// and the contact, so a replayed decision yields the same intent and the
// deliver stage's sent-markers absorb it.
func IntentID(alertID string, step, round int, contactID string) string {
	h := sha256.Sum256([]byte(alertID + "\x00" + strconv.Itoa(step) + "\x00" + strconv.Itoa(round) + "\x00" + contactID))
	return hex.EncodeToString(h[:12])
}

// planned lists every channel the intent may be sent on: its channels,
// then its fallback channels.
func (in Intent) planned() []string {
	return append(append([]string(nil), in.Channels...), in.Fallback...)
}

// Encode writes the intent as JSON.
func (in Intent) Encode() ([]byte, error) {
	b, err := encodeIntent(make([]byte, 0, 640), &in)
	if err != nil {
		return nil, fmt.Errorf("encode intent %s: %w", in.ID, err)
	}
	return b, nil
}

// DecodeIntent reads an intent and checks the fields delivery relies on.
func DecodeIntent(b []byte) (Intent, error) {
	var in Intent
	if !decodeIntentFast(string(b), &in) {
		in = Intent{}
		if err := json.Unmarshal(b, &in); err != nil {
			return in, fmt.Errorf("decode intent: %w", err)
		}
	}
	switch {
	case in.ID == "":
		return in, fmt.Errorf("intent: id is required")
	case in.ContactID == "":
		return in, fmt.Errorf("intent %s: contact_id is required", in.ID)
	case len(in.Channels) == 0:
		return in, fmt.Errorf("intent %s: channels are required", in.ID)
	case in.Template == "":
		return in, fmt.Errorf("intent %s: template is required", in.ID)
	}
	return in, nil
}
