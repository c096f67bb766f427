package rules

import "github.com/viogen-alerts/dispatcher/event"

// Env is the typed environment rule conditions are compiled against and
// evaluated in. Every optional part of an event is a value, not a pointer,
// so a condition such as `event.alarm.kind == "panic"` is simply false when
// the event carries no alarm. Levels are ints: compare them with the
// constants (`transition.to >= ALTO`).
type Env struct {
	Event      EventEnv      `expr:"event" doc:"The event being evaluated."`
	Case       CaseEnv       `expr:"case" doc:"The case as it is after the event."`
	Transition TransitionEnv `expr:"transition" doc:"What the event did to the case."`
	Risk       TransitionEnv `expr:"risk" doc:"Alias of transition (reads well in risk conditions: risk.rising)."`

	NONE    int `expr:"NONE" doc:"0: no level known."`
	BAJO    int `expr:"BAJO" doc:"1"`
	MEDIO   int `expr:"MEDIO" doc:"2"`
	ALTO    int `expr:"ALTO" doc:"3"`
	EXTREMO int `expr:"EXTREMO" doc:"4"`
}

// EventEnv is the event as rules see it.
type EventEnv struct {
	ID              string             `expr:"id" doc:"Event id."`
	Type            string             `expr:"type" doc:"Event type, e.g. \"risk.assessed\", \"checkin.missed\"."`
	Source          string             `expr:"source" doc:"Emitting system: viogen, cometa, penitentiary, court, a police unit; \"dispatcher\" for internal events."`
	Municipality    string             `expr:"municipality" doc:"INE municipality code carried by the event."`
	Province        string             `expr:"province" doc:"Province code carried by the event."`
	Region          string             `expr:"region" doc:"Region code carried by the event."`
	ResponsibleUnit string             `expr:"responsible_unit" doc:"Responsible unit carried by the event."`
	Risk            RiskEnv            `expr:"risk" doc:"Assessment (risk.assessed, case.opened)."`
	Incident        IncidentEnv        `expr:"incident" doc:"Incident (incident.reported)."`
	Checkin         CheckinEnv         `expr:"checkin" doc:"Police contact (checkin.recorded)."`
	ProtectionOrder ProtectionOrderEnv `expr:"protection_order" doc:"Court measure (protection_order.*)."`
	Breach          BreachEnv          `expr:"breach" doc:"Broken order (breach.reported)."`
	Release         ReleaseEnv         `expr:"release" doc:"Aggressor leave or release (penitentiary.release)."`
	Alarm           AlarmEnv           `expr:"alarm" doc:"Bracelet alarm (device.alarm)."`
	Relocation      RelocationEnv      `expr:"relocation" doc:"Move (case.relocated)."`
	Closure         ClosureEnv         `expr:"closure" doc:"Closure or reopening (case.closed, case.reactivated)."`
	Timer           TimerEnv           `expr:"timer" doc:"Internal deadline (checkin.missed, reassessment.overdue, escalation.timeout)."`
}

// RiskEnv is event.Risk.
type RiskEnv struct {
	Present  bool `expr:"present" doc:"The event carries an assessment."`
	Level    int  `expr:"level" doc:"Assessed level."`
	Previous int  `expr:"previous" doc:"Level before, as the source saw it."`
	Manual   bool `expr:"manual" doc:"An officer raised the proposed level."`
}

// IncidentEnv is event.Incident.
type IncidentEnv struct {
	Present bool   `expr:"present" doc:"The event carries an incident."`
	Kind    string `expr:"kind" doc:"Incident kind."`
}

// CheckinEnv is event.Checkin.
type CheckinEnv struct {
	Present bool   `expr:"present" doc:"The event carries a check-in."`
	Kind    string `expr:"kind" doc:"phone, visit or patrol."`
	Unit    string `expr:"unit" doc:"Unit that made the contact."`
}

// ProtectionOrderEnv is event.ProtectionOrder.
type ProtectionOrderEnv struct {
	Present  bool     `expr:"present" doc:"The event carries a protection order."`
	Court    string   `expr:"court" doc:"Issuing court."`
	Measures []string `expr:"measures" doc:"Measure codes; test with \"x\" in event.protection_order.measures."`
}

// BreachEnv is event.Breach.
type BreachEnv struct {
	Present bool   `expr:"present" doc:"The event carries a breach."`
	Channel string `expr:"channel" doc:"How the breach was detected."`
}

// ReleaseEnv is event.Release.
type ReleaseEnv struct {
	Present                 bool   `expr:"present" doc:"The event carries a release."`
	DestinationMunicipality string `expr:"destination_municipality" doc:"INE code of where the aggressor goes."`
	Temporary               bool   `expr:"temporary" doc:"A leave with an end date, not a final release."`
}

// AlarmEnv is event.Alarm.
type AlarmEnv struct {
	Present     bool   `expr:"present" doc:"The event carries an alarm."`
	Kind        string `expr:"kind" doc:"proximity, tamper, battery or panic."`
	HasDistance bool   `expr:"has_distance" doc:"distance_m is known."`
	DistanceM   int    `expr:"distance_m" doc:"Distance in metres (0 when unknown)."`
}

// RelocationEnv is event.Relocation.
type RelocationEnv struct {
	Present         bool   `expr:"present" doc:"The event carries a relocation."`
	Municipality    string `expr:"municipality" doc:"Destination municipality."`
	Province        string `expr:"province" doc:"Destination province."`
	Region          string `expr:"region" doc:"Destination region."`
	ResponsibleUnit string `expr:"responsible_unit" doc:"New responsible unit (may be unchanged)."`
}

// ClosureEnv is event.Closure.
type ClosureEnv struct {
	Present bool   `expr:"present" doc:"The event carries a closure."`
	Reason  string `expr:"reason" doc:"Reason given."`
}

// TimerEnv is event.Timer.
type TimerEnv struct {
	Present bool `expr:"present" doc:"The event is an internal deadline."`
	Step    int  `expr:"step" doc:"Escalation step that timed out."`
	Round   int  `expr:"round" doc:"Repeat round of that step."`
}

// CaseEnv is event.Case plus what the directory knows about it.
type CaseEnv struct {
	ID                string `expr:"id" doc:"Opaque case reference."`
	Level             int    `expr:"level" doc:"Current level."`
	Active            bool   `expr:"active" doc:"The case is active (not closed)."`
	Municipality      string `expr:"municipality" doc:"INE municipality code."`
	Province          string `expr:"province" doc:"Province code."`
	Region            string `expr:"region" doc:"Region code."`
	ResponsibleUnit   string `expr:"responsible_unit" doc:"Responsible unit id."`
	UnitKnown         bool   `expr:"unit_known" doc:"The responsible unit is an agency of the directory."`
	JurisdictionKnown bool   `expr:"jurisdiction_known" doc:"Some agency serves the case's municipality, province or region."`
}

// TransitionEnv is event.Transition.
type TransitionEnv struct {
	From                 int    `expr:"from" doc:"Level before the event."`
	To                   int    `expr:"to" doc:"Level after the event."`
	Level                int    `expr:"level" doc:"Same as to when the event set a level, else the case's level."`
	Rising               bool   `expr:"rising" doc:"The level went up."`
	Falling              bool   `expr:"falling" doc:"The level went down."`
	Moved                bool   `expr:"moved" doc:"The jurisdiction or responsible unit changed."`
	PreviousMunicipality string `expr:"previous_municipality" doc:"Municipality before a move."`
	PreviousUnit         string `expr:"previous_unit" doc:"Responsible unit before a move."`
}

func newEnv(ev *event.Event, tr *event.Transition, c *event.Case, rc *RouteContext, d *directory) Env {
	t := TransitionEnv{
		From:                 int(tr.From),
		To:                   int(tr.To),
		Level:                int(tr.To),
		Rising:               tr.Rising,
		Falling:              tr.Falling,
		Moved:                rc.moved(),
		PreviousMunicipality: rc.PreviousJurisdiction.Municipality,
		PreviousUnit:         rc.PreviousUnit,
	}
	if tr.To == event.LevelNone {
		t.Level = int(c.Level)
	}
	return Env{
		Event:      eventEnv(ev),
		Transition: t,
		Risk:       t,
		Case: CaseEnv{
			ID:                c.ID,
			Level:             int(c.Level),
			Active:            c.Active,
			Municipality:      rc.Jurisdiction.Municipality,
			Province:          rc.Jurisdiction.Province,
			Region:            rc.Jurisdiction.Region,
			ResponsibleUnit:   rc.ResponsibleUnit,
			UnitKnown:         d.byID[rc.ResponsibleUnit] != nil,
			JurisdictionKnown: d.serves(rc.Jurisdiction),
		},
		NONE: int(event.LevelNone), BAJO: int(event.Bajo), MEDIO: int(event.Medio),
		ALTO: int(event.Alto), EXTREMO: int(event.Extremo),
	}
}

func eventEnv(ev *event.Event) EventEnv {
	e := EventEnv{
		ID:              ev.ID,
		Type:            string(ev.Type),
		Source:          ev.Source,
		Municipality:    ev.Jurisdiction.Municipality,
		Province:        ev.Jurisdiction.Province,
		Region:          ev.Jurisdiction.Region,
		ResponsibleUnit: ev.ResponsibleUnit,
	}
	if r := ev.Risk; r != nil {
		e.Risk = RiskEnv{Present: true, Level: int(r.Level), Previous: int(r.Previous), Manual: r.Manual}
	}
	if i := ev.Incident; i != nil {
		e.Incident = IncidentEnv{Present: true, Kind: i.Kind}
	}
	if ci := ev.Checkin; ci != nil {
		e.Checkin = CheckinEnv{Present: true, Kind: ci.Kind, Unit: ci.Unit}
	}
	if po := ev.ProtectionOrder; po != nil {
		e.ProtectionOrder = ProtectionOrderEnv{Present: true, Court: po.Court, Measures: po.Measures}
	}
	if b := ev.Breach; b != nil {
		e.Breach = BreachEnv{Present: true, Channel: b.Channel}
	}
	if r := ev.Release; r != nil {
		e.Release = ReleaseEnv{Present: true, DestinationMunicipality: r.DestinationMunicipality, Temporary: r.Until != nil}
	}
	if a := ev.Alarm; a != nil {
		e.Alarm = AlarmEnv{Present: true, Kind: a.Kind}
		if a.DistanceM != nil {
			e.Alarm.HasDistance, e.Alarm.DistanceM = true, *a.DistanceM
		}
	}
	if r := ev.Relocation; r != nil {
		e.Relocation = RelocationEnv{Present: true, Municipality: r.To.Municipality, Province: r.To.Province,
			Region: r.To.Region, ResponsibleUnit: r.ResponsibleUnit}
	}
	if cl := ev.Closure; cl != nil {
		e.Closure = ClosureEnv{Present: true, Reason: cl.Reason}
	}
	if t := ev.Timer; t != nil {
		e.Timer = TimerEnv{Present: true, Step: t.Step, Round: t.Round}
	}
	return e
}
