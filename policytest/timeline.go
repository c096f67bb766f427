package policytest

import (
	"time"

	"gopkg.in/yaml.v3"

	"github.com/viogen-alerts/dispatcher/sim"
)

var inputKeys = []string{"at", "note", "event", "checkin", "ack", "sms_ack"}

// parseTimeline reads the inputs: each has its time and one of event,
// checkin (a checkin.recorded event), ack (by agency, via the API) or
// sms_ack (a contact's "ACK <code>" reply).
func (f *File) parseTimeline(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return f.errAt(n, "timeline: want a list of inputs")
	}
	for _, item := range n.Content {
		m, err := f.mapping(item, inputKeys)
		if err != nil {
			return err
		}
		if m["at"] == nil {
			return f.errAt(item, "input without at")
		}
		at, err := f.when(m["at"])
		if err != nil {
			return err
		}
		in, err := f.input(item, m, at)
		if err != nil {
			return err
		}
		f.Inputs = append(f.Inputs, in)
		f.lines = append(f.lines, item.Line)
	}
	return nil
}

func (f *File) input(item *yaml.Node, m map[string]*yaml.Node, at time.Time) (sim.Input, error) {
	in := sim.Input{At: at}
	var err error
	given := 0
	for _, k := range []string{"event", "checkin", "ack", "sms_ack"} {
		if m[k] != nil {
			given++
		}
	}
	if given != 1 {
		return in, f.errAt(item, "an input has exactly one of event, checkin, ack, sms_ack")
	}
	switch {
	case m["event"] != nil:
		in.Case, in.Event, err = f.eventJSON(m["event"], at)
	case m["checkin"] != nil:
		in.Case, in.Event, err = f.checkin(m["checkin"], at)
	case m["ack"] != nil:
		in.Ack, err = f.ack(m["ack"], "api")
	default:
		in.Ack, err = f.ack(m["sms_ack"], "sms")
	}
	return in, err
}

// checkin is a checkin.recorded event: {case, kind, unit} and any other
// event field.
func (f *File) checkin(n *yaml.Node, at time.Time) (string, []byte, error) {
	m, err := f.mapping(n, []string{"case", "kind", "unit", "id", "occurred_at"})
	if err != nil {
		return "", nil, err
	}
	ev := &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}
	add := func(k string, v *yaml.Node) {
		ev.Content = append(ev.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, v)
	}
	add("type", &yaml.Node{Kind: yaml.ScalarNode, Value: "checkin.recorded"})
	for _, k := range []string{"case", "id", "occurred_at"} {
		if m[k] != nil {
			add(k, m[k])
		}
	}
	ck := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range []string{"kind", "unit"} {
		if m[k] != nil {
			ck.Content = append(ck.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, m[k])
		}
	}
	add("checkin", ck)
	return f.eventJSON(ev, at)
}

func (f *File) ack(n *yaml.Node, via string) (*sim.Ack, error) {
	known := []string{"case", "agency", "rule"}
	if via == "sms" {
		known = []string{"case", "contact", "rule"}
	}
	m, err := f.mapping(n, known)
	if err != nil {
		return nil, err
	}
	a := &sim.Ack{Case: scalar(m["case"]), Agency: scalar(m["agency"]), Contact: scalar(m["contact"]), Rule: scalar(m["rule"]), Via: via}
	switch {
	case a.Case == "":
		return nil, f.errAt(n, "ack: case is required")
	case via == "api" && a.Agency == "":
		return nil, f.errAt(n, "ack: agency is required (the agency acknowledging)")
	case via == "sms" && a.Contact == "":
		return nil, f.errAt(n, "sms_ack: contact is required (the contact replying ACK <code>)")
	}
	return a, nil
}
