package sim

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/viogen-alerts/dispatcher/dispatcher"
)

// escState is what the timeline reports of an escalation: each change is
// one record.
type escState struct {
	known   bool
	state   string
	step    int
	round   int
	skipped int
}

// watchEscalation follows an alert that may have opened an escalation.
func (e *Engine) watchEscalation(caseRef, alertID string) {
	if caseRef == "" || alertID == "" {
		return
	}
	if e.watch[caseRef] == nil {
		e.watch[caseRef] = map[string]escState{}
	}
	if _, ok := e.watch[caseRef][alertID]; !ok {
		e.watch[caseRef][alertID] = escState{}
	}
}

// escalationChanges records how the escalations of the cases touched
// since the last call changed, reading them back from Redis.
func (e *Engine) escalationChanges(ctx context.Context) error {
	cases := make([]string, 0, len(e.touched))
	for c := range e.touched {
		cases = append(cases, c)
	}
	sort.Strings(cases)
	clear(e.touched)
	for _, c := range cases {
		ids := make([]string, 0, len(e.watch[c]))
		for id := range e.watch[c] {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if err := e.escalationChange(ctx, c, id); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *Engine) escalationChange(ctx context.Context, caseRef, alertID string) error {
	esc, err := e.esc.Get(ctx, caseRef, alertID)
	if errors.Is(err, dispatcher.ErrNoEscalation) {
		delete(e.watch[caseRef], alertID) // nothing awaited: no escalation
		return nil
	}
	if err != nil {
		return fmt.Errorf("read escalation %s: %w", alertID, err)
	}
	old := e.watch[caseRef][alertID]
	cur := escState{known: true, state: esc.State, step: esc.Step, round: esc.Round, skipped: len(esc.Skipped)}
	base := Record{Kind: KindEscalation, Case: caseRef, Rule: esc.Alert.Rule, Alert: alertID}
	rec := func(action string, step, round int, detail string) {
		r := base
		r.Action, r.Step, r.Round, r.Detail = action, step+1, round, detail
		if action == "opened" || action == "climbed" || action == "repeated" {
			r.Due = esc.DueAt // zero when nothing is awaited
		}
		e.add(r)
	}
	if !old.known {
		rec("opened", 0, 0, "policy "+esc.Alert.Policy.ID)
	}
	for _, s := range esc.Skipped[old.skipped:] {
		rec("skipped", s, 0, "step resolves to nobody")
	}
	last := len(esc.Alert.Policy.Steps) - 1
	switch {
	case cur.step != old.step && cur.step <= last:
		rec("climbed", cur.step, cur.round, "")
	case cur.round != old.round && cur.step == old.step:
		rec("repeated", cur.step, cur.round, "")
	}
	switch {
	case esc.State == dispatcher.EscAcked && old.state != dispatcher.EscAcked:
		rec("acknowledged", cur.step, cur.round, "by "+esc.AckedBy+" via "+esc.AckVia)
	case esc.State == dispatcher.EscClosed && old.state != dispatcher.EscClosed:
		// Shown as the last step it reached (the ladder may have moved past
		// it, to the coordinating center's notice).
		rec("closed", min(cur.step, last), cur.round, "ladder ran out unacknowledged")
	}
	if esc.State != dispatcher.EscOpen {
		delete(e.watch[caseRef], alertID)
		return nil
	}
	e.watch[caseRef][alertID] = cur
	return nil
}
