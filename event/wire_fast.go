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
		r.Object(func(k string) {
			switch k {
			case "level":
				w.Risk.Level = rawString(r)
			case "previous":
				w.Risk.Previous = rawString(r)
			case "manual":
				w.Risk.Manual = r.Bool()
			default:
				r.Fail()
			}
		})
	case "incident":
		w.Incident = &wireIncident{}
		strFields(r, []string{"kind", "reassessment_due_by"}, &w.Incident.Kind, &w.Incident.ReassessmentDueBy)
	case "checkin":
		w.Checkin = &Checkin{}
		strFields(r, []string{"kind", "unit"}, &w.Checkin.Kind, &w.Checkin.Unit)
	case "protection_order":
		p := &wireProtectionOrder{}
		w.ProtectionOrder = p
		r.Object(func(k string) {
			switch k {
			case "court":
				p.Court = r.Str()
			case "measures":
				p.Measures = r.Strs()
			case "valid_until":
				p.ValidUntil = r.Str()
			default:
				r.Fail()
			}
		})
	case "breach":
		w.Breach = &Breach{}
		strFields(r, []string{"channel"}, &w.Breach.Channel)
	case "release":
		w.Release = &wireRelease{}
		strFields(r, []string{"effective_at", "until", "destination_municipality"},
			&w.Release.EffectiveAt, &w.Release.Until, &w.Release.DestinationMunicipality)
	case "alarm":
		a := &Alarm{}
		w.Alarm = a
		r.Object(func(k string) {
			switch k {
			case "kind":
				a.Kind = r.Str()
			case "distance_m":
				d := r.Int()
				a.DistanceM = &d
			default:
				r.Fail()
			}
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
		r.Object(func(k string) {
			switch k {
			case "to":
				rl.To = readJurisdiction(r)
			case "responsible_unit":
				rl.ResponsibleUnit = r.Str()
			default:
				r.Fail()
			}
		})
	case "closure":
		w.Closure = &Closure{}
		strFields(r, []string{"reason"}, &w.Closure.Reason)
	case "timer":
		t := &wireTimer{}
		w.Timer = t
		r.Object(func(k string) {
			switch k {
			case "due_at":
				t.DueAt = r.Str()
			case "escalation_id":
				t.EscalationID = r.Str()
			case "step":
				t.Step = r.Int()
			case "round":
				t.Round = r.Int()
			default:
				r.Fail()
			}
		})
	case "ack":
		a := &Ack{}
		w.Ack = a
		strFields(r, []string{"escalation_id", "agency", "via", "operator"}, &a.EscalationID, &a.Agency, &a.Via, &a.Operator)
	default:
		r.Fail()
	}
}

func readJurisdiction(r *jsonfast.Reader) *Jurisdiction {
	j := &Jurisdiction{}
	strFields(r, []string{"municipality", "province", "region"}, &j.Municipality, &j.Province, &j.Region)
	return j
}

// strFields reads an object of strings: the value of keys[i] goes to
// into[i].
func strFields(r *jsonfast.Reader, keys []string, into ...*string) {
	r.Object(func(key string) {
		for i, k := range keys {
			if k == key {
				*into[i] = r.Str()
				return
			}
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
