package rules

import "github.com/viogen-alerts/dispatcher/event"

// RouteContext is everything routing needs to know about a case, taken
// from the event, its transition and the case when the alert is raised. It
// travels with the alert (JSON) so later escalation steps resolve against
// the same places even though their trigger is a timer event.
type RouteContext struct {
	Jurisdiction    event.Jurisdiction `json:"jurisdiction"`
	ResponsibleUnit string             `json:"responsible_unit"`
	// Where the case was before a relocation (empty when it did not move).
	PreviousJurisdiction event.Jurisdiction `json:"previous_jurisdiction,omitzero"`
	PreviousUnit         string             `json:"previous_unit,omitempty"`
	// INE municipality the released aggressor goes to.
	ReleaseDestination string `json:"release_destination,omitempty"`
}

// NewRouteContext reads the routing facts of one evaluation. The case is
// the state after the event and the transition says where it was before;
// if the state stage did not record a relocation the event carries, the
// case is taken as the old place and the event's destination as the new.
func NewRouteContext(ev event.Event, tr event.Transition, c event.Case) RouteContext {
	rc := RouteContext{Jurisdiction: c.Jurisdiction, ResponsibleUnit: c.ResponsibleUnit}
	if rc.Jurisdiction.Municipality == "" && rc.Jurisdiction.Province == "" && rc.Jurisdiction.Region == "" {
		rc.Jurisdiction = ev.Jurisdiction
	}
	if rc.ResponsibleUnit == "" {
		rc.ResponsibleUnit = ev.ResponsibleUnit
	}
	if tr.Moved {
		rc.PreviousJurisdiction, rc.PreviousUnit = tr.PreviousJurisdiction, tr.PreviousUnit
	} else if r := ev.Relocation; r != nil {
		to := completeJurisdiction(r.To)
		unitChanges := r.ResponsibleUnit != "" && r.ResponsibleUnit != rc.ResponsibleUnit
		placeChanges := to.Municipality != "" && to.Municipality != rc.Jurisdiction.Municipality
		if unitChanges || placeChanges {
			rc.PreviousJurisdiction, rc.PreviousUnit = rc.Jurisdiction, rc.ResponsibleUnit
			if to.Municipality != "" {
				rc.Jurisdiction = to
			}
			if r.ResponsibleUnit != "" {
				rc.ResponsibleUnit = r.ResponsibleUnit
			}
		}
	}
	if r := ev.Release; r != nil {
		rc.ReleaseDestination = r.DestinationMunicipality
	}
	rc.Jurisdiction = completeJurisdiction(rc.Jurisdiction)
	rc.PreviousJurisdiction = completeJurisdiction(rc.PreviousJurisdiction)
	return rc
}

// completeJurisdiction fills the province from the INE municipality code, whose
// first two digits are the province, and the region from the province.
func completeJurisdiction(j event.Jurisdiction) event.Jurisdiction {
	if j.Province == "" && len(j.Municipality) == 5 {
		j.Province = j.Municipality[:2]
	}
	if j.Region == "" {
		j.Region = provinceRegion[j.Province]
	}
	return j
}

func (rc *RouteContext) unitChanged() bool {
	return rc.PreviousUnit != "" && rc.PreviousUnit != rc.ResponsibleUnit
}

func (rc *RouteContext) placeChanged() bool {
	p := rc.PreviousJurisdiction
	return (p.Municipality != "" || p.Province != "" || p.Region != "") && p != rc.Jurisdiction
}

func (rc *RouteContext) moved() bool { return rc.unitChanged() || rc.placeChanged() }
