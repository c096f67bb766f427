package console

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/rules"
)

// A held-back alert opened no escalation, so it has no timeline: its page
// is reached through the silence that held it back, and is in scope when
// that silence is (the silence's agency is the alert's responsible unit).

type heldData struct {
	base
	H        dispatcher.HeldAlert
	S        *dispatcher.Silence
	When     string
	StateKey string
}

// heldPage serves GET /console/silences/{id}/held/{alert}.
func (c *Console) heldPage(w http.ResponseWriter, r *http.Request, s *session, op *rules.Operator) {
	sil, h, err := c.findHeld(r.Context(), r.PathValue("id"), r.PathValue("alert"), op)
	if errors.Is(err, dispatcher.ErrNoSilence) {
		c.notFound(w, s, op)
		return
	}
	if err != nil {
		c.Log.WithError(err).Error("console: reading a silence failed")
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	zone := c.zone(op)
	d := heldData{base: c.base(c.lang(s, op), op, s.CSRF, "held"), H: h, S: sil,
		When: h.At.In(zone).Format("02/01/2006 15:04:05"), StateKey: silenceState(sil, c.Now())}
	c.render(w, http.StatusOK, "held", d)
}

// findHeld finds alert among those silence id held back; a silence out of
// the operator's scope, or an alert it did not hold, is ErrNoSilence.
func (c *Console) findHeld(ctx context.Context, id, alert string, op *rules.Operator) (*dispatcher.Silence, dispatcher.HeldAlert, error) {
	if !idRe.MatchString(id) || !idRe.MatchString(alert) {
		return nil, dispatcher.HeldAlert{}, dispatcher.ErrNoSilence
	}
	sil, err := c.Silences.Get(ctx, id)
	if err != nil {
		return nil, dispatcher.HeldAlert{}, err
	}
	if !inSilenceScope(sil, op) {
		return nil, dispatcher.HeldAlert{}, dispatcher.ErrNoSilence
	}
	held, err := c.Silences.Held(ctx, id)
	if err != nil {
		return nil, dispatcher.HeldAlert{}, err
	}
	for _, h := range held {
		if h.AlertID == alert {
			return sil, h, nil
		}
	}
	return nil, dispatcher.HeldAlert{}, dispatcher.ErrNoSilence
}

// silenceState is the message key of a silence's state at now.
func silenceState(x *dispatcher.Silence, now time.Time) string {
	switch {
	case x.Active(now):
		return "silence_active"
	case now.Before(x.StartsAt):
		return "silence_pending"
	default:
		return "silence_ended"
	}
}

// heldRows are the alerts held back since since by the silences of the
// operator's scope whose case reference contains q (lower case), as
// history rows.
func (c *Console) heldRows(ctx context.Context, op *rules.Operator, since time.Time, q string, zone *time.Location) ([]historyRow, error) {
	if c.Silences == nil {
		return nil, nil
	}
	all, err := c.Silences.List(ctx, c.Now())
	if err != nil {
		return nil, err
	}
	var rows []historyRow
	for _, x := range all {
		if !inSilenceScope(x, op) || x.EndsAt.Before(since) {
			continue
		}
		held, err := c.Silences.Held(ctx, x.ID)
		if err != nil {
			return nil, err
		}
		for _, h := range held {
			if h.At.Before(since) || !containsFold(h.CaseRef, q) {
				continue
			}
			rows = append(rows, historyRow{CaseRef: h.CaseRef, Severity: h.Severity, Rule: h.Rule, StateKey: "state_held",
				Opened: h.At.In(zone).Format("02/01/2006 15:04"), HeldBy: x.ID, Link: Prefix + "silences/" + x.ID + "/held/" + h.AlertID, at: h.At})
		}
	}
	return rows, nil
}
