package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/rules"
	"github.com/viogen-alerts/dispatcher/templates"
)

const routeTestHelp = `Usage: dispatcher route-test --config FILE --event FILE|- [flags]

Show what the dispatcher would do with events, without Kafka, Redis or
sending anything, like 'amtool config routes test': the case state before
and after each event, the rules matched, and for every alert its severity,
suppression key and window, policy, every step of the policy with its
targets (agency, contact id, role, channels; never an address), and the
messages step 1 sends, rendered per channel and locale (SMS with its
segment count). Steps are numbered from 1, as in the messages.

--event holds one event (JSON as in docs/events.md, internal types such as
checkin.missed accepted) or JSON lines (blank lines and lines starting with
# are skipped). Events are applied in order, each to the state the previous
ones left, as the dispatcher's case state would for in-order events with
distinct ids (no ordering checks, no de-duplication, no suppression: every
matching rule's alert is shown).

--case gives the prior state of a case, as JSON (one object, or several for
several cases); every field may be left out:
  {"id": "C-HER-0001", "level": "medio", "active": true,
   "jurisdiction": {"municipality": "13047", "province": "13", "region": "CM"},
   "responsible_unit": "gc-ciudad-real"}
level: bajo|medio|alto|extremo or "" (none); active defaults to true; an
empty id means the case of the first event. A case with no prior state
starts from its first event, as a case new to the dispatcher does.

The acknowledgement code in messages is a placeholder (K7Q2); deadlines
count from --now.

Exit status: 0 when every event was processed, 1 when an event, the case
file or the configuration is invalid, a rule fails at run time or a
message cannot be rendered, 2 on bad flags.

Environment (flags win):
  DISPATCHER_CONFIG    configuration file (YAML)
  TEMPLATE_DIR         directory of template overrides`

// placeholderAckCode stands in for the code an escalation would issue.
const placeholderAckCode = "K7Q2"

func cmdRouteTest(_ context.Context, args []string, io stdio, getenv env) int {
	fs := newFlagSet("route-test", routeTestHelp, io.err)
	config := fs.String("config", getenv("DISPATCHER_CONFIG"), "configuration file (env DISPATCHER_CONFIG)")
	tmplDir := fs.String("templates", getenv("TEMPLATE_DIR"), "directory of template overrides (env TEMPLATE_DIR)")
	eventPath := fs.String("event", "", "event file: one JSON event or JSON lines; - reads stdin")
	casePath := fs.String("case", "", "prior case state, JSON (see above)")
	nowFlag := fs.String("now", "", "RFC 3339 time of the decision; deadlines count from it (default: the current time)")
	output := fs.String("output", "text", "output format: text or json")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *eventPath == "" || fs.NArg() > 0 || (*output != "text" && *output != "json") {
		fs.Usage()
		return 2
	}
	now, err := parseNowFlag(*nowFlag)
	if err != nil {
		fmt.Fprintln(io.err, "dispatcher route-test:", err)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(io.err, "dispatcher route-test:", err)
		return 1
	}
	a, err := loadApp(*config, *tmplDir)
	if err != nil {
		return fail(err)
	}
	evs, err := readRouteEvents(*eventPath, io.in)
	if err != nil {
		return fail(err)
	}
	cases := map[string]event.Case{}
	if *casePath != "" {
		if cases, err = readCases(*casePath, evs[0].CaseID); err != nil {
			return fail(err)
		}
		warnUnusedCases(io.err, cases, evs)
	}
	rep := routeTest(a, evs, cases, now)
	if *output == "json" {
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fail(err)
		}
	} else {
		rep.writeText(io.out, a.cfg.Location())
	}
	if rep.Failed {
		fmt.Fprintln(io.err, "dispatcher route-test: some rules or messages failed (see above)")
		return 1
	}
	return 0
}

// routeReport is what route-test shows; JSON output is this struct. It
// holds ids, names, levels and rendered messages, never an address.
type routeReport struct {
	Config  string        `json:"config"`
	Now     time.Time     `json:"now"`
	AckCode string        `json:"ack_code_placeholder"`
	Events  []routeResult `json:"events"`
	Failed  bool          `json:"failed"`
}

type routeResult struct {
	EventID    string           `json:"event_id"`
	Type       event.Type       `json:"type"`
	CaseID     string           `json:"case_id"`
	OccurredAt time.Time        `json:"occurred_at"`
	Before     *event.Case      `json:"case_before"` // nil: the dispatcher does not know the case yet
	After      event.Case       `json:"case_after"`
	Transition event.Transition `json:"transition"`
	Alerts     []routeAlert     `json:"alerts"`
	Errors     []string         `json:"errors,omitempty"`
}

type routeAlert struct {
	ID          string             `json:"id"`
	Rule        string             `json:"rule"`
	Severity    string             `json:"severity"`
	Critical    bool               `json:"critical"`
	Template    string             `json:"template"`
	SuppressKey string             `json:"suppress_key"`
	SuppressFor rules.Duration     `json:"suppress_for"`
	Policy      string             `json:"policy"`
	Unrouted    bool               `json:"unrouted"`
	Route       rules.RouteContext `json:"route"`
	Steps       []routeStep        `json:"steps"`
	Messages    []routeMessage     `json:"messages"`
}

type routeStep struct {
	Step      int            `json:"step"` // 0-based, as in intents
	AckWithin rules.Duration `json:"ack_within"`
	Repeat    int            `json:"repeat"`
	Deadline  time.Time      `json:"deadline,omitzero"`
	Targets   []routeTarget  `json:"targets"`
}

type routeTarget struct {
	AgencyID   string   `json:"agency_id"`
	AgencyName string   `json:"agency_name"`
	ContactID  string   `json:"contact_id"`
	Role       string   `json:"role"`
	Channels   []string `json:"channels"`
	Fallback   []string `json:"fallback,omitempty"`
	Unrouted   bool     `json:"unrouted,omitempty"`
	Reason     string   `json:"reason,omitempty"`
}

// routeMessage is one rendered text and the contacts of step 0 it goes to.
type routeMessage struct {
	Template string   `json:"template"`
	Channel  string   `json:"channel"`
	Locale   string   `json:"locale"`
	Contacts []string `json:"contacts"`
	Subject  string   `json:"subject,omitempty"`
	Body     string   `json:"body,omitempty"`
	Segments int      `json:"sms_segments,omitempty"`
	GSM7     bool     `json:"sms_gsm7,omitempty"`
	Error    string   `json:"error,omitempty"`
}

func routeTest(a *app, evs []event.Event, cases map[string]event.Case, now time.Time) routeReport {
	loc := a.cfg.Location()
	rep := routeReport{Config: a.cfg.File(), Now: now.In(loc), AckCode: placeholderAckCode}
	for _, ev := range evs {
		res := routeResult{EventID: ev.ID, Type: ev.Type, CaseID: ev.CaseID, OccurredAt: ev.OccurredAt.In(loc)}
		prev, known := cases[ev.CaseID]
		if known {
			res.Before = &prev
		}
		tr, c, keep := applyCaseEvent(prev, known, ev)
		if keep {
			cases[ev.CaseID] = c
		}
		res.After, res.Transition = c, tr
		alerts, err := a.engine.Evaluate(ev, tr, c)
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			rep.Failed = true
		}
		for _, al := range alerts {
			ra := describeAlert(a, al, now)
			for _, m := range ra.Messages {
				if m.Error != "" {
					rep.Failed = true
				}
			}
			res.Alerts = append(res.Alerts, ra)
		}
		rep.Events = append(rep.Events, res)
	}
	return rep
}

// applyCaseEvent computes what one event does to its case. It mirrors the
// per-field rules of dispatcher/apply.lua for a single event applied in
// order (no version or time ordering, no de-duplication): a risk level
// from risk.assessed or case.opened; the place and unit from every
// upstream event (from relocation.to for case.relocated), moving the case
// when the municipality or unit changes; active from case.closed, .opened
// and .reactivated. Internal events change nothing, and a case they name
// for the first time is not kept. keep says whether the state is stored.
func applyCaseEvent(prev event.Case, known bool, ev event.Event) (tr event.Transition, c event.Case, keep bool) {
	c = prev
	if !known {
		c = event.Case{ID: ev.CaseID, Jurisdiction: ev.Jurisdiction, ResponsibleUnit: ev.ResponsibleUnit, Active: true}
	}
	if ev.Type == event.CheckinRecorded && ev.OccurredAt.After(c.LastCheckinAt) {
		c.LastCheckinAt = ev.OccurredAt
	}
	if ev.Type.IsInternal() {
		return event.NewTransition(c.Level, c.Level), c, known
	}
	from := c.Level
	if r := ev.Risk; r != nil && r.Level != event.LevelNone && (ev.Type == event.RiskAssessed || ev.Type == event.CaseOpened) {
		c.Level = r.Level
	}
	pj, pu := c.Jurisdiction, c.ResponsibleUnit
	if r := ev.Relocation; ev.Type == event.CaseRelocated && r != nil {
		c.Jurisdiction, c.ResponsibleUnit = r.To, r.ResponsibleUnit
	} else {
		c.Jurisdiction, c.ResponsibleUnit = ev.Jurisdiction, ev.ResponsibleUnit
	}
	switch ev.Type {
	case event.CaseClosed:
		c.Active = false
	case event.CaseOpened, event.CaseReactivated:
		c.Active = true
	}
	if ev.Version > c.Version {
		c.Version = ev.Version
	}
	if ev.OccurredAt.After(c.LastEventAt) {
		c.LastEventAt = ev.OccurredAt
	}
	tr = event.NewTransition(from, c.Level)
	if c.Jurisdiction.Municipality != pj.Municipality || c.ResponsibleUnit != pu {
		tr.Moved, tr.PreviousJurisdiction, tr.PreviousUnit = true, pj, pu
	}
	return tr, c, true
}

// describeAlert resolves every step of the alert's policy and renders the
// messages of step 0, with the placeholder acknowledgement code.
func describeAlert(a *app, al rules.Alert, now time.Time) routeAlert {
	loc := a.cfg.Location()
	ra := routeAlert{
		ID: al.ID, Rule: al.Rule, Severity: al.Severity, Critical: al.Critical, Template: al.Template,
		SuppressKey: al.SuppressKey, SuppressFor: al.SuppressFor, Policy: al.Policy.ID,
		Unrouted: al.Unrouted, Route: al.Route, Messages: []routeMessage{},
	}
	for i, st := range al.Policy.Steps {
		intents := dispatcher.StepIntents(a.cfg, al, i, 0, placeholderAckCode, now)
		// Resolve gives what intents leave out: the role and why a target
		// went to the fallback agency. Both list the same contacts.
		targets, _ := a.cfg.Resolve(st, al.Route)
		byContact := make(map[string]rules.Target, len(targets))
		for _, t := range targets {
			byContact[t.ContactID] = t
		}
		rs := routeStep{Step: i, AckWithin: st.AckWithin, Repeat: st.Repeat, Targets: []routeTarget{}}
		if st.AckWithin > 0 {
			rs.Deadline = now.Add(st.AckWithin.Std()).In(loc)
		}
		for _, in := range intents {
			t := byContact[in.ContactID]
			rs.Targets = append(rs.Targets, routeTarget{
				AgencyID: in.AgencyID, AgencyName: in.AgencyName, ContactID: in.ContactID, Role: t.Role,
				Channels: in.Channels, Fallback: in.Fallback, Unrouted: t.Unrouted, Reason: t.Reason,
			})
		}
		ra.Steps = append(ra.Steps, rs)
		if i == 0 {
			ra.Messages = renderMessages(a, intents, loc)
		}
	}
	return ra
}

// renderMessages renders every channel (planned and fallback) of every
// intent, and groups identical texts: one message per distinct template,
// channel, locale and text, with the contacts it goes to.
func renderMessages(a *app, intents []dispatcher.Intent, loc *time.Location) []routeMessage {
	type key struct{ channel, locale, subject, body, err string }
	var out []routeMessage
	index := map[key]int{}
	for _, in := range intents {
		for _, ch := range append(append([]string(nil), in.Channels...), in.Fallback...) {
			m := routeMessage{Template: in.Template, Channel: ch, Locale: in.Locale}
			r, err := dispatcher.Render(a.tmpl, in, ch, loc)
			if err != nil {
				m.Error = err.Error()
			} else {
				m.Subject, m.Body = r.Subject, r.Body
			}
			if ch == templates.ChannelSMS && err == nil {
				m.Segments, m.GSM7 = templates.GSM7Segments(r.Body)
			}
			k := key{m.Channel, m.Locale, m.Subject, m.Body, m.Error}
			if i, ok := index[k]; ok {
				if !slices.Contains(out[i].Contacts, in.ContactID) {
					out[i].Contacts = append(out[i].Contacts, in.ContactID)
				}
				continue
			}
			index[k] = len(out)
			m.Contacts = []string{in.ContactID}
			out = append(out, m)
		}
	}
	for i := range out {
		sort.Strings(out[i].Contacts)
	}
	sort.SliceStable(out, func(i, j int) bool {
		x, y := out[i], out[j]
		if x.Channel != y.Channel {
			return x.Channel < y.Channel
		}
		if x.Locale != y.Locale {
			return x.Locale < y.Locale
		}
		return x.Contacts[0] < y.Contacts[0]
	})
	return out
}

// readRouteEvents reads one JSON event or a stream of them (JSON lines,
// or pretty-printed objects one after another). Lines starting with # are
// comments. Errors name the line the event starts on.
func readRouteEvents(path string, stdin io.Reader) ([]event.Event, error) {
	name, data, err := readInput(path, stdin)
	if err != nil {
		return nil, err
	}
	var out []event.Event
	err = eachJSON(name, data, func(line int, raw json.RawMessage) error {
		ev, err := event.DecodeInternal(raw)
		if err != nil {
			return fmt.Errorf("%s:%d: invalid event: %w", name, line, err)
		}
		out = append(out, ev)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no events", name)
	}
	return out, nil
}

// caseFile is event.Case as --case accepts it: active defaults to true.
type caseFile struct {
	ID              string             `json:"id"`
	Level           event.Level        `json:"level"`
	Jurisdiction    event.Jurisdiction `json:"jurisdiction"`
	ResponsibleUnit string             `json:"responsible_unit"`
	Active          *bool              `json:"active"`
	Version         int64              `json:"version"`
	LastEventAt     time.Time          `json:"last_event_at"`
	LastCheckinAt   time.Time          `json:"last_checkin_at"`
}

// readCases reads prior case states; a state without an id is the case
// of the first event (firstCase).
func readCases(path, firstCase string) (map[string]event.Case, error) {
	name, data, err := readInput(path, nil)
	if err != nil {
		return nil, err
	}
	cases := map[string]event.Case{}
	err = eachJSON(name, data, func(line int, raw json.RawMessage) error {
		var cf caseFile
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cf); err != nil {
			return fmt.Errorf("%s:%d: invalid case state: %w", name, line, err)
		}
		if cf.ID == "" {
			cf.ID = firstCase
		}
		if _, dup := cases[cf.ID]; dup {
			return fmt.Errorf("%s:%d: case %s given twice", name, line, cf.ID)
		}
		c := event.Case{
			ID: cf.ID, Level: cf.Level, Jurisdiction: cf.Jurisdiction, ResponsibleUnit: cf.ResponsibleUnit,
			Active: cf.Active == nil || *cf.Active, Version: cf.Version,
			LastEventAt: cf.LastEventAt, LastCheckinAt: cf.LastCheckinAt,
		}
		cases[c.ID] = c
		return nil
	})
	return cases, err
}

// warnUnusedCases flags prior states no event refers to: most likely a
// mistyped case id, which would make every event start from scratch.
func warnUnusedCases(w io.Writer, cases map[string]event.Case, evs []event.Event) {
	used := map[string]bool{}
	for _, ev := range evs {
		used[ev.CaseID] = true
	}
	var unused []string
	for id := range cases {
		if !used[id] {
			unused = append(unused, id)
		}
	}
	sort.Strings(unused)
	for _, id := range unused {
		fmt.Fprintf(w, "warning: --case: no event is about case %s\n", id)
	}
}

func readInput(path string, stdin io.Reader) (name string, data []byte, err error) {
	if path == "-" {
		if stdin == nil {
			return "", nil, errors.New("only --event may read stdin")
		}
		data, err = io.ReadAll(stdin)
		return "stdin", data, err
	}
	data, err = os.ReadFile(path)
	return path, data, err
}

// eachJSON calls fn with every JSON value of data and the line it starts
// on. Comment lines are blanked first, which keeps line numbers.
func eachJSON(name string, data []byte, fn func(line int, raw json.RawMessage) error) error {
	lines := bytes.SplitAfter(data, []byte("\n"))
	for i, l := range lines {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] == '#' {
			lines[i] = []byte("\n")
		}
	}
	data = bytes.Join(lines, nil)
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		start := int(dec.InputOffset())
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return nil
		}
		for start < len(data) && strings.ContainsRune(" \t\r\n", rune(data[start])) {
			start++
		}
		line := 1 + bytes.Count(data[:start], []byte("\n"))
		if err != nil {
			return fmt.Errorf("%s:%d: not JSON: %w", name, line, err)
		}
		if err := fn(line, raw); err != nil {
			return err
		}
	}
}

// writeText prints the report for people: stable, in event and rule
// order, times in the configuration's zone.
func (rep *routeReport) writeText(w io.Writer, loc *time.Location) {
	ts := func(t time.Time) string { return t.In(loc).Format(time.RFC3339) }
	fmt.Fprintf(w, "config: %s\n", rep.Config)
	fmt.Fprintf(w, "now:    %s (deadlines count from here; ack code %s is a placeholder)\n", ts(rep.Now), rep.AckCode)
	for i, res := range rep.Events {
		fmt.Fprintf(w, "\nevent %d/%d: %s %s, case %s, occurred %s\n", i+1, len(rep.Events), res.EventID, res.Type, res.CaseID, ts(res.OccurredAt))
		if res.Before == nil {
			fmt.Fprintf(w, "  case before:   unknown (first event of the case)\n")
		} else {
			fmt.Fprintf(w, "  case before:   %s\n", caseText(*res.Before))
		}
		fmt.Fprintf(w, "  case after:    %s\n", caseText(res.After))
		fmt.Fprintf(w, "  transition:    %s\n", transitionText(res.Transition))
		for _, e := range res.Errors {
			fmt.Fprintf(w, "  RULE ERROR:    %s\n", e)
		}
		if len(res.Alerts) == 0 {
			fmt.Fprintf(w, "  rules matched: none\n")
			continue
		}
		ids := make([]string, len(res.Alerts))
		for j, a := range res.Alerts {
			ids[j] = a.Rule
		}
		fmt.Fprintf(w, "  rules matched: %s\n", strings.Join(ids, ", "))
		for j, a := range res.Alerts {
			fmt.Fprintf(w, "\n  alert %d/%d: rule %s, id %s\n", j+1, len(res.Alerts), a.Rule, a.ID)
			a.writeText(w, ts)
		}
	}
}

func (a *routeAlert) writeText(w io.Writer, ts func(time.Time) string) {
	suppress := "none (every alert is sent)"
	if a.SuppressFor > 0 {
		suppress = a.SuppressKey + " for " + a.SuppressFor.String()
	}
	fmt.Fprintf(w, "    severity:  %s\n", a.Severity)
	fmt.Fprintf(w, "    critical:  %s\n", yesNo(a.Critical))
	fmt.Fprintf(w, "    suppress:  %s\n", suppress)
	fmt.Fprintf(w, "    policy:    %s (%s)\n", a.Policy, pluralize(len(a.Steps), "step"))
	fmt.Fprintf(w, "    unrouted:  %s\n", yesNo(a.Unrouted))
	fmt.Fprintf(w, "    route:     %s\n", routeText(a.Route))
	for _, st := range a.Steps {
		fmt.Fprintf(w, "    step %d: ", st.Step+1)
		if st.AckWithin > 0 {
			fmt.Fprintf(w, "ack within %s, repeat %d", st.AckWithin, st.Repeat)
		} else {
			fmt.Fprintf(w, "no acknowledgement awaited")
		}
		if st.Step == 0 && !st.Deadline.IsZero() {
			fmt.Fprintf(w, ", deadline %s", ts(st.Deadline))
		}
		fmt.Fprintln(w)
		writeTargets(w, st.Targets)
	}
	fmt.Fprintf(w, "    messages of step 1 (template %s):\n", a.Template)
	for _, m := range a.Messages {
		head := m.Channel + " " + m.Locale
		if m.Segments > 0 {
			enc := "UCS-2"
			if m.GSM7 {
				enc = "GSM-7"
			}
			head += ", " + pluralize(m.Segments, "segment") + " " + enc
		}
		fmt.Fprintf(w, "      %s, to %s\n", head, strings.Join(m.Contacts, ", "))
		if m.Error != "" {
			fmt.Fprintf(w, "        RENDER ERROR: %s\n", m.Error)
			continue
		}
		if m.Subject != "" {
			fmt.Fprintf(w, "        subject: %s\n", m.Subject)
		}
		if m.Body == "" {
			continue
		}
		for _, l := range strings.Split(m.Body, "\n") {
			fmt.Fprintln(w, strings.TrimRight("        | "+l, " "))
		}
	}
}

// writeTargets prints one aligned line per target; the agency name, the
// only free text, comes last.
func writeTargets(w io.Writer, ts []routeTarget) {
	if len(ts) == 0 {
		fmt.Fprintf(w, "      (no targets: every selector of the step is optional and matched nothing)\n")
		return
	}
	rows := make([][4]string, len(ts))
	var width [4]int
	for i, t := range ts {
		ch := strings.Join(t.Channels, ",")
		if len(t.Fallback) > 0 {
			ch += " (fallback " + strings.Join(t.Fallback, ",") + ")"
		}
		rows[i] = [4]string{t.AgencyID, t.ContactID, t.Role, ch}
		for j, c := range rows[i] {
			width[j] = max(width[j], len(c))
		}
	}
	for i, t := range ts {
		var b strings.Builder
		b.WriteString("      ")
		for j, c := range rows[i] {
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", width[j]-len(c)+2))
		}
		b.WriteString(t.AgencyName)
		fmt.Fprintln(w, b.String())
		if t.Unrouted {
			fmt.Fprintf(w, "        ^ unrouted: %s\n", t.Reason)
		}
	}
}

func caseText(c event.Case) string {
	level := c.Level.String()
	if c.Level == event.LevelNone {
		level = "none"
	}
	active := "active"
	if !c.Active {
		active = "closed"
	}
	return fmt.Sprintf("level %s, %s, %s, unit %s", level, active, placeText(c.Jurisdiction), c.ResponsibleUnit)
}

func placeText(j event.Jurisdiction) string {
	return strings.Join([]string{j.Municipality, j.Province, j.Region}, "/")
}

func transitionText(tr event.Transition) string {
	name := func(l event.Level) string {
		if l == event.LevelNone {
			return "none"
		}
		return l.String()
	}
	s := "level " + name(tr.To) + " (unchanged)"
	switch {
	case tr.Rising:
		s = name(tr.From) + " -> " + name(tr.To) + ", rising"
	case tr.Falling:
		s = name(tr.From) + " -> " + name(tr.To) + ", falling"
	case tr.From != tr.To:
		s = name(tr.From) + " -> " + name(tr.To)
	}
	if tr.Moved {
		s += fmt.Sprintf("; moved from %s, unit %s", placeText(tr.PreviousJurisdiction), tr.PreviousUnit)
	}
	return s
}

func routeText(rc rules.RouteContext) string {
	s := placeText(rc.Jurisdiction) + ", unit " + rc.ResponsibleUnit
	if rc.PreviousUnit != "" || rc.PreviousJurisdiction != (event.Jurisdiction{}) {
		s += "; previously " + placeText(rc.PreviousJurisdiction) + ", unit " + rc.PreviousUnit
	}
	if rc.ReleaseDestination != "" {
		s += "; release destination " + rc.ReleaseDestination
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
