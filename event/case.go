package event

import "time"

// Case is the dispatcher's durable view of one case, as kept in Redis.
type Case struct {
	ID              string       `json:"id"`
	Level           Level        `json:"level"`
	Jurisdiction    Jurisdiction `json:"jurisdiction"`
	ResponsibleUnit string       `json:"responsible_unit"`
	Active          bool         `json:"active"`
	Version         int64        `json:"version,omitempty"`
	LastEventAt     time.Time    `json:"last_event_at"`
	// LastCheckinAt is when police contact was last recorded (zero = never).
	LastCheckinAt time.Time `json:"last_checkin_at,omitempty"`
}

// Transition is what one event did to its case.
type Transition struct {
	From    Level `json:"from"`
	To      Level `json:"to"`
	Rising  bool  `json:"rising"`
	Falling bool  `json:"falling"`
	// Stale is true when the event was older than the case's latest and
	// changed nothing; Duplicate when its id had been applied before.
	Stale     bool `json:"stale,omitempty"`
	Duplicate bool `json:"duplicate,omitempty"`
	// Moved is true when the jurisdiction or responsible unit changed;
	// PreviousJurisdiction and PreviousUnit then say where it was.
	Moved                bool         `json:"moved,omitempty"`
	PreviousJurisdiction Jurisdiction `json:"previous_jurisdiction,omitempty"`
	PreviousUnit         string       `json:"previous_unit,omitempty"`
	// Missed is, for a timer event (checkin.missed, reassessment.overdue)
	// that was not stale, how many periods its deadline covered when it
	// fired: 1 on time, more after an outage (one alert for them all).
	// MissedSince is that deadline: the first one missed.
	Missed      int       `json:"missed,omitempty"`
	MissedSince time.Time `json:"missed_since,omitzero"`
}

// NewTransition derives Rising and Falling from two levels.
func NewTransition(from, to Level) Transition {
	return Transition{From: from, To: to, Rising: to > from, Falling: to < from && to != LevelNone}
}
