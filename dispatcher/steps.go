package dispatcher

import (
	"time"

	"github.com/viogen-alerts/dispatcher/rules"
)

// StepIntents resolves one step of an alert's policy snapshot to intents,
// one per target contact with its channel plan. A step whose targets
// resolve to nobody gives no intents.
func StepIntents(cfg *rules.Config, a rules.Alert, step, round int, ackCode string, now time.Time) []Intent {
	if step >= len(a.Policy.Steps) {
		return nil
	}
	st := a.Policy.Steps[step]
	targets, _ := cfg.Resolve(st, a.Route)
	var deadline time.Time
	if st.AckWithin > 0 {
		deadline = now.Add(st.AckWithin.Std())
	}
	out := make([]Intent, 0, len(targets))
	for _, t := range targets {
		out = append(out, Intent{
			ID: IntentID(a.ID, step, round, t.ContactID), Kind: KindAlert,
			AlertID: a.ID, Rule: a.Rule, Template: a.Template, Severity: a.Severity,
			Critical: a.Critical, Unrouted: t.Unrouted,
			CaseRef: a.CaseID, EventID: a.EventID, EventType: a.EventType, Level: a.Level, PrevLevel: a.PrevLevel,
			OccurredAt: a.OccurredAt, DecidedAt: now, Step: step, Round: round,
			Deadline: deadline, AckCode: ackCode, Missed: a.Missed, MissedSince: a.MissedSince,
			AgencyID: t.AgencyID, AgencyName: t.AgencyName, OtherAgency: otherAgency(cfg, a.Route, t.AgencyID),
			ContactID: t.ContactID, Locale: t.Locale, Channels: t.Channels, Fallback: t.Fallback,
		})
	}
	return out
}

// otherAgency names the unit on the other side of a relocation for the
// old and the new unit's messages ("hand over to ...", "taken over from ...").
func otherAgency(cfg *rules.Config, rc rules.RouteContext, agencyID string) string {
	other := ""
	switch agencyID {
	case rc.ResponsibleUnit:
		other = rc.PreviousUnit
	case rc.PreviousUnit:
		other = rc.ResponsibleUnit
	}
	if other == "" || other == agencyID {
		return ""
	}
	if a, ok := cfg.Agency(other); ok {
		return a.Name
	}
	return other
}
