package pager

import (
	"strings"

	"github.com/viogen-alerts/dispatcher/channels"
)

// Limits of the Events API v2.
const (
	MaxSummary  = 1024
	MaxDedupKey = 255
)

// Event is an Events API v2 request body.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key,omitempty"`
	Payload     *Payload `json:"payload,omitempty"`
}

// Payload describes a triggered incident.
type Payload struct {
	Summary  string `json:"summary"`
	Source   string `json:"source"`
	Severity string `json:"severity"`
}

// Response is the Events API's answer, for success and errors alike.
type Response struct {
	Status   string   `json:"status"`
	Message  string   `json:"message"`
	DedupKey string   `json:"dedup_key"`
	Errors   []string `json:"errors"`
}

// NewEvent maps m to an event. Only trigger carries a payload; dedup_key is
// the alert id so repeats and later resolves hit the same incident.
func NewEvent(m channels.Message, defaultSource string) Event {
	action := strings.ToLower(m.Action)
	if action == "" {
		action = "trigger"
	}
	dedup := m.AlertID
	if dedup == "" {
		dedup = m.ID
	}
	e := Event{RoutingKey: m.To, EventAction: action, DedupKey: channels.Truncate(dedup, MaxDedupKey)}
	if action == "trigger" {
		e.Payload = &Payload{Summary: summary(m), Source: source(m, defaultSource), Severity: severity(m)}
	}
	return e
}

func summary(m channels.Message) string {
	s := m.Body
	if s == "" {
		s = m.Subject
	}
	return channels.Truncate(s, MaxSummary)
}

func source(m channels.Message, def string) string {
	if m.Source != "" {
		return m.Source
	}
	return def
}

// severity keeps a valid PagerDuty severity and otherwise falls back, as an
// unknown word would make PagerDuty reject the page.
func severity(m channels.Message) string {
	s := strings.ToLower(m.Severity)
	switch s {
	case "critical", "error", "warning", "info":
		return s
	}
	if m.Critical {
		return "critical"
	}
	return "warning"
}

func validAction(a string) bool {
	return a == "trigger" || a == "acknowledge" || a == "resolve"
}
