package dispatcher

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/rules"
)

// internalEvent builds a dispatcher-made event about a case. Its id must
// be deterministic in what it reports, so emitting it twice (a timer
// claimed again after a crash) is absorbed by event idempotency.
func internalEvent(id string, typ event.Type, caseRef string, rc rules.RouteContext, at time.Time) event.Event {
	return event.Event{
		ID: id, Type: typ, CaseID: caseRef, OccurredAt: at.UTC().Truncate(time.Millisecond), Source: "dispatcher",
		Jurisdiction: rc.Jurisdiction, ResponsibleUnit: rc.ResponsibleUnit,
	}
}

// publishInternal writes events to the dispatcher's own topic, keyed by
// case, so they are handled in order with the case's other events.
func publishInternal(ctx context.Context, w Sink, topic string, evs ...event.Event) error {
	msgs := make([]kafka.Message, 0, len(evs))
	for _, ev := range evs {
		b, err := event.Encode(ev)
		if err != nil {
			return err
		}
		msgs = append(msgs, kafka.Message{Topic: topic, Key: []byte(ev.CaseID), Value: b})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("write %d internal events: %w", len(msgs), err)
	}
	return nil
}

// Acknowledger turns an acknowledgement (API, SMS reply) into an
// escalation.acknowledged event on the internal topic; the decide stage
// applies it in order with the case's other events, so an ack never races
// a timeout.
type Acknowledger struct {
	Store  *EscalationStore
	Writer Sink
	Topic  string // default case-events.internal
	Now    func() time.Time
}

// Acknowledge publishes the acknowledgement of e by agency via channel.
func (a *Acknowledger) Acknowledge(ctx context.Context, e *Escalation, agency, via string) error {
	return a.AcknowledgeAs(ctx, e, agency, via, "")
}

// AcknowledgeAs is Acknowledge by a named console operator, whose id the
// audit trail records.
func (a *Acknowledger) AcknowledgeAs(ctx context.Context, e *Escalation, agency, via, operator string) error {
	topic := a.Topic
	if topic == "" {
		topic = TopicInternal
	}
	now := a.Now()
	id := fmt.Sprintf("ack:%s:%s:%d", e.ID, via, now.UnixMilli())
	ev := internalEvent(id, event.EscalationAcknowledged, e.CaseRef, e.Alert.Route, now)
	ev.Ack = &event.Ack{EscalationID: e.ID, Agency: agency, Via: via, Operator: operator}
	return publishInternal(ctx, a.Writer, topic, ev)
}
