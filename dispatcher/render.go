package dispatcher

import (
	"fmt"
	"time"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/templates"
)

// TemplateData is what an intent shows in its message: references,
// severity, levels, deadline, institution names. Nothing personal.
func TemplateData(in Intent, loc *time.Location) templates.Data {
	if in.Kind == KindDigest {
		// A digest is about many cases: no case reference of its own.
		return templates.Data{AlertRef: in.AlertID, Severity: in.Severity, Location: loc, Agency: in.AgencyName,
			Deadline: in.Deadline, Link: "VioGén", Digest: in.Digest}
	}
	return templates.Data{
		AlertRef: in.AlertID, CaseRef: in.CaseRef, Severity: in.Severity,
		Level: levelText(in.Level), PrevLevel: levelText(in.PrevLevel), EventType: string(in.EventType),
		Deadline: in.Deadline, Location: loc, Agency: in.AgencyName, OtherAgency: in.OtherAgency,
		AckCode: in.AckCode, Step: in.Step, Round: in.Round, Unrouted: in.Unrouted,
		Missed: in.Missed, MissedSince: in.MissedSince,
		Link: "VioGén > " + in.CaseRef, Digest: in.Digest,
	}
}

// Render renders an intent's template for one channel in its locale.
func Render(set *templates.Set, in Intent, channel string, loc *time.Location) (templates.Rendered, error) {
	r, err := set.Render(in.Template, channel, in.Locale, TemplateData(in, loc))
	if err != nil {
		return r, fmt.Errorf("render %s for %s: %w", in.Template, channel, err)
	}
	return r, nil
}

func levelText(l event.Level) string {
	if l == event.LevelNone {
		return ""
	}
	return l.String()
}
