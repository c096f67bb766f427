package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Kinds of timeline records.
const (
	KindInput        = "input"        // an acknowledgement given by the timeline
	KindEvent        = "event"        // an event applied to its case (upstream or internal)
	KindDeadLetter   = "dead_letter"  // an event the pipeline refused
	KindTimer        = "timer"        // a deadline fired: checkin.missed, reassessment.overdue, escalation.timeout
	KindDecision     = "decision"     // an alert decided: its first step is sent
	KindSuppressed   = "suppressed"   // an alert held back by its rule's suppression window
	KindMerged       = "merged"       // a critical alert merged into an open escalation
	KindNotification = "notification" // one intent: a contact and its channel plan
	KindPagerUpdate  = "pager_update" // a pager incident acknowledged or resolved (action)
	KindEscalation   = "escalation"   // opened, repeated, climbed, skipped, acknowledged, closed
	KindSchedule     = "schedule"     // a schedule fired
	KindDigest       = "digest"       // one digest intent of a schedule firing
	KindAckRefused   = "ack_refused"
	KindError        = "error" // a configuration or template fault the run met
)

// Record is one thing that happened in a simulation. Steps are counted
// from 1, as people read a policy; rounds from 0 (the first sending).
type Record struct {
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"`
	Case     string    `json:"case,omitempty"`
	Event    string    `json:"event,omitempty"`
	EventID  string    `json:"event_id,omitempty"`
	Rule     string    `json:"rule,omitempty"`
	Alert    string    `json:"alert,omitempty"`
	Action   string    `json:"action,omitempty"`
	Step     int       `json:"step,omitempty"`
	Round    int       `json:"round,omitempty"`
	Agency   string    `json:"agency,omitempty"`
	Contact  string    `json:"contact,omitempty"`
	Role     string    `json:"role,omitempty"`
	Channels []string  `json:"channels,omitempty"`
	Template string    `json:"template,omitempty"`
	Schedule string    `json:"schedule,omitempty"`
	Cases    []string  `json:"cases,omitempty"` // of a digest
	// Due is a timer's deadline, or when an escalation's step times out.
	Due    time.Time `json:"due,omitzero"`
	Detail string    `json:"detail,omitempty"`
}

// FormatTime writes t in loc as people read it: date, time with seconds
// when they are not zero, the zone's abbreviation and offset.
func FormatTime(t time.Time, loc *time.Location) string {
	lt := t.In(loc)
	layout := "2006-01-02 15:04"
	if lt.Second() != 0 || lt.Nanosecond() != 0 {
		layout = "2006-01-02 15:04:05"
	}
	return lt.Format(layout + " MST (-07:00)")
}

// Text is the record as one line of a timeline, times in loc.
func (r Record) Text(loc *time.Location) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-13s", FormatTime(r.At, loc), r.Kind)
	if r.Case != "" {
		fmt.Fprintf(&b, " %s", r.Case)
	}
	b.WriteString(r.summary())
	detail := r.Detail
	if !r.Due.IsZero() {
		due := "due " + FormatTime(r.Due, loc)
		if r.Kind == KindEscalation {
			due = "ack " + due
		}
		detail = strings.TrimPrefix(detail+", "+due, ", ")
	}
	if detail != "" {
		fmt.Fprintf(&b, "  (%s)", detail)
	}
	return b.String()
}

func (r Record) summary() string {
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	if r.Event != "" {
		add("%s", r.Event)
	}
	if r.Rule != "" {
		add("rule %s", r.Rule)
	}
	if r.Action != "" {
		add("%s", r.Action)
	}
	if r.Step > 0 {
		add("step %d", r.Step)
	}
	if r.Round > 0 {
		add("round %d", r.Round)
	}
	if r.Agency != "" || r.Contact != "" {
		add("%s", target(r.Agency, r.Contact, r.Role))
	}
	if len(r.Channels) > 0 {
		add("via %s", strings.Join(r.Channels, ","))
	}
	if r.Template != "" {
		add("template %s", r.Template)
	}
	if r.Schedule != "" {
		add("schedule %s", r.Schedule)
	}
	if len(r.Cases) > 0 {
		add("cases %s", strings.Join(r.Cases, ","))
	}
	if len(parts) == 0 {
		return ""
	}
	return "  " + strings.Join(parts, "  ")
}

func target(agency, contact, role string) string {
	s := agency
	if contact != "" {
		s += "/" + contact
	}
	if role != "" {
		s += " (" + role + ")"
	}
	return s
}

// WriteText writes records one per line, times in loc.
func WriteText(w io.Writer, recs []Record, loc *time.Location) error {
	for _, r := range recs {
		if _, err := fmt.Fprintln(w, r.Text(loc)); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes records as JSON lines, times in loc (RFC 3339 with
// the offset in force then).
func WriteJSON(w io.Writer, recs []Record, loc *time.Location) error {
	enc := json.NewEncoder(w)
	for _, r := range recs {
		r.At = r.At.In(loc)
		if !r.Due.IsZero() {
			r.Due = r.Due.In(loc)
		}
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("encode record: %w", err)
		}
	}
	return nil
}
