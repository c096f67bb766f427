package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/viogen-alerts/dispatcher/dispatcher"
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
			return fmt.Errorf("sms ack of %s: unknown contact %q", a.Case, a.Contact)
		}
		agency = ag.ID
	}
	open, err := e.esc.OpenForCase(ctx, a.Case)
	if err != nil {
		return fmt.Errorf("ack: open escalations of %s: %w", a.Case, err)
	}
	e.add(Record{Kind: KindInput, Case: a.Case, Action: "ack", Agency: agency, Contact: a.Contact, Rule: a.Rule, Detail: "via " + via})
	tried := 0
	for _, esc := range open {
		if a.Rule != "" && esc.Alert.Rule != a.Rule {
			continue
		}
		tried++
		if err := e.ackOne(ctx, esc, agency, via); err != nil {
			return err
		}
	}
	if tried == 0 {
		e.add(Record{Kind: KindAckRefused, Case: a.Case, Rule: a.Rule, Agency: agency, Detail: "no open escalation"})
	}
	return nil
}

// ackOne acknowledges one open escalation, or records why it is refused.
func (e *Engine) ackOne(ctx context.Context, esc *dispatcher.Escalation, agency, via string) error {
	if via == "sms" {
		// The reply carries the code the SMS printed: found as the inbound
		// handler finds it.
		byCode, err := e.esc.ByCode(ctx, esc.AckCode)
		if err != nil {
			return fmt.Errorf("sms ack: code of %s: %w", esc.ID, err)
		}
		esc = byCode
	}
	if !esc.NotifiedAgency(agency) {
		e.add(Record{Kind: KindAckRefused, Case: esc.CaseRef, Rule: esc.Alert.Rule, Alert: esc.ID, Agency: agency,
			Detail: "agency not notified of the escalation"})
		return nil
	}
	if err := e.acks.Acknowledge(ctx, esc, agency, via); err != nil {
		return fmt.Errorf("ack %s: %w", esc.ID, err)
	}
	return nil
}
