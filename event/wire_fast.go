package event

import (
	"encoding/json"

	"github.com/viogen-alerts/dispatcher/internal/jsonfast"
)

// fillWire reads b into w as json.Unmarshal does, for a message whose keys
// keysOK has checked (the contract's, each at most once, at every level),
// without reflection: the typed decode was most of an event's decoding
// time. A value it does not take (an escape, a null, a fraction, a level
// that is not a string) makes it return false, and the caller decodes with
// encoding/json from a fresh wire; so whatever it accepts reads exactly as
// json.Unmarshal reads it (TestFillWireMatchesEncodingJSON).
func fillWire(b []byte, w *wire) bool {
	r := jsonfast.NewReader(string(b))
	r.Object(func(key string) {
		switch key {
		case "id":
			w.ID = r.Str()
		case "type":
			w.Type = r.Str()
		case "case_id":
			w.CaseID = r.Str()
		case "occurred_at":
			w.OccurredAt = r.Str()
		case "source":
			w.Source = r.Str()
		case "jurisdiction":
			w.Jurisdiction = readJurisdiction(&r)
		case "responsible_unit":
			w.ResponsibleUnit = r.Str()
		case "version":
			v := r.Int64()
			w.Version = &v
		default:
			fillBody(&r, key, w)
		}
	})
	return r.End()
}

// fillBody reads the body objects of the event types.
func fillBody(r *jsonfast.Reader, key string, w *wire) {
	switch key {
	case "risk":
		w.Risk = &wireRisk{}
		fields(r, map[string]func(){
			"level":    func() { w.Risk.Level = rawString(r) },
			"previous": func() { w.Risk.Previous = rawString(r) },
			"manual":   func() { w.Risk.Manual = r.Bool() },
		})
	case "incident":
		w.Incident = &wireIncident{}
		strFields(r, map[string]*string{"kind": &w.Incident.Kind, "reassessment_due_by": &w.Incident.ReassessmentDueBy})
	case "checkin":
		w.Checkin = &Checkin{}
		strFields(r, map[string]*string{"kind": &w.Checkin.Kind, "unit": &w.Checkin.Unit})
	case "protection_order":
		p := &wireProtectionOrder{}
		w.ProtectionOrder = p
		fields(r, map[string]func(){
			"court":       func() { p.Court = r.Str() },
			"measures":    func() { p.Measures = r.Strs() },
			"valid_until": func() { p.ValidUntil = r.Str() },
		})
	case "breach":
		w.Breach = &Breach{}
		strFields(r, map[string]*string{"channel": &w.Breach.Channel})
	case "release":
		w.Release = &wireRelease{}
		strFields(r, map[string]*string{"effective_at": &w.Release.EffectiveAt, "until": &w.Release.Until,
			"destination_municipality": &w.Release.DestinationMunicipality})
	case "alarm":
		a := &Alarm{}
		w.Alarm = a
		fields(r, map[string]func(){
			"kind":       func() { a.Kind = r.Str() },
			"distance_m": func() { d := r.Int(); a.DistanceM = &d },
		})
	default:
		fillInternal(r, key, w)
	}
}

// fillInternal reads the rest: relocation, closure, timer, ack.
func fillInternal(r *jsonfast.Reader, key string, w *wire) {
	switch key {
	case "relocation":
		rl := &wireRelocation{}
		w.Relocation = rl
		fields(r, map[string]func(){
			"to":               func() { rl.To = readJurisdiction(r) },
			"responsible_unit": func() { rl.ResponsibleUnit = r.Str() },
		})
	case "closure":
		w.Closure = &Closure{}
		strFields(r, map[string]*string{"reason": &w.Closure.Reason})
	case "timer":
		t := &wireTimer{}
		w.Timer = t
		fields(r, map[string]func(){
			"due_at":        func() { t.DueAt = r.Str() },
			"escalation_id": func() { t.EscalationID = r.Str() },
			"step":          func() { t.Step = r.Int() },
			"round":         func() { t.Round = r.Int() },
		})
	case "ack":
		a := &Ack{}
		w.Ack = a
		strFields(r, map[string]*string{"escalation_id": &a.EscalationID, "agency": &a.Agency, "via": &a.Via, "operator": &a.Operator})
	default:
		r.Fail()
	}
}

func readJurisdiction(r *jsonfast.Reader) *Jurisdiction {
	j := &Jurisdiction{}
	r.Object(func(key string) {
		switch key {
		case "municipality":
			j.Municipality = r.Str()
		case "province":
			j.Province = r.Str()
		case "region":
			j.Region = r.Str()
		default:
			r.Fail()
		}
	})
	return j
}

// fields reads an object whose keys each have a reader.
func fields(r *jsonfast.Reader, read map[string]func()) {
	r.Object(func(key string) {
		if f, ok := read[key]; ok {
			f()
			return
		}
		r.Fail()
	})
}

// strFields reads an object of strings.
func strFields(r *jsonfast.Reader, into map[string]*string) {
	r.Object(func(key string) {
		if p, ok := into[key]; ok {
			*p = r.Str()
			return
		}
		r.Fail()
	})
}

// rawString is a json.RawMessage of a string value (quotes included), as
// json.Unmarshal keeps it; anything else is left to encoding/json.
func rawString(r *jsonfast.Reader) json.RawMessage {
	tok := r.Raw()
	if !r.OK() {
		return nil
	}
	return json.RawMessage(tok)
}
