package dispatcher

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/rules"
)

//go:embed apply.lua
var applySource string

var applyScript = redis.NewScript(applySource)

// Outcome is what applying one event did: its transition and the case as
// it stood right after the event.
type Outcome struct {
	Transition event.Transition
	Case       event.Case
	// CheckinDue and ReassessDue are the case's deadlines after the event
	// (zero: none, e.g. a closed case).
	CheckinDue, ReassessDue time.Time
	// CheckinBase is when the check-in deadline counts from: the later of
	// the last check-in and the last level change.
	CheckinBase time.Time
	// noTimers: the case had no deadline before the event and has none
	// after it (and the event is no duplicate), so it has no timer to set
	// or clear. A timer left by an earlier event whose timer update failed
	// is not this event's to clear: that event's batch is not committed
	// and is applied again, and a duplicate always updates its timers.
	noTimers bool
}

// Periods are the deadline periods per level (index = event.Level).
// Checkin includes the grace.
type Periods struct {
	Checkin, Reassess [5]time.Duration
}

// PeriodsFrom reads the periods of a configuration.
func PeriodsFrom(cfg *rules.Config) Periods {
	var p Periods
	for l := event.Bajo; l <= event.Extremo; l++ {
		every, grace := cfg.Checkin(l)
		p.Checkin[l], p.Reassess[l] = every+grace, cfg.Reassessment(l)
	}
	return p
}

// DefaultPeriods are the domain brief's (and rules' defaults).
var DefaultPeriods = Periods{
	Checkin:  [5]time.Duration{0, 32 * 24 * time.Hour, 8 * 24 * time.Hour, 26 * time.Hour, 2*time.Hour + 15*time.Minute},
	Reassess: [5]time.Duration{0, 60 * 24 * time.Hour, 30 * 24 * time.Hour, 7 * 24 * time.Hour, 72 * time.Hour},
}

// Store keeps per-case state in Redis.
type Store struct {
	rdb redis.UniversalClient
	// DedupTTL is how long an event id is remembered for idempotency.
	DedupTTL time.Duration
	// Periods set the check-in and re-assessment deadlines.
	Periods Periods
	// Live, when set, supplies the periods of the configuration in use
	// instead of Periods (a reload changes deadlines set from then on).
	Live *Live
	// Format is the layout of the outcome records written (WriteFormat).
	Format WriteFormat
}

func (s *Store) periods() Periods {
	if s.Live != nil {
		return PeriodsFrom(s.Live.Load().Config)
	}
	return s.Periods
}

// NewStore returns a Store; dedupTTL <= 0 means 30 days.
func NewStore(rdb redis.UniversalClient, dedupTTL time.Duration) *Store {
	if dedupTTL <= 0 {
		dedupTTL = 30 * 24 * time.Hour
	}
	return &Store{rdb: rdb, DedupTTL: dedupTTL, Periods: DefaultPeriods}
}

// Apply applies events in order, one Lua call each, in a single pipelined
// round trip. Pipelines keep command order, so events of one case apply in
// the order given. Any error fails the whole batch; the batch is safe to
// apply again because every event is idempotent on its id.
func (s *Store) Apply(ctx context.Context, evs []event.Event) ([]Outcome, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	ttl := strconv.FormatInt(s.DedupTTL.Milliseconds(), 10)
	periods := periodArgs(s.periods()) // one configuration for the whole batch
	calls := make([]scriptCall, len(evs))
	keys := make([]string, 2*len(evs))
	for i, ev := range evs {
		keys[2*i], keys[2*i+1] = caseKey(ev.CaseID), seenKey(ev.CaseID, ev.ID)
		calls[i] = scriptCall{keys: keys[2*i : 2*i+2 : 2*i+2], args: s.applyArgs(ev, ttl, periods)}
	}
	cmds, err := evalAll(ctx, s.rdb, applyScript, calls)
	if err != nil {
		return nil, fmt.Errorf("apply %d events to redis: %w", len(evs), err)
	}
	out := make([]Outcome, len(evs))
	for i, cmd := range cmds {
		vals, err := outcomeValues(cmd)
		if err != nil {
			return nil, fmt.Errorf("apply event %s: %w", evs[i].ID, err)
		}
		if out[i], err = parseOutcome(evs[i].CaseID, vals); err != nil {
			return nil, fmt.Errorf("apply event %s: %w", evs[i].ID, err)
		}
	}
	return out, s.setTimers(ctx, out)
}

// outcomeSep joins the values of a compact outcome (byte 31).
const outcomeSep = "\x1f"

// outcomeValues reads apply.lua's reply: the array of 23 values, or the
// one string it returns when the outcome has a compact record (the dup
// flag, the two deadlines, then the record as encode_outcome writes it:
// values 2-17 and 20-23 each after a separator, a number 0 empty).
func outcomeValues(cmd *redis.Cmd) ([]string, error) {
	s, ok := cmd.Val().(string)
	if !ok {
		return cmd.StringSlice()
	}
	p := strings.Split(s, outcomeSep)
	if len(p) != 23 {
		return nil, fmt.Errorf("unreadable outcome record: %d values, want 23 (20 kept, 3 added)", len(p))
	}
	// p holds 1, 18, 19, then 2-17 and 20-23: put 18 and 19 in their places.
	v := make([]string, 0, 23)
	v = append(v, p[0])
	v = append(v, p[3:19]...)
	v = append(v, p[1], p[2])
	v = append(v, p[19:]...)
	for i, x := range v {
		if x == "" && (i < 5 || i > 12) { // a place may be empty; a number is 0
			v[i] = "0"
		}
	}
	return v, nil
}

// setTimers mirrors each case's deadlines into the timer sorted sets.
// They are separate from the Lua call because in a Redis Cluster the
// global timer sets live in another slot than the case; the step is
// idempotent, and a replayed batch sets them again.
func (s *Store) setTimers(ctx context.Context, outs []Outcome) error {
	pipe := s.rdb.Pipeline()
	n := 0
	for _, o := range outs {
		if o.noTimers {
			continue
		}
		n++
		setTimer(ctx, pipe, keyTimerCheckin, o.Case.ID, o.CheckinDue)
		setTimer(ctx, pipe, keyTimerReassess, o.Case.ID, o.ReassessDue)
	}
	if n == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("set case timers: %w", err)
	}
	return nil
}

func setTimer(ctx context.Context, pipe redis.Pipeliner, set shardedSet, member string, due time.Time) {
	if due.IsZero() {
		set.zRem(ctx, pipe, member)
		return
	}
	set.zAdd(ctx, pipe, member, ms(due))
}

// periodArgs are ARGV 16-23 of apply.lua, the same for every event.
func periodArgs(p Periods) []any {
	out := make([]any, 0, 8)
	for l := event.Bajo; l <= event.Extremo; l++ {
		out = append(out, strconv.FormatInt(p.Checkin[l].Milliseconds(), 10))
	}
	for l := event.Bajo; l <= event.Extremo; l++ {
		out = append(out, strconv.FormatInt(p.Reassess[l].Milliseconds(), 10))
	}
	return out
}

func (s *Store) applyArgs(ev event.Event, ttl string, periods []any) []any {
	var lvl event.Level
	if ev.Risk != nil {
		lvl = ev.Risk.Level
	}
	to, toUnit := ev.Jurisdiction, ev.ResponsibleUnit
	if ev.Relocation != nil {
		to, toUnit = ev.Relocation.To, ev.Relocation.ResponsibleUnit
	}
	internal := "0"
	if ev.Type.IsInternal() {
		internal = "1"
	}
	j := ev.Jurisdiction
	args := make([]any, 0, 26)
	args = append(args, ev.ID, string(ev.Type), ev.Version, ev.OccurredAt.UnixMilli(), int(lvl),
		j.Municipality, j.Province, j.Region, ev.ResponsibleUnit, ttl,
		to.Municipality, to.Province, to.Region, toUnit, internal)
	args = append(args, periods...)
	var dueBy, timerDue int64
	if ev.Incident != nil && ev.Incident.ReassessmentDueBy != nil {
		dueBy = ev.Incident.ReassessmentDueBy.UnixMilli()
	}
	if ev.Timer != nil {
		timerDue = ev.Timer.DueAt.UnixMilli()
	}
	jsonSeen := "0"
	if s.Format == WritePrevious {
		jsonSeen = "1"
	}
	return append(args, dueBy, timerDue, jsonSeen)
}

// parseOutcome reads the array apply.lua returns.
func parseOutcome(caseID string, v []string) (Outcome, error) {
	if len(v) < 19 {
		return Outcome{}, errors.New("apply script returned " + strconv.Itoa(len(v)) + " values, want 23")
	}
	for len(v) < 22 {
		v = append(v, "0") // an outcome kept by an earlier version: fewer values
	}
	if len(v) < 23 {
		v = append(v, "1") // not known whether it had deadlines: update its timers
	}
	n := func(i int) int64 { x, _ := strconv.ParseInt(v[i], 10, 64); return x }
	from, to := event.Level(n(2)), event.Level(n(3))
	tr := event.NewTransition(from, to)
	tr.Duplicate, tr.Stale, tr.Moved = v[0] == "1", v[1] == "1", v[4] == "1"
	if tr.Moved {
		tr.PreviousJurisdiction = event.Jurisdiction{Municipality: v[5], Province: v[6], Region: v[7]}
		tr.PreviousUnit = v[8]
	}
	tr.Missed, tr.MissedSince = int(n(20)), msTime(n(21))
	c := event.Case{
		ID: caseID, Level: to, ResponsibleUnit: v[12], Active: v[13] == "1", Version: n(14),
		Jurisdiction: event.Jurisdiction{Municipality: v[9], Province: v[10], Region: v[11]},
		LastEventAt:  msTime(n(15)), LastCheckinAt: msTime(n(16)),
	}
	o := Outcome{Transition: tr, Case: c, CheckinDue: msTime(n(17)), ReassessDue: msTime(n(18)), CheckinBase: msTime(n(19))}
	o.noTimers = !tr.Duplicate && v[22] == "0" && o.CheckinDue.IsZero() && o.ReassessDue.IsZero()
	return o, nil
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// caseKnown reports whether a case hash holds state: the fields naming
// open escalations (EscalationStore.Save) alone do not make a case known.
func caseKnown(m map[string]string) bool {
	for f := range m {
		if !strings.HasPrefix(f, caseOpenEscPrefix) {
			return true
		}
	}
	return false
}

// Case reads a case's current state; ok is false when it is unknown.
func (s *Store) Case(ctx context.Context, caseID string) (c event.Case, ok bool, err error) {
	m, err := s.rdb.HGetAll(ctx, caseKey(caseID)).Result()
	if err != nil {
		return c, false, fmt.Errorf("read case %s: %w", caseID, err)
	}
	if !caseKnown(m) {
		return c, false, nil
	}
	n := func(k string) int64 { x, _ := strconv.ParseInt(m[k], 10, 64); return x }
	c = event.Case{
		ID: caseID, Level: event.Level(n("level")), ResponsibleUnit: m["unit"],
		Active: m["active"] == "1", Version: n("version"),
		Jurisdiction: event.Jurisdiction{Municipality: m["muni"], Province: m["prov"], Region: m["region"]},
		LastEventAt:  msTime(n("last_ms")), LastCheckinAt: msTime(n("checkin_ms")),
	}
	return c, true, nil
}
