package policytest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/viogen-alerts/dispatcher/sim"
)

// Expectation is one expected record (or, for nothing, a window in
// which no notification or digest matching it may be sent).
type Expectation struct {
	Line        int
	Kind        string // a sim record kind, or "nothing"
	At          time.Time
	From, Until time.Time // nothing
	M           Match
}

// Match holds the fields an expectation names; an empty one matches any.
type Match struct {
	Case     string   `yaml:"case"`
	Rule     string   `yaml:"rule"`
	Action   string   `yaml:"action"`
	Event    string   `yaml:"event"`
	Step     *int     `yaml:"step"`
	Round    *int     `yaml:"round"`
	Agency   string   `yaml:"agency"`
	Contact  string   `yaml:"contact"`
	Role     string   `yaml:"role"`
	Channel  string   `yaml:"channel"`  // one channel of the plan
	Channels []string `yaml:"channels"` // the whole plan, in order
	Template string   `yaml:"template"`
	Cases    []string `yaml:"cases"` // of a digest, in any order
	Schedule string   `yaml:"schedule"`
}

// kindKeys maps an expectation's key to the record kind and the fields
// it may name.
var kindKeys = map[string]struct {
	kind   string
	fields []string
}{
	"notify":      {sim.KindNotification, []string{"case", "rule", "step", "round", "agency", "contact", "role", "channel", "channels", "template"}},
	"escalation":  {sim.KindEscalation, []string{"case", "rule", "action", "step", "round"}},
	"schedule":    {sim.KindSchedule, []string{"schedule"}},
	"digest":      {sim.KindDigest, []string{"schedule", "agency", "contact", "role", "channel", "channels", "template", "cases"}},
	"suppressed":  {sim.KindSuppressed, []string{"case", "rule"}},
	"merged":      {sim.KindMerged, []string{"case", "rule"}},
	"timer":       {sim.KindTimer, []string{"case", "event"}},
	"ack_refused": {sim.KindAckRefused, []string{"case", "rule", "agency"}},
	"nothing":     {"nothing", []string{"from", "until", "case", "rule", "agency", "contact", "role", "channel"}},
}

var escalationActions = []string{"opened", "repeated", "climbed", "skipped", "acknowledged", "closed"}

func (f *File) parseExpect(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return f.errAt(n, "expect: want a list of expectations")
	}
	keys := []string{"at", "note"}
	for k := range kindKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys[2:])
	for _, item := range n.Content {
		m, err := f.mapping(item, keys)
		if err != nil {
			return err
		}
		x, err := f.expectation(item, m)
		if err != nil {
			return err
		}
		f.Expect = append(f.Expect, x)
	}
	return nil
}

func (f *File) expectation(item *yaml.Node, m map[string]*yaml.Node) (*Expectation, error) {
	var key string
	for k := range kindKeys {
		if m[k] != nil {
			if key != "" {
				return nil, f.errAt(item, "an expectation has one of notify, escalation, digest, schedule, suppressed, merged, timer, ack_refused, nothing; not %s and %s", key, k)
			}
			key = k
		}
	}
	if key == "" {
		return nil, f.errAt(item, "an expectation needs one of notify, escalation, digest, schedule, suppressed, merged, timer, ack_refused, nothing")
	}
	spec := kindKeys[key]
	body := m[key]
	fields, err := f.mapping(body, spec.fields)
	if err != nil {
		return nil, err
	}
	x := &Expectation{Line: item.Line, Kind: spec.kind}
	if err := decodeMatch(body, &x.M); err != nil {
		return nil, f.errAt(body, "%s: %v", key, err)
	}
	if x.M.Action != "" && !contains(escalationActions, x.M.Action) {
		return nil, f.errAt(fields["action"], "unknown escalation action %q (one of %s)", x.M.Action, strings.Join(escalationActions, ", "))
	}
	if key == "nothing" {
		return x, f.window(item, m, fields, x)
	}
	if m["at"] == nil {
		return nil, f.errAt(item, "%s without at", key)
	}
	x.At, err = f.when(m["at"])
	return x, err
}

// decodeMatch decodes an expectation's fields, leaving out the window
// keys of nothing.
func decodeMatch(n *yaml.Node, m *Match) error {
	c := *n
	c.Content = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k != "from" && k != "until" {
			c.Content = append(c.Content, n.Content[i], n.Content[i+1])
		}
	}
	return c.Decode(m)
}

// window reads nothing's [from, until): from defaults to at or start,
// until to the end of the run.
func (f *File) window(item *yaml.Node, m, fields map[string]*yaml.Node, x *Expectation) error {
	x.From, x.Until = f.Start, f.Until
	var err error
	if n := fields["from"]; n != nil {
		x.From, err = f.when(n)
	} else if n := m["at"]; n != nil {
		x.From, err = f.when(n)
	}
	if err != nil {
		return err
	}
	if n := fields["until"]; n != nil {
		if x.Until, err = f.when(n); err != nil {
			return err
		}
	}
	if !x.Until.After(x.From) {
		return f.errAt(item, "nothing: until must be after from")
	}
	return nil
}

// specificity orders expectations so the most specific claim their
// record first: a vague one never takes the record a precise one needs.
func (x *Expectation) specificity() int {
	m, n := x.M, 0
	for _, s := range []string{m.Case, m.Rule, m.Action, m.Event, m.Agency, m.Contact, m.Role, m.Channel, m.Template, m.Schedule} {
		if s != "" {
			n++
		}
	}
	if m.Step != nil {
		n++
	}
	if m.Round != nil {
		n++
	}
	return n + len(m.Channels) + len(m.Cases)
}

// matches reports whether r is what x expects (time aside).
func (m Match) matches(r sim.Record) bool {
	eq := func(want, got string) bool { return want == "" || want == got }
	switch {
	case !eq(m.Case, r.Case), !eq(m.Rule, r.Rule), !eq(m.Action, r.Action), !eq(m.Event, r.Event),
		!eq(m.Agency, r.Agency), !eq(m.Contact, r.Contact), !eq(m.Role, r.Role), !eq(m.Template, r.Template), !eq(m.Schedule, r.Schedule):
		return false
	case m.Step != nil && *m.Step != r.Step, m.Round != nil && *m.Round != r.Round:
		return false
	case m.Channel != "" && !slices.Contains(r.Channels, m.Channel):
		return false
	case m.Channels != nil && !slices.Equal(m.Channels, r.Channels):
		return false
	case m.Cases != nil && !sameSet(m.Cases, r.Cases):
		return false
	}
	return true
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// text describes the expectation as a timeline line does.
func (x *Expectation) text(loc *time.Location) string {
	r := sim.Record{At: x.At, Kind: x.Kind, Case: x.M.Case, Rule: x.M.Rule, Action: x.M.Action, Event: x.M.Event,
		Agency: x.M.Agency, Contact: x.M.Contact, Role: x.M.Role, Template: x.M.Template, Cases: x.M.Cases, Schedule: x.M.Schedule}
	if x.M.Step != nil {
		r.Step = *x.M.Step
	}
	if x.M.Round != nil {
		r.Round = *x.M.Round
	}
	r.Channels = x.M.Channels
	if x.M.Channel != "" {
		r.Channels = []string{x.M.Channel + " (among others)"}
	}
	return fmt.Sprintf("%s  [line %d]", r.Text(loc), x.Line)
}
