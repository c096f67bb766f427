package sim

import (
	"context"
	"fmt"
	"strings"

	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/event"
)

// written records what the pipeline writes: intents (notifications,
// digests), internal timer events, dead letters.
func (e *Engine) written(m kafka.Message) {
	switch m.Topic {
	case dispatcher.TopicIntents:
		e.intent(m.Value)
	case dispatcher.TopicInternal:
		ev, err := event.DecodeInternal(m.Value)
		if err == nil && ev.Timer != nil {
			e.add(Record{Kind: KindTimer, Case: ev.CaseID, Event: string(ev.Type), EventID: ev.ID, Due: ev.Timer.DueAt})
		}
	case dispatcher.TopicDLQ:
		e.add(Record{Kind: KindDeadLetter, Case: string(m.Key), Detail: header(m, dispatcher.HeaderReason)})
	}
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// intent records one decided notification and renders it for each of its
// channels with the real templates, as the deliver stage would.
func (e *Engine) intent(b []byte) {
	in, err := dispatcher.DecodeIntent(b)
	if err != nil {
		e.add(Record{Kind: KindError, Detail: fmt.Sprintf("unreadable intent: %v", err)})
		return
	}
	r := Record{Kind: KindNotification, Case: in.CaseRef, Rule: in.Rule, Alert: in.AlertID, Step: in.Step + 1, Round: in.Round,
		Agency: in.AgencyID, Contact: in.ContactID, Channels: in.Channels, Template: in.Template, EventID: in.EventID}
	if _, ct, ok := e.cfg.Contact(in.ContactID); ok {
		r.Role = ct.Role
	}
	switch {
	case in.Kind == dispatcher.KindDigest:
		r.Kind, r.Case, r.Alert, r.Step, r.Rule, r.Schedule = KindDigest, "", "", 0, "", in.Rule
		for _, d := range in.Digest {
			r.Cases = append(r.Cases, d.CaseRef)
		}
	case in.PagerAction != "" && in.PagerAction != "trigger":
		r.Kind, r.Action = KindPagerUpdate, in.PagerAction
	default:
		e.Notifications++
	}
	if in.Unrouted {
		r.Detail = "unrouted"
	}
	e.add(r)
	for _, ch := range in.Channels {
		if _, err := dispatcher.Render(e.tmpl, in, ch, e.cfg.Location()); err != nil {
			e.add(Record{Kind: KindError, Case: in.CaseRef, Rule: in.Rule, Contact: in.ContactID, Detail: err.Error()})
		}
	}
}

// recordStage records each event as the decide stage receives it, with
// what applying it to its case did, and passes it on.
type recordStage struct {
	e    *Engine
	next dispatcher.Stage
}

// Handle implements dispatcher.Stage.
func (s recordStage) Handle(ctx context.Context, items []dispatcher.Item) error {
	for _, it := range items {
		s.e.Events++
		s.e.touched[it.Event.CaseID] = true
		if it.Event.Type == event.EscalationTimeout || it.Event.Type == event.CheckinMissed || it.Event.Type == event.ReassessmentOverdue {
			continue // recorded as the timer that fired
		}
		if it.Event.Type == event.EscalationAcknowledged {
			continue // recorded as the input and the escalation's change
		}
		s.e.add(Record{Kind: KindEvent, Case: it.Event.CaseID, Event: string(it.Event.Type), EventID: it.Event.ID,
			Detail: transitionText(it.Outcome.Transition)})
	}
	return s.next.Handle(ctx, items)
}

func transitionText(tr event.Transition) string {
	var parts []string
	if tr.From != tr.To {
		parts = append(parts, fmt.Sprintf("level %s → %s", levelName(tr.From), levelName(tr.To)))
	} else if tr.To != event.LevelNone {
		parts = append(parts, "level "+tr.To.String())
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{tr.Moved, "moved"}, {tr.Stale, "stale"}, {tr.Duplicate, "duplicate"}} {
		if f.on {
			parts = append(parts, f.name)
		}
	}
	return strings.Join(parts, ", ")
}

func levelName(l event.Level) string {
	if l == event.LevelNone {
		return "none"
	}
	return l.String()
}

// decisionHook turns the decide stage's own decision log lines into
// timeline records: what was sent, held back or merged.
type decisionHook struct{ e *Engine }

func (h *decisionHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *decisionHook) Fire(en *logrus.Entry) error {
	f := func(k string) string { s, _ := en.Data[k].(string); return s }
	r := Record{Case: f("case_ref"), Rule: f("rule"), Alert: f("alert_id")}
	switch {
	case en.Message == "alert notify":
		r.Kind, r.Action, r.Detail = KindDecision, "notify", "policy "+f("policy")
		h.e.watchEscalation(r.Case, r.Alert)
	case en.Message == "alert suppressed":
		r.Kind, r.Detail = KindSuppressed, "suppression window of the rule holds it back"
	case strings.HasPrefix(en.Message, "alert merged into escalation"):
		r.Kind, r.Detail = KindMerged, "merged into open escalation "+f("escalation_id")
	case en.Message == "schedule fired":
		r.Kind, r.Schedule, r.Detail = KindSchedule, f("schedule"), fmt.Sprintf("%v digests, %v cases due", en.Data["digests"], en.Data["cases"])
	case en.Level <= logrus.ErrorLevel && en.Message != "escalation unacknowledged: coordinating center told":
		r.Kind, r.Detail = KindError, en.Message
		if err, ok := en.Data[logrus.ErrorKey].(error); ok {
			r.Detail += ": " + err.Error()
		}
	default:
		return nil
	}
	h.e.add(r)
	return nil
}
