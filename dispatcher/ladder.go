package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/rules"
)

// Ladder runs escalations: it opens one per alert whose first step awaits
// an acknowledgement, climbs a step (or repeats it) on each timeout, tells
// the coordinating center when the ladder runs out, and stops on an
// acknowledgement. Every change is made after the intents it sends are
// written, and intent ids are deterministic, so a replayed event re-sends
// nothing and skips what was already done.
type Ladder struct {
	Rules   *rules.Config
	Store   *EscalationStore
	Writer  Sink
	Intents string // notifications topic
	Results string // notifications.results topic
	Log     logrus.FieldLogger
	// Live, when set, supplies the configuration in use instead of Rules.
	// Steps always come from the escalation's own policy snapshot; the
	// configuration resolves their targets (agencies and contacts).
	Live *Live
}

func (l *Ladder) rules() *rules.Config {
	if l.Live != nil {
		return l.Live.Load().Config
	}
	return l.Rules
}

// Open records escalations for alerts just notified at step 0, with the
// ack code their intents printed (allocated here when none was given).
func (l *Ladder) Open(ctx context.Context, opened []openedAlert, now time.Time) error {
	if err := l.ensureCodes(ctx, opened); err != nil {
		return err
	}
	for _, o := range opened {
		if len(o.alert.Policy.Steps) == 0 || o.alert.Policy.Steps[0].AckWithin <= 0 {
			continue // nothing is awaited
		}
		if _, err := l.Store.Get(ctx, o.alert.CaseID, o.alert.ID); err == nil {
			continue // replay: already open (or finished)
		} else if !errors.Is(err, ErrNoEscalation) {
			return err
		}
		e := &Escalation{ID: o.alert.ID, CaseRef: o.alert.CaseID, Alert: o.alert, AckCode: o.ackCode,
			State: EscOpen, OpenedAt: escTime(now), Notified: agencies(nil, o.intents), LastCheckin: o.lastCheckin}
		if len(o.intents) == 0 {
			e.Skipped = append(e.Skipped, 0)
			if err := l.advance(ctx, e, now); err != nil {
				return err
			}
			continue
		}
		e.DueAt = dueAt(e.Alert.Policy.Steps[0], now)
		if err := l.Store.Save(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// ensureCodes allocates the codes of escalating alerts that came without.
func (l *Ladder) ensureCodes(ctx context.Context, opened []openedAlert) error {
	var reqs []codeRequest
	var idx []int
	for i, o := range opened {
		if o.ackCode == "" && len(o.alert.Policy.Steps) > 0 && o.alert.Policy.Steps[0].AckWithin > 0 {
			reqs = append(reqs, codeRequest{caseRef: o.alert.CaseID, alertID: o.alert.ID})
			idx = append(idx, i)
		}
	}
	if len(reqs) == 0 {
		return nil
	}
	codes, _, err := l.Store.allocateCodes(ctx, reqs)
	if err != nil {
		return err
	}
	for j, i := range idx {
		opened[i].ackCode = codes[j]
	}
	return nil
}

// openedAlert is an alert, the intents its step 0 sent, the case's last
// check-in when it was decided, and the ack code its intents printed.
type openedAlert struct {
	alert       rules.Alert
	intents     []Intent
	lastCheckin time.Time
	ackCode     string
}

// Merge records that critical alert alertID was merged into escalation
// target of the case instead of paging on its own. Idempotent.
func (l *Ladder) Merge(ctx context.Context, caseRef, target, alertID string) error {
	e, err := l.Store.Get(ctx, caseRef, target)
	if errors.Is(err, ErrNoEscalation) {
		l.Log.WithFields(logrus.Fields{"alert_id": alertID, "case_ref": caseRef, "escalation_id": target}).
			Warn("escalation merged into is gone: merge not recorded on it")
		return nil
	}
	if err != nil {
		return err
	}
	if contains(e.Merged, alertID) {
		return nil // replay
	}
	e.Merged = append(e.Merged, alertID)
	return l.Store.Save(ctx, e)
}

// Timeout handles escalation.timeout: if the escalation still waits on
// the step and round the timer was set for, the ladder moves on.
func (l *Ladder) Timeout(ctx context.Context, ev event.Event, now time.Time) error {
	e, err := l.Store.Get(ctx, ev.CaseID, ev.Timer.EscalationID)
	if errors.Is(err, ErrNoEscalation) {
		return nil
	}
	if err != nil {
		return err
	}
	if e.State != EscOpen || e.Step != ev.Timer.Step || e.Round != ev.Timer.Round {
		return nil // acknowledged, or already moved on (a replayed timer)
	}
	return l.advance(ctx, e, now)
}

// timeoutLive reports, reading only, whether the escalation.timeout ev
// would move its ladder now (the escalation is open and still waits on
// the step and round the timer was set for).
func (l *Ladder) timeoutLive(ctx context.Context, ev event.Event) (bool, error) {
	if ev.Timer == nil {
		return false, nil
	}
	e, err := l.Store.Get(ctx, ev.CaseID, ev.Timer.EscalationID)
	if errors.Is(err, ErrNoEscalation) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return e.State == EscOpen && e.Step == ev.Timer.Step && e.Round == ev.Timer.Round, nil
}

// advance moves e to its next step or round and notifies it; steps that
// resolve to nobody are skipped at once; past the last step the
// coordinating center is told and the escalation closes.
func (l *Ladder) advance(ctx context.Context, e *Escalation, now time.Time) error {
	steps := e.Alert.Policy.Steps
	for range len(steps) + 1 { // bounded: each turn moves at least one step or ends
		if e.Round < steps[e.Step].Repeat {
			e.Round++
		} else {
			e.Step, e.Round = e.Step+1, 0
		}
		if e.Step >= len(steps) {
			return l.exhausted(ctx, e, now)
		}
		intents := StepIntents(l.rules(), e.Alert, e.Step, e.Round, e.AckCode, now)
		if len(intents) == 0 {
			e.Skipped = append(e.Skipped, e.Step)
			l.Log.WithFields(logrus.Fields{"alert_id": e.ID, "case_ref": e.CaseRef, "step": e.Step}).Warn("escalation step resolves to nobody: skipped")
			e.Round = steps[e.Step].Repeat // do not repeat an empty step
			continue
		}
		if err := l.write(ctx, intents); err != nil {
			return err
		}
		e.Notified = agencies(e.Notified, intents)
		e.DueAt = dueAt(steps[e.Step], now)
		if e.DueAt.IsZero() {
			// A step that awaits nothing ends the escalation, last or not
			// (ack_within: 0, as documented). Left open without a timer it
			// would wait for ever, and later critical alerts of the rule
			// would merge into it and page nobody.
			e.State = EscClosed
		}
		return l.Store.Save(ctx, e)
	}
	return fmt.Errorf("escalation %s: ladder did not settle", e.ID)
}

// exhausted tells the case's coordinating center (or the fallback agency)
// that nobody acknowledged, and closes the escalation.
func (l *Ladder) exhausted(ctx context.Context, e *Escalation, now time.Time) error {
	step := rules.PolicyStep{Notify: []rules.TargetSpec{{Agency: "coordinating_center", Via: []string{"sms", "email"}}}}
	targets, _ := l.rules().Resolve(step, e.Alert.Route)
	var intents []Intent
	for _, t := range targets {
		intents = append(intents, Intent{
			ID: IntentID("unacked:"+e.ID, e.Step, 0, t.ContactID), Kind: KindNotice, AlertID: e.ID, Rule: e.Alert.Rule,
			Template: "escalation_unacked", Severity: "critical", Critical: true, CaseRef: e.CaseRef,
			EventID: e.Alert.EventID, EventType: e.Alert.EventType, Level: e.Alert.Level, OccurredAt: e.Alert.OccurredAt,
			DecidedAt: now, Step: e.Step, AgencyID: t.AgencyID, AgencyName: t.AgencyName, ContactID: t.ContactID,
			Locale: t.Locale, Channels: t.Channels, Unrouted: t.Unrouted,
		})
	}
	// The ladder is over: the pager incidents it raised are resolved, after
	// the center's notice (written in the same call, so a replay of this
	// timeout re-sends neither: the escalation is found closed).
	intents = append(intents, l.pageUpdates(e, pagerResolve, now)...)
	if err := l.write(ctx, intents); err != nil {
		return err
	}
	e.State, e.DueAt = EscClosed, time.Time{}
	l.Log.WithFields(logrus.Fields{"alert_id": e.ID, "case_ref": e.CaseRef, "rule": e.Alert.Rule}).Error("escalation unacknowledged: coordinating center told")
	return l.Store.Save(ctx, e)
}

// Ack stops an open escalation, acknowledges its pager incidents (PagerDuty
// stops paging the on-call; the incident stays open until it is resolved)
// and publishes escalation.acknowledged on the results topic for upstream
// systems.
func (l *Ladder) Ack(ctx context.Context, caseRef, alertID, agency, via, operator string, now time.Time) error {
	e, err := l.Store.Get(ctx, caseRef, alertID)
	if errors.Is(err, ErrNoEscalation) {
		return nil
	}
	if err != nil || e.State != EscOpen {
		return err
	}
	if err := l.write(ctx, l.pageUpdates(e, pagerAcknowledge, now)); err != nil {
		return err
	}
	r := Result{IntentID: "ack:" + e.ID, AlertID: e.ID, CaseRef: e.CaseRef, Rule: e.Alert.Rule, Kind: "escalation",
		Step: e.Step, Round: e.Round, AgencyID: agency, Channel: via, Operator: operator, Outcome: OutcomeAcked, At: now.UTC()}
	m, err := r.message(l.Results)
	if err != nil {
		return err
	}
	if err := l.Writer.WriteMessages(ctx, m); err != nil {
		return fmt.Errorf("publish acknowledgement: %w", err)
	}
	e.State, e.AckedBy, e.AckedAt, e.AckVia, e.DueAt = EscAcked, agency, escTime(now), via, time.Time{}
	e.AckedOperator = operator
	l.Log.WithFields(logrus.Fields{"alert_id": e.ID, "case_ref": e.CaseRef, "agency": agency, "via": via, "operator": operator}).Info("escalation acknowledged")
	return l.Store.Save(ctx, e)
}

// PagerDuty Events API v2 actions on an incident already triggered; the
// dedup_key (the alert id) names the incident.
const (
	pagerAcknowledge = "acknowledge"
	pagerResolve     = "resolve"
)

// pageUpdates sends action ("acknowledge" or "resolve") to every pager
// contact paged so far, with the alert id as dedup_key like the trigger.
// Their intent ids are deterministic in the action, the alert and the
// contact, distinct from the trigger's and from each other: a replayed ack
// or close re-sends nothing, and a resolve after an acknowledge is a new
// send.
func (l *Ladder) pageUpdates(e *Escalation, action string, now time.Time) []Intent {
	var out []Intent
	seen := map[string]bool{}
	for step := 0; step <= e.Step && step < len(e.Alert.Policy.Steps); step++ {
		for _, in := range StepIntents(l.rules(), e.Alert, step, 0, e.AckCode, now) {
			if !contains(in.Channels, "pager") || seen[in.ContactID] {
				continue
			}
			seen[in.ContactID] = true
			in.ID = IntentID(action+":"+e.ID, 0, 0, in.ContactID)
			in.Channels, in.Fallback, in.PagerAction = []string{"pager"}, nil, action
			out = append(out, in)
		}
	}
	return out
}

// CloseCase closes the case's open escalations when the case closes: their
// ladders stop and their pager incidents are resolved. Only escalations
// raised by events that occurred before the close are closed: a replayed
// old case.closed (a batch handled again after a crash, with the case
// reactivated and a new escalation opened after it) must not close the
// new one. Idempotent: a closed escalation is no longer open.
func (l *Ladder) CloseCase(ctx context.Context, ev event.Event, now time.Time) error {
	open, err := l.Store.OpenForCase(ctx, ev.CaseID)
	if err != nil {
		return err
	}
	for _, e := range open {
		if e.Alert.EventID == ev.ID || !e.Alert.OccurredAt.Before(ev.OccurredAt) {
			continue
		}
		if err := l.write(ctx, l.pageUpdates(e, pagerResolve, now)); err != nil {
			return err
		}
		e.State, e.DueAt = EscClosed, time.Time{}
		l.Log.WithFields(logrus.Fields{"alert_id": e.ID, "case_ref": e.CaseRef, "rule": e.Alert.Rule, "event_id": ev.ID}).
			Info("escalation closed: the case closed")
		if err := l.Store.Save(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// AckCheckin resolves a case's open missed-check-in escalations when a
// check-in is recorded that took place after the case's last check-in
// known when the escalation opened: a re-sent or late old check-in does
// not stop today's escalation.
func (l *Ladder) AckCheckin(ctx context.Context, ev event.Event, now time.Time) error {
	open, err := l.Store.OpenForCase(ctx, ev.CaseID)
	if err != nil {
		return err
	}
	for _, e := range open {
		if e.Alert.EventType != event.CheckinMissed || !ev.OccurredAt.After(e.LastCheckin) {
			continue
		}
		unit := ""
		if ev.Checkin != nil {
			unit = ev.Checkin.Unit
		}
		if err := l.Ack(ctx, e.CaseRef, e.ID, unit, "checkin", "", now); err != nil {
			return err
		}
	}
	return nil
}

func (l *Ladder) write(ctx context.Context, intents []Intent) error {
	if len(intents) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, 0, len(intents))
	for _, in := range intents {
		b, err := in.Encode()
		if err != nil {
			return err
		}
		msgs = append(msgs, kafkaMsg(l.Intents, in.CaseRef, b))
	}
	if err := l.Writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("write %d escalation intents: %w", len(msgs), err)
	}
	return nil
}

// dueAt is when step st's wait ends (escTime).
func dueAt(st rules.PolicyStep, now time.Time) time.Time {
	if st.AckWithin <= 0 {
		return time.Time{}
	}
	return escTime(now.Add(st.AckWithin.Std()))
}

// escTime is an escalation's own time (opened, due, acknowledged): in UTC
// and to the millisecond, as its timers are scored, so that its record
// writes it as a short span from the opening whatever the process's zone
// (a time with an offset is written in full).
func escTime(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func agencies(have []string, intents []Intent) []string {
	for _, in := range intents {
		if !contains(have, in.AgencyID) {
			have = append(have, in.AgencyID)
		}
	}
	return have
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
