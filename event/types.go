// Package event is the contract with upstream systems: the case-change
// events the dispatcher consumes, their risk levels, and strict decoding.
package event

import "time"

// Type names what happened to a case.
type Type string

// Upstream event types (docs/events.md).
const (
	CaseOpened             Type = "case.opened"
	RiskAssessed           Type = "risk.assessed"
	IncidentReported       Type = "incident.reported"
	CheckinRecorded        Type = "checkin.recorded"
	ProtectionOrderIssued  Type = "protection_order.issued"
	ProtectionOrderExpired Type = "protection_order.expired"
	BreachReported         Type = "breach.reported"
	PenitentiaryRelease    Type = "penitentiary.release"
	DeviceAlarm            Type = "device.alarm"
	CaseRelocated          Type = "case.relocated"
	CaseClosed             Type = "case.closed"
	CaseReactivated        Type = "case.reactivated"
)

// Internal event types, produced only by the dispatcher itself on its own
// topic; upstream messages of these types are rejected.
const (
	CheckinMissed          Type = "checkin.missed"
	ReassessmentOverdue    Type = "reassessment.overdue"
	EscalationTimeout      Type = "escalation.timeout"
	EscalationAcknowledged Type = "escalation.acknowledged"
)

// UpstreamTypes lists every type an upstream system may publish.
var UpstreamTypes = []Type{
	CaseOpened, RiskAssessed, IncidentReported, CheckinRecorded,
	ProtectionOrderIssued, ProtectionOrderExpired, BreachReported,
	PenitentiaryRelease, DeviceAlarm, CaseRelocated, CaseClosed, CaseReactivated,
}

// InternalTypes lists the types only the dispatcher produces.
var InternalTypes = []Type{CheckinMissed, ReassessmentOverdue, EscalationTimeout, EscalationAcknowledged}

// Jurisdiction places a case: INE municipality code (5 digits), province
// code (2 digits, the municipality code's first two) and region code.
type Jurisdiction struct {
	Municipality string `json:"municipality"`
	Province     string `json:"province"`
	Region       string `json:"region"`
}

// Event is one decoded, validated case-change event.
type Event struct {
	ID              string       `json:"id"`
	Type            Type         `json:"type"`
	CaseID          string       `json:"case_id"`
	OccurredAt      time.Time    `json:"occurred_at"`
	Source          string       `json:"source"`
	Jurisdiction    Jurisdiction `json:"jurisdiction"`
	ResponsibleUnit string       `json:"responsible_unit"`
	// Version is monotonic per case when the source provides it; 0 = absent.
	Version int64 `json:"version,omitempty"`

	Risk            *Risk            `json:"risk,omitempty"`
	Incident        *Incident        `json:"incident,omitempty"`
	Checkin         *Checkin         `json:"checkin,omitempty"`
	ProtectionOrder *ProtectionOrder `json:"protection_order,omitempty"`
	Breach          *Breach          `json:"breach,omitempty"`
	Release         *Release         `json:"release,omitempty"`
	Alarm           *Alarm           `json:"alarm,omitempty"`
	Relocation      *Relocation      `json:"relocation,omitempty"`
	Closure         *Closure         `json:"closure,omitempty"`
	Timer           *Timer           `json:"timer,omitempty"`
	Ack             *Ack             `json:"ack,omitempty"`
}

// Risk is the assessment carried by risk.assessed (and optionally by
// case.opened as the initial level).
type Risk struct {
	Level    Level `json:"level"`
	Previous Level `json:"previous,omitempty"`
	// Manual is true when an officer raised the level the algorithm proposed.
	Manual bool `json:"manual,omitempty"`
}

// Incident details a new aggression or complaint.
type Incident struct {
	Kind              string     `json:"kind,omitempty"`
	ReassessmentDueBy *time.Time `json:"reassessment_due_by,omitempty"`
}

// Checkin kinds.
const (
	CheckinPhone  = "phone"
	CheckinVisit  = "visit"
	CheckinPatrol = "patrol"
)

// Checkin is a police contact or patrol pass that took place.
type Checkin struct {
	Kind string `json:"kind"`
	Unit string `json:"unit"`
}

// ProtectionOrder is a court measure starting or ending.
type ProtectionOrder struct {
	Court      string     `json:"court,omitempty"`
	Measures   []string   `json:"measures,omitempty"`
	ValidUntil *time.Time `json:"valid_until,omitempty"`
}

// Breach is a broken court order.
type Breach struct {
	Channel string `json:"channel,omitempty"`
}

// Release is a leave or release of the aggressor from prison.
type Release struct {
	EffectiveAt             time.Time  `json:"effective_at"`
	Until                   *time.Time `json:"until,omitempty"`
	DestinationMunicipality string     `json:"destination_municipality"`
}

// Alarm kinds of a telematic bracelet (Cometa).
const (
	AlarmProximity = "proximity"
	AlarmTamper    = "tamper"
	AlarmBattery   = "battery"
	AlarmPanic     = "panic"
)

// Alarm is a bracelet alarm.
type Alarm struct {
	Kind      string `json:"kind"`
	DistanceM *int   `json:"distance_m,omitempty"`
}

// Relocation moves a case to another jurisdiction and possibly unit.
type Relocation struct {
	To              Jurisdiction `json:"to"`
	ResponsibleUnit string       `json:"responsible_unit"`
}

// Closure carries the reason of case.closed / case.reactivated.
type Closure struct {
	Reason string `json:"reason,omitempty"`
}

// Timer details an internal deadline event (checkin.missed,
// reassessment.overdue, escalation.timeout).
type Timer struct {
	DueAt        time.Time `json:"due_at"`
	EscalationID string    `json:"escalation_id,omitempty"`
	Step         int       `json:"step,omitempty"`
	Round        int       `json:"round,omitempty"`
}

// Ack details an internal escalation.acknowledged event.
type Ack struct {
	EscalationID string `json:"escalation_id"`
	Agency       string `json:"agency,omitempty"`
	Via          string `json:"via"`
	// Operator is the console operator who acknowledged (via "console").
	Operator string `json:"operator,omitempty"`
}

// IsInternal reports whether t is produced only by the dispatcher.
func (t Type) IsInternal() bool {
	for _, it := range InternalTypes {
		if t == it {
			return true
		}
	}
	return false
}

// Known reports whether t is an upstream or internal type.
func (t Type) Known() bool {
	if t.IsInternal() {
		return true
	}
	for _, ut := range UpstreamTypes {
		if t == ut {
			return true
		}
	}
	return false
}
