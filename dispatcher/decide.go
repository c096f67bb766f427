package dispatcher

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/rules"
)

// Decider is the stage after case state: rules → suppression → one
// intent per target of the policy's first step, written to the intents
// topic. It is idempotent: a replayed batch (after a crash, or a
// redelivered event) decides the same alerts with the same ids and takes
// its own suppression windows again, and delivery's sent-markers absorb
// the repeated intents.
type Decider struct {
	Engine   *rules.Engine
	Suppress *Suppressor
	Writer   *kafka.Writer
	Topic    string
	Log      logrus.FieldLogger
	Now      func() time.Time
	// Ladder, when set, opens an escalation per alert that awaits an
	// acknowledgement and handles timeouts, acknowledgements and the
	// check-ins that resolve missed-check-in escalations.
	Ladder *Ladder
}

type decision struct {
	item  *Item
	alert rules.Alert
}

// Handle implements Stage. Items are handled in order: alerts decided so
// far are sent before an escalation event of the batch is applied, so an
// acknowledgement never overtakes the alert it acknowledges.
func (d *Decider) Handle(ctx context.Context, items []Item) error {
	start := 0
	for i := range items {
		if !d.ladderEvent(items[i].Event.Type) {
			continue
		}
		if err := d.decide(ctx, items[start:i+1]); err != nil {
			return err
		}
		if err := d.applyLadder(ctx, items[i]); err != nil {
			return err
		}
		start = i + 1
	}
	return d.decide(ctx, items[start:])
}

func (d *Decider) ladderEvent(t event.Type) bool {
	return d.Ladder != nil && (t == event.EscalationTimeout || t == event.EscalationAcknowledged || t == event.CheckinRecorded)
}

func (d *Decider) applyLadder(ctx context.Context, it Item) error {
	ev, now := it.Event, d.Now()
	switch ev.Type {
	case event.EscalationTimeout:
		return d.Ladder.Timeout(ctx, ev, now)
	case event.EscalationAcknowledged:
		return d.Ladder.Ack(ctx, ev.CaseID, ev.Ack.EscalationID, ev.Ack.Agency, ev.Ack.Via, now)
	case event.CheckinRecorded:
		return d.Ladder.AckCheckin(ctx, ev, now)
	}
	return nil
}

// decide runs rules and suppression for items and sends what is allowed.
func (d *Decider) decide(ctx context.Context, items []Item) error {
	decided := d.evaluate(items)
	if len(decided) == 0 {
		return nil
	}
	allowed, err := d.Suppress.Allow(ctx, suppressRequests(decided))
	if err != nil {
		return err
	}
	var sent []decision
	for i, dc := range decided {
		if !allowed[i] {
			d.logDecision(dc, nil, "suppressed")
			continue
		}
		sent = append(sent, dc)
	}
	return d.emit(ctx, sent)
}

// evaluate runs the rules for every item. A duplicate is evaluated again
// with its original outcome, so a batch that failed after deciding is
// decided the same way on retry.
func (d *Decider) evaluate(items []Item) []decision {
	var out []decision
	for i := range items {
		it := &items[i]
		tr := it.Outcome.Transition
		tr.Duplicate = false
		alerts, err := d.Engine.Evaluate(it.Event, tr, it.Outcome.Case)
		if err != nil {
			// A rule failing at run time is a configuration fault: the other
			// rules' alerts still go; the operator sees this error.
			d.Log.WithError(err).WithFields(logrus.Fields{"case_ref": it.Event.CaseID, "event_id": it.Event.ID}).Error("rule evaluation failed")
		}
		for _, a := range alerts {
			out = append(out, decision{item: it, alert: a})
		}
	}
	return out
}

func suppressRequests(ds []decision) []SuppressRequest {
	reqs := make([]SuppressRequest, len(ds))
	for i, dc := range ds {
		reqs[i] = SuppressRequest{CaseID: dc.alert.CaseID, Key: dc.alert.SuppressKey, AlertID: dc.alert.ID, Window: dc.alert.SuppressFor.Std()}
	}
	return reqs
}

// emit resolves step 0 of each alert and writes its intents in one call,
// then opens the escalations; the offset is committed only after this.
func (d *Decider) emit(ctx context.Context, ds []decision) error {
	if len(ds) == 0 {
		return nil
	}
	now := d.Now()
	var msgs []kafka.Message
	opened := make([]openedAlert, 0, len(ds))
	for _, dc := range ds {
		intents := StepIntents(d.Engine.Config(), dc.alert, 0, 0, AckCode(dc.alert.ID), now)
		d.logDecision(dc, intents, "notify")
		for _, in := range intents {
			b, err := in.Encode()
			if err != nil {
				return err
			}
			msgs = append(msgs, kafka.Message{Topic: d.Topic, Key: []byte(in.CaseRef), Value: b})
		}
		opened = append(opened, openedAlert{alert: dc.alert, intents: intents, lastCheckin: dc.item.Outcome.CheckinBase})
	}
	if len(msgs) > 0 {
		if err := d.Writer.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("write %d intents to %s: %w", len(msgs), d.Topic, err)
		}
	}
	if d.Ladder == nil {
		return nil
	}
	return d.Ladder.Open(ctx, opened, now)
}

func (d *Decider) logDecision(dc decision, intents []Intent, outcome string) {
	a := dc.alert
	targets := make([]string, len(intents))
	for i, in := range intents {
		targets[i] = in.AgencyID + "/" + in.ContactID
	}
	d.Log.WithFields(logrus.Fields{
		"case_ref": a.CaseID, "alert_id": a.ID, "rule": a.Rule, "severity": a.Severity, "critical": a.Critical,
		"policy": a.Policy.ID, "unrouted": a.Unrouted, "event_id": a.EventID, "targets": targets,
	}).Info("alert " + outcome)
}
