package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/viogen-alerts/dispatcher/event"
)

// Alert is one rule's decision about one event: what to tell, how urgent,
// and the policy to escalate with, frozen at the time of the decision.
type Alert struct {
	// ID is derived from the event id and rule id, so a redelivered event
	// gives the same id: use it as the message reference and as the
	// PagerDuty dedup_key.
	ID       string `json:"id"`
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Critical bool   `json:"critical,omitempty"`
	Template string `json:"template"`
	// SuppressKey groups alerts for the suppression window: rule and case,
	// plus the level for critical rules, so a different level always
	// escalates.
	SuppressKey string         `json:"suppress_key"`
	SuppressFor Duration       `json:"suppress_for,omitempty"`
	Policy      PolicySnapshot `json:"policy,omitzero"`
	// Unrouted is true when some step of the policy has a target that
	// resolves to the fallback agency for this case.
	Unrouted   bool        `json:"unrouted,omitempty"`
	CaseID     string      `json:"case_id"`
	EventID    string      `json:"event_id"`
	EventType  event.Type  `json:"event_type"`
	OccurredAt time.Time   `json:"occurred_at"`
	Level      event.Level `json:"level"`
	// PrevLevel is the level before the event (the transition's from).
	PrevLevel event.Level  `json:"prev_level,omitempty"`
	Route     RouteContext `json:"route"`
	// Missed and MissedSince are the transition's: how many check-in or
	// re-assessment periods a timer alert covers, since which deadline.
	Missed      int       `json:"missed,omitempty"`
	MissedSince time.Time `json:"missed_since,omitzero"`
}

// PolicySnapshot is a deep copy of a policy: later configuration changes
// do not alter an escalation already under way.
type PolicySnapshot struct {
	ID    string       `json:"id"`
	Steps []PolicyStep `json:"steps"`
}

// Snapshot deep-copies the policy.
func (p *Policy) Snapshot() PolicySnapshot {
	steps := make([]PolicyStep, len(p.Steps))
	for i, st := range p.Steps {
		notify := make([]TargetSpec, len(st.Notify))
		for j, t := range st.Notify {
			t.Via = append([]string(nil), t.Via...)
			t.Fallback = append([]string(nil), t.Fallback...)
			notify[j] = t
		}
		steps[i] = PolicyStep{Notify: notify, AckWithin: st.AckWithin, Repeat: st.Repeat}
	}
	return PolicySnapshot{ID: p.ID, Steps: steps}
}

// Engine evaluates events against a configuration's rules. It is safe for
// concurrent use: each call borrows a pooled expression VM.
type Engine struct {
	cfg   *Config
	index ruleIndex
	vms   sync.Pool
}

// NewEngine prepares an engine for a loaded configuration.
func NewEngine(cfg *Config) *Engine {
	e := &Engine{cfg: cfg}
	rules := make([]*Rule, len(cfg.Rules))
	for i := range cfg.Rules {
		rules[i] = &cfg.Rules[i]
	}
	e.index = buildIndex(rules)
	e.vms.New = func() any { return new(evalState) }
	return e
}

// Config is the configuration the engine evaluates.
func (e *Engine) Config() *Config { return e.cfg }

// Evaluate returns one alert per rule whose condition holds for the event,
// in rule order. Duplicate and stale transitions give no alerts: they
// changed nothing. A rule that fails at run time is reported in the error
// while the other rules' alerts are still returned, so one bad rule
// cannot hide another's alert.
func (e *Engine) Evaluate(ev event.Event, tr event.Transition, c event.Case) ([]Alert, error) {
	if tr.Duplicate || tr.Stale {
		return nil, nil
	}
	rc := NewRouteContext(ev, tr, c)
	st := e.vms.Get().(*evalState)
	defer e.vms.Put(st)
	st.env = newEnv(&ev, &tr, &c, &rc, &e.cfg.dir)
	m := &st.vm
	env := &st.env
	var alerts []Alert
	var errs []error
	for _, r := range e.index.rules(ev.Type) {
		if r.program == nil {
			errs = append(errs, fmt.Errorf("rule %s: not compiled (build the Config with Parse or LoadFile)", r.ID))
			continue
		}
		out, err := m.Run(r.program, env)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %s: %w", r.ID, err))
			continue
		}
		if ok, _ := out.(bool); ok {
			alerts = append(alerts, e.alert(r, &ev, &tr, &c, rc))
		}
	}
	return alerts, errors.Join(errs...)
}

func (e *Engine) alert(r *Rule, ev *event.Event, tr *event.Transition, c *event.Case, rc RouteContext) Alert {
	level := tr.To
	if level == event.LevelNone {
		level = c.Level
	}
	caseID := c.ID
	if caseID == "" {
		caseID = ev.CaseID
	}
	key := r.ID + "/" + caseID
	if r.IsCritical() {
		key += "/" + level.String()
	}
	a := Alert{
		ID:          AlertID(ev.ID, r.ID),
		Rule:        r.ID,
		Severity:    r.Severity,
		Critical:    r.IsCritical(),
		Template:    r.Template,
		SuppressKey: key,
		SuppressFor: r.SuppressFor,
		CaseID:      caseID,
		EventID:     ev.ID,
		EventType:   ev.Type,
		OccurredAt:  ev.OccurredAt,
		Level:       level,
		Route:       rc,
		Missed:      tr.Missed,
		MissedSince: tr.MissedSince,
	}
	if tr.From != level {
		a.PrevLevel = tr.From // only a change is worth showing ("alto -> extremo")
	}
	if p, ok := e.cfg.Policy(r.Policy); ok {
		a.Policy = p.Snapshot()
	}
	for i := range a.Policy.Steps {
		if !e.cfg.routes(&a.Policy.Steps[i], &rc) {
			a.Unrouted = true
			break
		}
	}
	return a
}

// AlertID is the first 16 hex digits of SHA-256(event id, NUL, rule id).
func AlertID(eventID, ruleID string) string {
	h := sha256.Sum256([]byte(eventID + "\x00" + ruleID))
	return hex.EncodeToString(h[:8])
}

type evalState struct {
	vm  vm.VM
	env Env
}
