package dispatcher

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

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
	// Escalations, when set, opens an escalation per alert with a policy
	// and gives the acknowledgement code printed in its messages.
	Escalations EscalationOpener
}

// EscalationOpener records an alert's escalation and its first deadline.
type EscalationOpener interface {
	Open(ctx context.Context, alerts []rules.Alert, now time.Time) (ackCodes []string, err error)
}

type decision struct {
	item  *Item
	alert rules.Alert
}

// Handle implements Stage.
func (d *Decider) Handle(ctx context.Context, items []Item) error {
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

// emit opens escalations, resolves step 0 of each alert, and writes its
// intents in one call; the offset is committed only after this returns.
func (d *Decider) emit(ctx context.Context, ds []decision) error {
	if len(ds) == 0 {
		return nil
	}
	now := d.Now()
	codes := make([]string, len(ds))
	if d.Escalations != nil {
		alerts := make([]rules.Alert, len(ds))
		for i, dc := range ds {
			alerts[i] = dc.alert
		}
		var err error
		if codes, err = d.Escalations.Open(ctx, alerts, now); err != nil {
			return fmt.Errorf("open escalations: %w", err)
		}
	}
	var msgs []kafka.Message
	for i, dc := range ds {
		intents := StepIntents(d.Engine.Config(), dc.alert, 0, 0, codes[i], now)
		d.logDecision(dc, intents, "notify")
		for _, in := range intents {
			b, err := in.Encode()
			if err != nil {
				return err
			}
			msgs = append(msgs, kafka.Message{Topic: d.Topic, Key: []byte(in.CaseRef), Value: b})
		}
	}
	if err := d.Writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("write %d intents to %s: %w", len(msgs), d.Topic, err)
	}
	return nil
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
