// Package dispatcher is the worker: it consumes case events, keeps case
// state in Redis, decides who must be told, and delivers notifications.
package dispatcher

import (
	"context"

	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/event"
)

// Item is one decoded event with what applying it to its case did.
type Item struct {
	Msg     kafka.Message
	Event   event.Event
	Outcome Outcome
}

// Stage is a step after case state is durable. Handle must be idempotent:
// after a crash or a transient error the same items come again. Any error
// is treated as transient: the batch is retried and not committed.
type Stage interface {
	Handle(ctx context.Context, items []Item) error
}

// LogStage logs each processed event with its transition (no personal
// data: the case id is an opaque reference).
type LogStage struct{ Log logrus.FieldLogger }

// Handle implements Stage.
func (s LogStage) Handle(_ context.Context, items []Item) error {
	for _, it := range items {
		s.Log.WithFields(itemFields(it)).Info("event processed")
	}
	return nil
}

func itemFields(it Item) logrus.Fields {
	tr := it.Outcome.Transition
	return logrus.Fields{
		"case_ref": it.Event.CaseID, "event_id": it.Event.ID, "type": string(it.Event.Type),
		"from": levelName(tr.From), "to": levelName(tr.To), "rising": tr.Rising, "falling": tr.Falling,
		"stale": tr.Stale, "duplicate": tr.Duplicate, "moved": tr.Moved,
		"unit": it.Outcome.Case.ResponsibleUnit, "municipality": it.Outcome.Case.Jurisdiction.Municipality,
	}
}

func levelName(l event.Level) string {
	if l == event.LevelNone {
		return "none"
	}
	return l.String()
}
