package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
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
	Batch  int              // timers claimed per shard and pass (default 1000)
	// Parallel is how many shards are fired at once (default 8).
	Parallel int
	Log      logrus.FieldLogger
	// Metrics observe firing lateness (nil: none).
	Metrics *TimerMetrics
	// Deadlines, when set, remembers the first deadline of each timer key
	// for NextDue and FireAllDue (the simulator; nil: read them all).
	Deadlines *TimerDeadlines

	health failures // what the last round of Run failed on
}

// claimTimersScript leases up to ARGV[2] members due at ARGV[1] until
// ARGV[3], returning member, original score pairs.
var claimTimersScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #due, 2 do redis.call('ZADD', KEYS[1], ARGV[3], due[i]) end
return due`)

// finishTimersScript removes each member ARGV[2..] of KEYS[1] only if it
// still has the leased score ARGV[1]: a deadline moved meanwhile by the
// case's state stays. One call for a whole claim (they share the lease).
var finishTimersScript = redis.NewScript(`
local n = 0
for i = 2, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) == tonumber(ARGV[1]) then n = n + redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return n`)

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
		t.Batch = 1000
	}
	if t.Parallel <= 0 {
		t.Parallel = 8
	}
	if t.Now == nil {
		t.Now = time.Now
	}
}

// timerSets are the deadlines Timers fires, in the order of a round:
// escalation timeouts first (a ladder waiting to climb), so a backlog of
// check-ins does not hold them back.
var timerSets = []shardedSet{keyTimerEscalation, keyTimerCheckin, keyTimerReassess}

// maxPasses bounds how many passes over the shards one round makes while
// shards keep coming back full (Batch each): with the defaults, up to
// 17 passes of 1,000 timers from each of the 17 keys, after which the
// next round starts at once. Firing a backlog waits on round trips (claim,
// case reads, the produce, the finish), not on CPU: 8 shards at once with
// 1,000 each fired 100k due deadlines in 2.4-2.6 s where 4 with 500 took
// 5.0-5.2 s (docs/benchmarks.md).
const maxPasses = 17

// Run fires due timers until ctx ends. A round works through every shard
// of every set and goes on while shards come back full, so a backlog is
// fired as fast as Redis and Kafka take it, not a batch per poll. A
// failing round (Redis or Kafka down) never ends it: the next round waits
// with backoff (from Poll up to 5s), Check reports the failure, and it is
// logged once per backoff step.
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
		more, failed := t.round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		t.health.set("timers", failed)
		if failed == nil {
			if attempt > 0 {
				t.Log.WithField("attempts", attempt).Info("firing timers works again")
			}
			wait, attempt = t.Poll, 0
			if more {
				wait = 0
			}
			continue
		}
		t.Log.WithError(failed).WithField("attempt", attempt+1).Warn("firing timers failed; they stay due, retrying with backoff")
		wait = backoff.Delay(attempt)
		attempt++
	}
}

// round fires what is due in every set; more reports that a set was still
// coming back full after maxPasses.
func (t *Timers) round(ctx context.Context) (more bool, failed error) {
	for _, set := range timerSets {
		for pass := 0; ; pass++ {
			_, full, err := t.fireSet(ctx, set)
			if err != nil {
				if ctx.Err() == nil && failed == nil {
					failed = fmt.Errorf("fire %s: %w", set.base, err)
				}
				break
			}
			if !full {
				break
			}
			if pass+1 == maxPasses {
				more = true
				break
			}
		}
	}
	return more, failed
}

// Check is the timers' readiness check: nil unless the last round failed.
func (t *Timers) Check() error { return t.health.err() }

// claimed is a timer of a claim (its lease is the claim's).
type claimed struct {
	member string
	due    time.Time
}

// FireDue makes one pass over the shards of a set: each claims up to
// Batch due timers, publishes their events and removes them. It returns
// how many it fired.
func (t *Timers) FireDue(ctx context.Context, set shardedSet) (int, error) {
	n, _, err := t.fireSet(ctx, set)
	return n, err
}

// fireSet is FireDue, reporting also whether a shard came back full (more
// may be due). Shards are worked on by up to Parallel goroutines, each
// instance starting at a random shard; a failing shard does not stop the
// others.
func (t *Timers) fireSet(ctx context.Context, set shardedSet) (int, bool, error) {
	t.defaults()
	keys := set.shuffledKeys()
	type result struct {
		n    int
		full bool
		err  error
	}
	work := make(chan string)
	results := make(chan result, len(keys))
	var wg sync.WaitGroup
	for range min(t.Parallel, len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range work {
				n, full, err := t.fireKey(ctx, set, key)
				results <- result{n, full, err}
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	close(results)
	var fired int
	var full bool
	var errs []error
	for r := range results {
		fired += r.n
		full = full || r.full
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	return fired, full, errors.Join(errs...)
}

// fireKey claims the due timers of one shard, publishes their events and
// removes them; full reports that it claimed a whole Batch.
func (t *Timers) fireKey(ctx context.Context, set shardedSet, key string) (int, bool, error) {
	now := t.Now()
	lease := now.Add(t.Lease).UnixMilli()
	res, err := claimTimersScript.Run(ctx, t.Redis, []string{key}, now.UnixMilli(), t.Batch, lease).StringSlice()
	if err != nil {
		return 0, false, fmt.Errorf("claim %s: %w", key, err)
	}
	var cs []claimed
	for i := 0; i+1 < len(res); i += 2 {
		ms, _ := strconv.ParseFloat(res[i+1], 64)
		cs = append(cs, claimed{member: res[i], due: time.UnixMilli(int64(ms)).UTC()})
	}
	if len(cs) == 0 {
		return 0, false, nil
	}
	evs, done, err := t.events(ctx, set, cs, now)
	if err == nil && len(evs) > 0 {
		// Within the lease: a write that outlives it would let another
		// instance fire the same timers (absorbed, but avoidable).
		pctx, cancel := context.WithTimeout(ctx, t.Lease/2)
		err = publishInternal(pctx, t.Writer, t.Topic, evs...)
		cancel()
	}
	if err != nil {
		// Give the timers back with their real due times, so the next round
		// reports the deadline itself and not the lease (which the handler
		// would find stale).
		if uerr := t.unclaim(ctx, key, lease, cs); uerr != nil {
			t.Log.WithError(uerr).Warn("timers stay leased until the lease runs out")
		}
		return 0, false, err
	}
	t.Metrics.fired(set, done, now)
	return len(evs), len(cs) == t.Batch, t.finish(ctx, key, lease, done)
}

// unclaimTimerScript restores ARGV[3] as the score of ARGV[1] if it still
// has the leased score ARGV[2].
var unclaimTimerScript = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then return redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1]) end
return 0`)

// unclaim gives the timers cs, claimed together under lease, back with
// their due times.
func (t *Timers) unclaim(ctx context.Context, key string, lease int64, cs []claimed) error {
	calls := make([]scriptCall, len(cs))
	for i, c := range cs {
		calls[i] = scriptCall{keys: []string{key}, args: []any{c.member, lease, c.due.UnixMilli()}}
	}
	if _, err := evalAll(ctx, t.Redis, unclaimTimerScript, calls); err != nil {
		return fmt.Errorf("unclaim %s: %w", key, err)
	}
	return nil
}

// finish removes the fired timers cs, claimed together under lease,
// that still hold it: one script call.
func (t *Timers) finish(ctx context.Context, key string, lease int64, cs []claimed) error {
	args := make([]any, 0, len(cs)+1)
	args = append(args, lease)
	for _, c := range cs {
		args = append(args, c.member)
	}
	if err := finishTimersScript.Run(ctx, t.Redis, []string{key}, args...).Err(); err != nil {
		return fmt.Errorf("finish %s: %w", key, err)
	}
	return nil
}

// events builds one internal event per claimed timer and returns the
// timers to finish: all of them, but for an escalation whose record cannot
// be read, which stays leased (and is claimed again when its lease runs
// out) rather than hold back the rest of its shard.
func (t *Timers) events(ctx context.Context, set shardedSet, cs []claimed, now time.Time) ([]event.Event, []claimed, error) {
	if set == keyTimerEscalation {
		return t.escalationEvents(ctx, cs, now)
	}
	typ, prefix := event.CheckinMissed, "timer:checkin:"
	if set == keyTimerReassess {
		typ, prefix = event.ReassessmentOverdue, "timer:reassess:"
	}
	pipe := t.Redis.Pipeline()
	cmds := make([]*redis.SliceCmd, len(cs))
	for i, c := range cs {
		cmds[i] = pipe.HMGet(ctx, caseKey(c.member), "muni", "prov", "region", "unit")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, fmt.Errorf("read timer cases: %w", err)
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
	return evs, cs, nil
}

func (t *Timers) escalationEvents(ctx context.Context, cs []claimed, now time.Time) ([]event.Event, []claimed, error) {
	refs := make([]string, len(cs))
	for i, c := range cs {
		refs[i] = c.member
	}
	es, bad, err := t.Store.ByRefs(ctx, refs)
	if err != nil {
		return nil, nil, err
	}
	evs := make([]event.Event, 0, len(cs))
	done := make([]claimed, 0, len(cs))
	for i, c := range cs {
		if bad[i] != nil {
			t.Log.WithError(bad[i]).WithField("escalation", c.member).
				Error("escalation timeout not fired: its record cannot be read; retried when the claim's lease runs out")
			t.Metrics.unreadable(keyTimerEscalation, 1)
			continue
		}
		done = append(done, c)
		e := es[i]
		if e == nil {
			continue // closed and expired, or not an escalation: nothing to time out
		}
		id := fmt.Sprintf("timer:esc:%s:%d:%d", e.ID, e.Step, e.Round)
		ev := internalEvent(id, event.EscalationTimeout, e.CaseRef, e.Alert.Route, now)
		ev.Timer = &event.Timer{DueAt: c.due, EscalationID: e.ID, Step: e.Step, Round: e.Round}
		evs = append(evs, ev)
	}
	return evs, done, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func redisZ(at time.Time, member string) redis.Z {
	return redis.Z{Score: float64(at.UnixMilli()), Member: member}
}
