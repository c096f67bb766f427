package dispatcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Outcomes of the console's operator actions on the results topic (the
// acknowledgement's is OutcomeAcked).
const (
	OutcomeNote           = "escalation.note"
	OutcomeSilenceCreated = "silence.created"
	OutcomeSilenceEnded   = "silence.ended"
)

// ViaConsole is the channel of the console's audit records.
const ViaConsole = "console"

// SilenceRecord is a silence as its audit records carry it: matchers and
// times, never its free-text reason.
type SilenceRecord struct {
	ID           string    `json:"id"`
	Agency       string    `json:"agency"`
	Rule         string    `json:"rule,omitempty"`
	Municipality string    `json:"municipality,omitempty"`
	StartsAt     time.Time `json:"starts_at"`
	EndsAt       time.Time `json:"ends_at"`
}

// ConsoleAudit publishes what console operators do (notes, silences) on
// the results topic, with the operator id, next to the deliveries and
// acknowledgements.
type ConsoleAudit struct {
	Writer Sink
	Topic  string // default TopicResults
}

func (a *ConsoleAudit) publish(ctx context.Context, r Result, key string) error {
	topic := a.Topic
	if topic == "" {
		topic = TopicResults
	}
	m, err := r.message(topic)
	if err != nil {
		return err
	}
	m.Key = []byte(key)
	if err := a.Writer.WriteMessages(ctx, m); err != nil {
		return fmt.Errorf("publish %s audit record: %w", r.Outcome, err)
	}
	return nil
}

// Note records that n was added to e. The record carries the note's id,
// length and SHA-256, not its text: free text cannot be proven free of
// personal data, and the audit trail is kept for years.
func (a *ConsoleAudit) Note(ctx context.Context, e *Escalation, n Note) error {
	sum := sha256.Sum256([]byte(n.Text))
	r := Result{IntentID: "note:" + e.ID + ":" + n.ID, AlertID: e.ID, CaseRef: e.CaseRef, Rule: e.Alert.Rule, Kind: "escalation",
		Step: e.Step, Round: e.Round, AgencyID: n.Agency, Channel: ViaConsole, Operator: n.Operator, Outcome: OutcomeNote,
		NoteID: n.ID, NoteSHA256: hex.EncodeToString(sum[:]), NoteLength: len([]rune(n.Text)), At: n.At.UTC()}
	return a.publish(ctx, r, e.CaseRef)
}

// Silence records that operator created (OutcomeSilenceCreated) or ended
// (OutcomeSilenceEnded) s at at.
func (a *ConsoleAudit) Silence(ctx context.Context, s *Silence, outcome, operator string, at time.Time) error {
	r := Result{IntentID: "silence:" + s.ID + ":" + outcome, Kind: "silence", AgencyID: s.Agency, Channel: ViaConsole,
		Operator: operator, Outcome: outcome, At: at.UTC(),
		Silence: &SilenceRecord{ID: s.ID, Agency: s.Agency, Rule: s.Rule, Municipality: s.Municipality,
			StartsAt: s.StartsAt.UTC(), EndsAt: s.EndsAt.UTC()}}
	return a.publish(ctx, r, "silence:"+s.ID)
}
