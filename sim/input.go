package sim

import (
	"context"
	"fmt"
	"time"
)

// Input is one thing the outside world does at a time: an upstream event
// (its JSON, decoded by the pipeline itself) or an acknowledgement.
type Input struct {
	At    time.Time
	Case  string // the event's case_id: its Kafka key
	Event []byte
	Ack   *Ack
}

// Ack acknowledges a case's open escalations, as the ack API (Via "api",
// by Agency) or an SMS reply "ACK <code>" from Contact (Via "sms") does.
type Ack struct {
	Case    string `json:"case"`
	Agency  string `json:"agency,omitempty"`  // via api: the agency whose token is used
	Contact string `json:"contact,omitempty"` // via sms: the contact replying (its agency acknowledges)
	Rule    string `json:"rule,omitempty"`    // only the escalation of this rule ("": every open one)
	Via     string `json:"via,omitempty"`     // "api" (default) or "sms"
}

func (e *Engine) input(ctx context.Context, in Input) error {
	if in.Ack != nil {
		return e.ack(ctx, *in.Ack)
	}
	return e.publish(ctx, in.Case, in.Event)
}

// ack does what the acknowledgement API and the inbound-SMS handler do
// for an accepted acknowledgement: the same checks (the agency was told,
// the escalation is open), then escalation.acknowledged on the internal
// topic, handled in order with the case's events.
func (e *Engine) ack(ctx context.Context, a Ack) error {
	agency, via := a.Agency, a.Via
	if via == "" {
		via = "api"
	}
	if via == "sms" {
		ag, _, ok := e.cfg.Contact(a.Contact)
		if !ok {
			return fmt.Errorf("ack: unknown contact %q", a.Contact)
		}
		agency = ag.ID
	}
	open, err := e.esc.OpenForCase(ctx, a.Case)
	if err != nil {
		return fmt.Errorf("ack: open escalations of %s: %w", a.Case, err)
	}
	in := Record{Kind: KindInput, Case: a.Case, Action: "ack", Agency: agency, Contact: a.Contact, Rule: a.Rule, Detail: "via " + via}
	e.add(in)
	acked := 0
	for _, esc := range open {
		if a.Rule != "" && esc.Alert.Rule != a.Rule {
			continue
		}
		if via == "sms" {
			// The reply carries the code the SMS printed: found as the
			// inbound handler finds it.
			if esc, err = e.esc.ByCode(ctx, esc.AckCode); err != nil {
				return fmt.Errorf("ack: code of %s: %w", esc.ID, err)
			}
		}
		if !esc.NotifiedAgency(agency) {
			e.add(Record{Kind: KindAckRefused, Case: a.Case, Rule: esc.Alert.Rule, Alert: esc.ID, Agency: agency, Detail: "agency not notified of the escalation"})
			continue
		}
		if err := e.acks.Acknowledge(ctx, esc, agency, via); err != nil {
			return fmt.Errorf("ack %s: %w", esc.ID, err)
		}
		acked++
	}
	if acked == 0 && len(open) == 0 {
		e.add(Record{Kind: KindAckRefused, Case: a.Case, Agency: agency, Detail: "no open escalation"})
	}
	return nil
}
