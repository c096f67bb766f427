package dispatcher

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/rules"
)

// Timers turns due deadlines into internal events on the dispatcher's own
// topic: checkin.missed, reassessment.overdue, escalation.timeout. Any
// number of instances may run: a claim is atomic and leased, and each
// event's id is derived from the deadline, so a timer claimed again after
// a crash is absorbed by event idempotency. The handler re-checks each
// timer against the case (dispatcher/apply.lua, escalation state).
type Timers struct {
	Redis  redis.UniversalClient
	Writer Sink
	Topic  string // default case-events.internal
	Store  *EscalationStore
	Now    func() time.Time // injected clock: what is due is decided by it
	Poll   time.Duration    // how often to look (default 200ms)
	Lease  time.Duration    // how long a claimed timer is hidden (default 30s)
	Batch  int              // timers claimed per set and round (default 500)
	Log    logrus.FieldLogger
	// Metrics observe firing lateness (nil: none).
	Metrics *TimerMetrics

	health failures // what the last round of Run failed on
}

// claimTimersScript leases up to ARGV[2] members due at ARGV[1] until
// ARGV[3], returning member, original score pairs.
var claimTimersScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #due, 2 do redis.call('ZADD', KEYS[1], ARGV[3], due[i]) end
return due`)

// finishTimerScript removes a member only if it still has the leased
// score: a deadline moved meanwhile by the case's state stays.
var finishTimerScript = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0`)

func (t *Timers) defaults() {
	if t.Topic == "" {
		t.Topic = TopicInternal
	}
	if t.Poll <= 0 {
		t.Poll = 200 * time.Millisecond
	}
	if t.Lease <= 0 {
		t.Lease = 30 * time.Second
	}
	if t.Batch <= 0 {
		t.Batch = 500
	}
	if t.Now == nil {
		t.Now = time.Now
	}
}

// Run fires due timers until ctx ends. A failing round (Redis or Kafka
// down) never ends it: the next round waits with backoff (from Poll up to
// 5s), Check reports the failure, and it is logged once per backoff step.
func (t *Timers) Run(ctx context.Context) error {
	t.defaults()
	backoff := Backoff{Min: t.Poll, Max: 5 * time.Second}
	wait, attempt := t.Poll, 0
	for {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		var failed error
		for _, key := range []string{keyTimerCheckin, keyTimerReassess, keyTimerEscalation} {
			if _, err := t.FireDue(ctx, key); err != nil && ctx.Err() == nil && failed == nil {
				failed = fmt.Errorf("fire %s: %w", key, err)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		t.health.set("timers", failed)
		if failed == nil {
			if attempt > 0 {
				t.Log.WithField("attempts", attempt).Info("firing timers works again")
			}
			wait, attempt = t.Poll, 0
			continue
		}
		t.Log.WithError(failed).WithField("attempt", attempt+1).Warn("firing timers failed; they stay due, retrying with backoff")
		wait = backoff.Delay(attempt)
		attempt++
	}
}

// Check is the timers' readiness check: nil unless the last round failed.
func (t *Timers) Check() error { return t.health.err() }

type claimed struct {
	member string
	due    time.Time
	lease  int64
}

// FireDue claims the due timers of one set, publishes their events and
// removes them; it returns how many it fired.
func (t *Timers) FireDue(ctx context.Context, key string) (int, error) {
	t.defaults()
	now := t.Now()
	lease := now.Add(t.Lease).UnixMilli()
	res, err := claimTimersScript.Run(ctx, t.Redis, []string{key}, now.UnixMilli(), t.Batch, lease).StringSlice()
	if err != nil {
		return 0, fmt.Errorf("claim %s: %w", key, err)
	}
	var cs []claimed
	for i := 0; i+1 < len(res); i += 2 {
		ms, _ := strconv.ParseFloat(res[i+1], 64)
		cs = append(cs, claimed{member: res[i], due: time.UnixMilli(int64(ms)).UTC(), lease: lease})
	}
	if len(cs) == 0 {
		return 0, nil
	}
	evs, err := t.events(ctx, key, cs, now)
	if err == nil && len(evs) > 0 {
		err = publishInternal(ctx, t.Writer, t.Topic, evs...)
	}
	if err != nil {
		// Give the timers back with their real due times, so the next round
		// reports the deadline itself and not the lease (which the handler
		// would find stale).
		if uerr := t.unclaim(ctx, key, cs); uerr != nil {
			t.Log.WithError(uerr).Warn("timers stay leased until the lease runs out")
		}
		return 0, err
	}
	t.Metrics.fired(key, cs, now)
	return len(evs), t.finish(ctx, key, cs)
}

// unclaimTimerScript restores ARGV[3] as the score of ARGV[1] if it still
// has the leased score ARGV[2].
var unclaimTimerScript = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then return redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1]) end
return 0`)

func (t *Timers) unclaim(ctx context.Context, key string, cs []claimed) error {
	calls := make([]scriptCall, len(cs))
	for i, c := range cs {
		calls[i] = scriptCall{keys: []string{key}, args: []any{c.member, c.lease, c.due.UnixMilli()}}
	}
	if _, err := evalAll(ctx, t.Redis, unclaimTimerScript, calls); err != nil {
		return fmt.Errorf("unclaim %s: %w", key, err)
	}
	return nil
}

func (t *Timers) finish(ctx context.Context, key string, cs []claimed) error {
	calls := make([]scriptCall, len(cs))
	for i, c := range cs {
		calls[i] = scriptCall{keys: []string{key}, args: []any{c.member, c.lease}}
	}
	if _, err := evalAll(ctx, t.Redis, finishTimerScript, calls); err != nil {
		return fmt.Errorf("finish %s: %w", key, err)
	}
	return nil
}

// events builds one internal event per claimed timer.
func (t *Timers) events(ctx context.Context, key string, cs []claimed, now time.Time) ([]event.Event, error) {
	if key == keyTimerEscalation {
		return t.escalationEvents(ctx, cs, now)
	}
	typ, prefix := event.CheckinMissed, "timer:checkin:"
	if key == keyTimerReassess {
		typ, prefix = event.ReassessmentOverdue, "timer:reassess:"
	}
	pipe := t.Redis.Pipeline()
	cmds := make([]*redis.SliceCmd, len(cs))
	for i, c := range cs {
		cmds[i] = pipe.HMGet(ctx, caseKey(c.member), "muni", "prov", "region", "unit")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read timer cases: %w", err)
	}
	evs := make([]event.Event, 0, len(cs))
	for i, c := range cs {
		v := cmds[i].Val()
		if len(v) != 4 || v[0] == nil {
			continue // the case is gone: nothing to report
		}
		rc := rules.RouteContext{ResponsibleUnit: str(v[3]),
			Jurisdiction: event.Jurisdiction{Municipality: str(v[0]), Province: str(v[1]), Region: str(v[2])}}
		ev := internalEvent(prefix+c.member+":"+strconv.FormatInt(c.due.UnixMilli(), 10), typ, c.member, rc, now)
		ev.Timer = &event.Timer{DueAt: c.due}
		evs = append(evs, ev)
	}
	return evs, nil
}

func (t *Timers) escalationEvents(ctx context.Context, cs []claimed, now time.Time) ([]event.Event, error) {
	evs := make([]event.Event, 0, len(cs))
	for _, c := range cs {
		e, err := t.Store.ByRef(ctx, c.member)
		if err == ErrNoEscalation {
			continue
		}
		if err != nil {
			return nil, err
		}
		id := fmt.Sprintf("timer:esc:%s:%d:%d", e.ID, e.Step, e.Round)
		ev := internalEvent(id, event.EscalationTimeout, e.CaseRef, e.Alert.Route, now)
		ev.Timer = &event.Timer{DueAt: c.due, EscalationID: e.ID, Step: e.Step, Round: e.Round}
		evs = append(evs, ev)
	}
	return evs, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func redisZ(at time.Time, member string) redis.Z {
	return redis.Z{Score: float64(at.UnixMilli()), Member: member}
}
