package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/logjson"
	"github.com/viogen-alerts/dispatcher/rules"
)

// Decider is the stage after case state: rules → suppression → one
// intent per target of the policy's first step, written to the intents
// topic. It is idempotent: a replayed batch (after a crash, or a
// redelivered event) decides the same alerts with the same ids, takes its
// own suppression windows again, finds its critical decisions (sent or
// merged) remembered and its ack codes allocated, and delivery's
// sent-markers absorb the repeated intents. A critical alert is never
// suppressed by a window: it goes, or is merged into an open,
// unacknowledged escalation of its case and rule at the same or a higher
// level (see Suppressor).
type Decider struct {
	Engine   *rules.Engine
	Suppress *Suppressor
	Writer   Sink
	Topic    string
	Log      logrus.FieldLogger
	Now      func() time.Time
	// Ladder, when set, opens an escalation per alert that awaits an
	// acknowledgement and handles timeouts, acknowledgements and the
	// check-ins that resolve missed-check-in escalations.
	Ladder *Ladder
	// Live, when set, supplies the engine in use (read once per batch)
	// instead of Engine, so a reload takes effect at the next batch.
	Live *Live
	// Silences, when set, hold back the non-critical alerts they match
	// (read once per batch); critical alerts pass every silence.
	Silences *SilenceStore
	// RuleErrors, when set, counts rules that failed at run time
	// (dispatcher_rule_errors_total; the Service sets it).
	RuleErrors prometheus.Counter
	// Handoff, when set, is given the intents' messages just before they
	// are written (Deliverer.Handoff of this process): delivery starts
	// without waiting for the write and the broker's hand-back.
	Handoff func(ctx context.Context, msgs []kafka.Message)
	// writeFailed: the last write of intents failed (no hand-off then).
	writeFailed atomic.Bool
}

func (d *Decider) engine() *rules.Engine {
	if d.Live != nil {
		return d.Live.Load().Engine
	}
	return d.Engine
}

type decision struct {
	item  *Item
	alert rules.Alert
	req   int // its suppression request
	// mergedInto is the escalation a critical alert was merged into.
	mergedInto string
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
		end := i + 1
		if items[i].Event.Type == event.EscalationTimeout {
			// Rules about a timeout (an oversight notice) see only a timeout
			// that moves its ladder: not one of an escalation acknowledged or
			// moved on meanwhile. A replay that finds the ladder moved on
			// skips them safely: their intents were written before it moved.
			live, err := d.Ladder.timeoutLive(ctx, items[i].Event)
			if err != nil {
				return err
			}
			if !live {
				end = i
			}
		}
		if err := d.decide(ctx, items[start:end]); err != nil {
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
	return d.Ladder != nil && (t == event.EscalationTimeout || t == event.EscalationAcknowledged || t == event.CheckinRecorded ||
		t == event.CaseClosed)
}

func (d *Decider) applyLadder(ctx context.Context, it Item) error {
	ev, now := it.Event, d.Now()
	switch ev.Type {
	case event.EscalationTimeout:
		return d.Ladder.Timeout(ctx, ev, now)
	case event.EscalationAcknowledged:
		return d.Ladder.Ack(ctx, ev.CaseID, ev.Ack.EscalationID, ev.Ack.Agency, ev.Ack.Via, ev.Ack.Operator, now)
	case event.CheckinRecorded:
		return d.Ladder.AckCheckin(ctx, ev, now)
	case event.CaseClosed:
		if it.Outcome.Transition.Stale {
			return nil // an old close, overtaken by a newer reactivation
		}
		return d.Ladder.CloseCase(ctx, ev, now)
	}
	return nil
}

// decide runs rules and suppression for items and sends what is allowed;
// critical alerts merged into an open escalation are recorded on it.
func (d *Decider) decide(ctx context.Context, items []Item) error {
	eng := d.engine() // one configuration for the whole batch
	decided, reqs := d.evaluate(eng, items)
	if len(reqs) == 0 {
		return nil
	}
	verdicts, err := d.Suppress.Decide(ctx, reqs)
	if err != nil {
		return err
	}
	var sent, merged []decision
	for _, dc := range decided {
		v := verdicts[dc.req]
		switch {
		case v.Send:
			sent = append(sent, dc)
		case v.MergedInto != "":
			dc.mergedInto = v.MergedInto
			merged = append(merged, dc)
		default:
			d.logDecision(dc, nil, "suppressed")
		}
	}
	merged, orphans, err := d.mergeTargets(ctx, sent, merged)
	if err != nil {
		return err
	}
	sent, err = d.silence(ctx, append(sent, orphans...))
	if err != nil {
		return err
	}
	if err := d.emit(ctx, eng.Config(), sent); err != nil {
		return err
	}
	// After emit: the escalation merged into may have been opened by an
	// alert of this very batch.
	for _, dc := range merged {
		d.logDecision(dc, nil, "merged")
		if d.Ladder != nil {
			if err := d.Ladder.Merge(ctx, dc.alert.CaseID, dc.mergedInto, dc.alert.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// countErrors is how many errors err joins (errors.Join), at least 1.
func countErrors(err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return max(len(j.Unwrap()), 1)
	}
	return 1
}

// mergeTargets splits the critical alerts merged into an escalation into
// those whose escalation exists (or opens in this batch, from sent) and
// orphans, whose escalation is gone (its record expired, or Redis lost
// it): an orphan would page nobody, so it is sent on its own, and the
// stale entry is taken out of the case's merge index.
func (d *Decider) mergeTargets(ctx context.Context, sent, merged []decision) (kept, orphans []decision, err error) {
	if d.Ladder == nil || len(merged) == 0 {
		return merged, nil, nil
	}
	opening := map[string]bool{}
	for _, dc := range sent {
		opening[dc.alert.ID] = true
	}
	for _, dc := range merged {
		if opening[dc.mergedInto] {
			kept = append(kept, dc)
			continue
		}
		target, gerr := d.Ladder.Store.Get(ctx, dc.alert.CaseID, dc.mergedInto)
		switch {
		case gerr == nil && (target.State != EscOpen || !target.DueAt.IsZero()):
			kept = append(kept, dc)
		case gerr == nil:
			// Open and awaiting nothing: left so by a step with ack_within 0
			// before the ladder closed such escalations. It will never climb:
			// closed now, and the alert pages on its own.
			target.State = EscClosed
			if err := d.Ladder.Store.Save(ctx, target); err != nil {
				return nil, nil, err
			}
			d.Log.WithFields(logrus.Fields{"alert_id": dc.alert.ID, "case_ref": dc.alert.CaseID, "escalation_id": dc.mergedInto}).
				Warn("escalation to merge into awaited nothing: closed; the alert is sent on its own")
			dc.mergedInto = ""
			orphans = append(orphans, dc)
		case errors.Is(gerr, ErrNoEscalation):
			field := critIndexField(dc.alert.Rule, dc.mergedInto)
			if err := d.Ladder.Store.rdb.HDel(ctx, critIndexKey(dc.alert.CaseID), field).Err(); err != nil {
				return nil, nil, fmt.Errorf("drop stale merge entry: %w", err)
			}
			d.Log.WithFields(logrus.Fields{"alert_id": dc.alert.ID, "case_ref": dc.alert.CaseID, "escalation_id": dc.mergedInto}).
				Warn("escalation to merge into is gone: the alert is sent on its own")
			dc.mergedInto = ""
			orphans = append(orphans, dc)
		default:
			return nil, nil, gerr
		}
	}
	return kept, orphans, nil
}

// silence drops the alerts an active silence holds back, recording each
// on its silence. Critical alerts are never held back (Silence.Matches),
// so a batch of critical alerts alone does not wait for the silences read.
func (d *Decider) silence(ctx context.Context, ds []decision) ([]decision, error) {
	if d.Silences == nil || !anyHoldable(ds) {
		return ds, nil
	}
	now := d.Now()
	ss, err := d.Silences.List(ctx, now)
	if err != nil || len(ss) == 0 {
		return ds, err
	}
	kept := ds[:0:0]
	for _, dc := range ds {
		s := HoldingBack(ss, dc.alert, now)
		if s == nil {
			kept = append(kept, dc)
			continue
		}
		if err := d.Silences.RecordHeld(ctx, s.ID, dc.alert, now); err != nil {
			return nil, err
		}
		d.logDecision(dc, nil, "silenced by "+s.ID)
	}
	return kept, nil
}

// anyHoldable reports whether a silence could hold back one of the alerts.
func anyHoldable(ds []decision) bool {
	for _, dc := range ds {
		if !Critical(dc.alert) {
			return true
		}
	}
	return false
}

// evaluate runs the rules for every item and builds the suppression
// requests in order: a case's fall (or close) comes before the alerts of
// the event that caused it and after those of earlier events. A duplicate
// is evaluated again with its original outcome, so a batch that failed
// after deciding is decided the same way on retry.
func (d *Decider) evaluate(eng *rules.Engine, items []Item) ([]decision, []SuppressRequest) {
	var out []decision
	var reqs []SuppressRequest
	for i := range items {
		it := &items[i]
		tr := it.Outcome.Transition
		if !tr.Stale && (tr.Falling || it.Event.Type == event.CaseClosed) {
			reqs = append(reqs, SuppressRequest{CaseID: it.Event.CaseID, EventID: it.Event.ID, Reset: true})
		}
		tr.Duplicate = false
		alerts, err := eng.Evaluate(it.Event, tr, it.Outcome.Case)
		if err != nil {
			// A rule failing at run time is a configuration fault: the other
			// rules' alerts still go; the operator sees this error.
			d.Log.WithError(err).WithFields(logrus.Fields{"case_ref": it.Event.CaseID, "event_id": it.Event.ID}).Error("rule evaluation failed")
			if d.RuleErrors != nil {
				d.RuleErrors.Add(float64(countErrors(err)))
			}
		}
		for _, a := range alerts {
			out = append(out, decision{item: it, alert: a, req: len(reqs)})
			reqs = append(reqs, SuppressRequest{CaseID: a.CaseID, Key: a.SuppressKey, AlertID: a.ID, Window: a.SuppressFor.Std(),
				Critical: a.Critical, Rule: a.Rule, Level: a.Level, Escalates: d.escalates(a)})
		}
	}
	return out, reqs
}

// escalates reports whether the alert opens an escalation (its first step
// awaits an acknowledgement and the ladder runs).
func (d *Decider) escalates(a rules.Alert) bool {
	return d.Ladder != nil && len(a.Policy.Steps) > 0 && a.Policy.Steps[0].AckWithin > 0
}

// emit allocates the ack codes of the escalations about to open, resolves
// step 0 of each alert and writes its intents in one call, then opens the
// escalations; the offset is committed only after this. The codes are
// allocated first because the intents print them; a replay gets the same.
func (d *Decider) emit(ctx context.Context, cfg *rules.Config, ds []decision) error {
	if len(ds) == 0 {
		return nil
	}
	now := d.Now()
	codes := make([]string, len(ds))
	var creqs []codeRequest
	var cidx []int
	for i, dc := range ds {
		if d.escalates(dc.alert) {
			creqs = append(creqs, codeRequest{caseRef: dc.alert.CaseID, alertID: dc.alert.ID})
			cidx = append(cidx, i)
		}
	}
	if len(creqs) > 0 {
		got, taken, err := d.Ladder.Store.allocateCodes(ctx, creqs)
		if err != nil {
			return err
		}
		if taken > 0 {
			d.Log.WithField("taken", taken).Info("ack code candidates found taken: next candidates used")
		}
		for j, i := range cidx {
			codes[i] = got[j]
		}
	}
	var msgs []kafka.Message
	opened := make([]openedAlert, 0, len(ds))
	for i, dc := range ds {
		intents := StepIntents(cfg, dc.alert, 0, 0, codes[i], now)
		for _, in := range intents {
			b, err := in.Encode()
			if err != nil {
				return err
			}
			msgs = append(msgs, kafka.Message{Topic: d.Topic, Key: []byte(in.CaseRef), Value: b})
		}
		opened = append(opened, openedAlert{alert: dc.alert, intents: intents, lastCheckin: dc.item.Outcome.CheckinBase, ackCode: codes[i]})
	}
	d.handoff(ctx, msgs)
	// Logged after the hand-off, off a lone alert's path to its send.
	for i, dc := range ds {
		d.logDecision(dc, opened[i].intents, "notify")
	}
	if len(msgs) > 0 {
		if err := d.Writer.WriteMessages(ctx, msgs...); err != nil {
			d.writeFailed.Store(true)
			return fmt.Errorf("write %d intents to %s: %w", len(msgs), d.Topic, err)
		}
		d.writeFailed.Store(false)
	}
	if d.Ladder == nil {
		return nil
	}
	return d.Ladder.Open(ctx, opened, now)
}

// handoff gives the intents about to be written to delivery in this
// process, when there is one (see Deliverer.Handoff), while Kafka takes
// the writes: a batch retried after a failed write is not handed off
// again (its intents, decided again, would be new jobs each time), and
// while Kafka refuses, nothing is sent ahead of what it records (the
// escalations open after the write).
func (d *Decider) handoff(ctx context.Context, msgs []kafka.Message) {
	if d.Handoff == nil || len(msgs) == 0 || d.writeFailed.Load() {
		return
	}
	d.Handoff(ctx, msgs)
}

func (d *Decider) logDecision(dc decision, intents []Intent, outcome string) {
	a := dc.alert
	targets := make([]string, len(intents))
	for i, in := range intents {
		targets[i] = in.AgencyID + "/" + in.ContactID
	}
	// logjson.Log: the line logrus would write, without its maps (one
	// line per alert was a third of the decide stage's CPU).
	f := [10]logjson.Field{logjson.String("case_ref", a.CaseID), logjson.String("alert_id", a.ID), logjson.String("rule", a.Rule),
		logjson.String("severity", a.Severity), logjson.Bool("critical", a.Critical), logjson.String("policy", a.Policy.ID),
		logjson.Bool("unrouted", a.Unrouted), logjson.String("event_id", a.EventID), logjson.Strings("targets", targets)}
	if dc.mergedInto != "" {
		f[9] = logjson.String("escalation_id", dc.mergedInto)
		logjson.Log(d.Log, logrus.InfoLevel, "alert merged into escalation "+dc.mergedInto, f[:]...)
		return
	}
	logjson.Log(d.Log, logrus.InfoLevel, "alert "+outcome, f[:9]...)
}
