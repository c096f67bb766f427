package dispatcher

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/rules"
	"github.com/viogen-alerts/dispatcher/templates"
)

// Scheduler fires the configured schedules: at each firing, one digest
// per recipient contact of the patrol checks due that local day for the
// cases its agency serves. Every instance runs one; a Redis lock per
// firing lets exactly one of them send it. See docs/schedules.md.
type Scheduler struct {
	Rules  *rules.Config
	Redis  redis.UniversalClient
	Writer Sink
	Topic  string // default TopicIntents
	Clock  Clock  // default RealClock
	Log    logrus.FieldLogger
	// Instance names this process in the locks it holds (default host,
	// pid and a random suffix).
	Instance string
	// Live, when set, supplies the configuration in use instead of Rules;
	// Run re-arms every schedule when it changes.
	Live *Live

	once     sync.Once
	instance string
	health   failures // schedules whose last firing attempt failed
	// observe, when set (tests), sees every firing attempt of Run.
	observe func(s *rules.Schedule, at time.Time, sent bool, err error)
}

const (
	// The lock of a firing outlives the repeated hour of a fall-back and
	// any instance's clock skew, so a firing is sent once.
	scheduleLockTTL = 24 * time.Hour
	// scheduleLease is how long a firing in progress holds its lock
	// ("firing:<owner>"): an instance that dies while firing leaves it to
	// the others after this long, instead of for scheduleLockTTL.
	scheduleLease = 5 * time.Minute
	// scheduleMaxWait bounds one sleep, so a stepped wall clock or a
	// suspended host delays a firing by at most this much.
	scheduleMaxWait = time.Minute
	// A firing is sent at most scheduleLate after its time: one missed
	// by a restart, a deploy or an outage is sent late, once; a failed
	// one is tried again with backoff (at most scheduleRetry apart) until
	// then.
	scheduleLate  = time.Hour
	scheduleRetry = 5 * time.Second
	// scheduleBatch bounds one pipelined read of case hashes.
	scheduleBatch = 500
	// scheduleWallLayout names a firing by its local wall-clock time, without
	// offset: both showings of a repeated time take the same lock.
	scheduleWallLayout = "2006-01-02T15:04:05"
)

func scheduleLockKey(scheduleID, wall string) string {
	return "lock:schedule:" + scheduleID + ":" + wall
}

// DigestCaseRef is the case reference of a schedule's digest intents: not
// a case, but it keys them in Kafka and in delivery state as a case
// reference does, all of one schedule together.
func DigestCaseRef(scheduleID string) string { return "digest-" + scheduleID }

// Run fires every schedule at its times until ctx ends. A firing up to
// scheduleLate old when Run starts or wakes (a restart, a deploy, a
// suspended host) is sent late, the latest only; a failing one is retried
// until then. The firing locks keep all of it to one send per firing.
func (sc *Scheduler) Run(ctx context.Context) error {
	clock := sc.clock()
	var changed <-chan struct{}
	if sc.Live != nil {
		changed = sc.Live.Changed()
	}
	slots := sc.arm(clock.Now())
	for {
		now := clock.Now()
		for _, sl := range slots {
			if !sl.wake.After(now) {
				sc.step(ctx, sl, now)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := scheduleMaxWait
		now = clock.Now()
		for _, sl := range slots {
			if !sl.off {
				wait = min(wait, sl.wake.Sub(now))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-clock.After(wait):
		case <-changed:
			// A reload: the schedules are armed again from the new
			// configuration. A firing already sent is not sent again (its
			// lock is held); a removed schedule stops.
			for _, sl := range slots {
				sc.health.set(sl.s.ID, nil)
			}
			slots = sc.arm(clock.Now())
		}
	}
}

func (sc *Scheduler) rules() *rules.Config {
	if sc.Live != nil {
		return sc.Live.Load().Config
	}
	return sc.Rules
}

// arm computes the next firing of every schedule of the configuration.
func (sc *Scheduler) arm(now time.Time) []*scheduleSlot {
	cfg := sc.rules()
	var slots []*scheduleSlot
	for i := range cfg.Schedules {
		s := &cfg.Schedules[i]
		at := s.NextFire(now.Add(-scheduleLate)) // a firing just missed is still sent
		if at.IsZero() {
			sc.Log.WithField("schedule", s.ID).Warn("schedule never fires")
			continue
		}
		slots = append(slots, &scheduleSlot{s: s, at: at, wake: at})
		sc.Log.WithFields(logrus.Fields{"schedule": s.ID, "next": fireWall(s, at)}).Info("schedule armed")
	}
	return slots
}

// scheduleSlot is one schedule's next firing in Run.
type scheduleSlot struct {
	s    *rules.Schedule
	at   time.Time // the firing (its nominal time)
	wake time.Time // when to try it: at, or a retry
	off  bool      // never fires again
	fail int       // consecutive failed attempts (backoff step)
}

// step tries a due firing and arms the next one.
func (sc *Scheduler) step(ctx context.Context, sl *scheduleSlot, now time.Time) {
	log := sc.Log.WithField("schedule", sl.s.ID)
	missed := 0
	for range 10000 { // bounded catch-up: only the latest due firing is sent
		next := sl.s.NextFire(sl.at)
		if next.IsZero() || next.After(now) {
			break
		}
		missed++
		sl.at = next
	}
	if missed > 0 {
		log.WithFields(logrus.Fields{"missed": missed, "fire_at": fireWall(sl.s, sl.at)}).Error("schedule firings missed")
	}
	if late := now.Sub(sl.at); late > scheduleLate {
		log.WithFields(logrus.Fields{"fire_at": fireWall(sl.s, sl.at), "late": late.String()}).Error("schedule firing missed: too late to send")
	} else if !sc.try(ctx, sl, now) {
		return // a retry is armed
	}
	sl.at = sl.s.NextFire(sl.at)
	sl.wake = sl.at
	if sl.at.IsZero() {
		sl.off = true
		sl.wake = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
}

// try fires the slot; false when it failed, or another instance is
// firing it, and a retry is armed.
func (sc *Scheduler) try(ctx context.Context, sl *scheduleSlot, now time.Time) bool {
	sent, err := sc.Fire(ctx, sl.s, sl.at)
	if errors.Is(err, errScheduleBusy) {
		// Not a failure: look again until the other instance is done, or
		// its lease runs out (it died) and this one fires it.
		sl.wake = now.Add(scheduleRetry)
		return false
	}
	if sc.observe != nil {
		sc.observe(sl.s, sl.at, sent, err)
	}
	if err == nil || ctx.Err() != nil {
		sl.fail = 0
		sc.health.set(sl.s.ID, nil)
		return true
	}
	log := sc.Log.WithError(err).WithFields(logrus.Fields{"schedule": sl.s.ID, "fire_at": fireWall(sl.s, sl.at), "attempt": sl.fail + 1})
	delay := min(Backoff{Min: 500 * time.Millisecond, Max: scheduleRetry}.Delay(sl.fail), scheduleRetry)
	sl.fail++
	if retry := now.Add(delay); retry.Sub(sl.at) <= scheduleLate {
		sl.wake = retry
		sc.health.set(sl.s.ID, err)
		log.Warn("schedule firing failed; will retry")
		return false
	}
	sl.fail = 0
	sc.health.set(sl.s.ID, nil) // the next firing starts afresh
	log.Error("schedule firing failed; giving up")
	return true
}

// Check is the scheduler's readiness check: nil unless a firing is
// failing and being retried.
func (sc *Scheduler) Check() error { return sc.health.err() }

// Fire sends the firing of s at `at` unless another instance has: it
// takes the firing's lock, builds the digests and writes their intents.
// sent reports that this instance took the firing and wrote them (none
// when no case is due). On an error the lock is released, so a retry
// here or elsewhere can send it.
func (sc *Scheduler) Fire(ctx context.Context, s *rules.Schedule, at time.Time) (sent bool, err error) {
	wall := fireWall(s, at)
	key, owner := scheduleLockKey(s.ID, wall), sc.owner()
	log := sc.Log.WithFields(logrus.Fields{"schedule": s.ID, "fire_at": wall})
	took, err := sc.Redis.SetNX(ctx, key, scheduleFiring+owner, scheduleLease).Result()
	if err != nil {
		return false, fmt.Errorf("lock schedule %s at %s: %w", s.ID, wall, err)
	}
	if !took {
		return false, sc.taken(ctx, key, log)
	}
	intents, nCases, err := sc.digests(ctx, s, at, wall)
	if err == nil {
		err = sc.write(ctx, intents)
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err != nil {
		if uerr := scheduleLockScript.Run(uctx, sc.Redis, []string{key}, scheduleFiring+owner, "").Err(); uerr != nil {
			err = errors.Join(err, fmt.Errorf("release lock %s: %w", key, uerr))
		}
		return false, err
	}
	// Sent: the lock now says so for scheduleLockTTL. If this fails, the
	// lease runs out and another instance sends it again (a duplicate,
	// never a loss).
	marked, derr := scheduleLockScript.Run(uctx, sc.Redis, []string{key}, scheduleFiring+owner, owner, scheduleLockTTL.Milliseconds()).Int()
	if derr != nil || marked != 1 {
		// Failed, or the lease ran out first (another instance may hold the
		// lock now): the firing may be sent again, as the same intents.
		log.WithError(derr).WithField("lease", scheduleLease.String()).
			Warn("schedule fired, but its lock could not be marked sent: another instance may send it again")
	}
	log.WithFields(logrus.Fields{"digests": len(intents), "cases": nCases}).Info("schedule fired")
	return true, nil
}

// scheduleFiring prefixes the owner in the lock of a firing in progress;
// a sent firing's lock holds the owner alone.
const scheduleFiring = "firing:"

// errScheduleBusy: another instance is firing it right now.
var errScheduleBusy = errors.New("schedule firing in progress on another instance")

// taken says why the lock was not taken: nil when the firing was sent,
// errScheduleBusy while another instance holds it in progress.
func (sc *Scheduler) taken(ctx context.Context, key string, log logrus.FieldLogger) error {
	v, err := sc.Redis.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return errScheduleBusy // just released or expired: take it on the retry
	}
	if err != nil {
		return fmt.Errorf("read lock %s: %w", key, err)
	}
	if strings.HasPrefix(v, scheduleFiring) {
		log.Debug("schedule firing in progress on another instance")
		return errScheduleBusy
	}
	log.Debug("schedule firing sent by another instance")
	return nil
}

// scheduleLockScript changes a lock only while ARGV[1] holds it: deletes
// it (ARGV[2] empty), or sets it to ARGV[2] for ARGV[3] ms.
var scheduleLockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then return redis.call('DEL', KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`)

func (sc *Scheduler) write(ctx context.Context, intents []Intent) error {
	if len(intents) == 0 {
		return nil
	}
	topic := sc.Topic
	if topic == "" {
		topic = TopicIntents
	}
	msgs := make([]kafka.Message, len(intents))
	for i, in := range intents {
		b, err := in.Encode()
		if err != nil {
			return err
		}
		msgs[i] = kafkaMsg(topic, in.CaseRef, b)
	}
	if err := sc.Writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("write %d digests to %s: %w", len(msgs), topic, err)
	}
	return nil
}

// dueCase is a case whose check-in deadline falls in the digest's day.
type dueCase struct {
	id    string
	due   time.Time
	level event.Level
	rc    rules.RouteContext
}

// digests builds one intent per recipient contact that has cases due
// in the local day of at, and says how many cases were due.
func (sc *Scheduler) digests(ctx context.Context, s *rules.Schedule, at time.Time, wall string) ([]Intent, int, error) {
	cfg := sc.rules()
	sel, allowed := digestSelector(cfg, s)
	if len(allowed) == 0 {
		return nil, 0, nil
	}
	start, end := s.LocalDay(at)
	cases, err := sc.dueCases(ctx, start, end, s.Digest.Levels)
	if err != nil {
		return nil, 0, err
	}
	groups := groupDigests(cfg, s, sel, allowed, cases)
	return digestIntents(s, at, wall, sc.clock().Now(), groups), len(cases), nil
}

// contactDigest is one recipient's digest.
type contactDigest struct {
	target rules.Target
	items  []templates.DigestItem
}

// groupDigests routes each case as an alert to the schedule's target
// would be routed, so an agency lists only the places it serves.
func groupDigests(cfg *rules.Config, s *rules.Schedule, sel string, allowed map[string]bool, cases []dueCase) map[string]*contactDigest {
	step := rules.PolicyStep{Notify: []rules.TargetSpec{{Agency: sel, Role: s.To.Role, Via: s.Via, Optional: true}}}
	out := map[string]*contactDigest{}
	for _, c := range cases {
		targets, _ := cfg.Resolve(step, c.rc)
		for _, t := range targets {
			// A digest never goes to the fallback agency: nobody there
			// patrols the place (see docs/schedules.md).
			if t.Unrouted || !allowed[t.ContactID] {
				continue
			}
			d := out[t.ContactID]
			if d == nil {
				d = &contactDigest{target: t}
				out[t.ContactID] = d
			}
			d.items = append(d.items, templates.DigestItem{CaseRef: c.id, Level: c.level.String(), DueAt: c.due})
		}
	}
	return out
}

// digestIntents makes the intents of one firing, ids derived from the
// firing's wall-clock name so a repeat is absorbed by delivery.
func digestIntents(s *rules.Schedule, at time.Time, wall string, now time.Time, groups map[string]*contactDigest) []Intent {
	firing := "digest:" + s.ID + ":" + wall
	sum := sha256.Sum256([]byte(firing))
	alertID := hex.EncodeToString(sum[:8])
	out := make([]Intent, 0, len(groups))
	for _, d := range groups {
		sort.Slice(d.items, func(i, j int) bool {
			a, b := d.items[i], d.items[j]
			if !a.DueAt.Equal(b.DueAt) {
				return a.DueAt.Before(b.DueAt)
			}
			return a.CaseRef < b.CaseRef
		})
		t := d.target
		out = append(out, Intent{
			ID: IntentID(firing, 0, 0, t.ContactID), Kind: KindDigest, AlertID: alertID,
			Rule: s.ID, Template: s.Template, Severity: "info", CaseRef: DigestCaseRef(s.ID),
			OccurredAt: at.UTC(), DecidedAt: now.UTC(),
			AgencyID: t.AgencyID, AgencyName: t.AgencyName, ContactID: t.ContactID, Locale: t.Locale,
			Channels: t.Channels, Fallback: t.Fallback, Digest: d.items,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContactID < out[j].ContactID })
	return out
}

// digestSelector is the target selector to resolve each case with, and
// the contacts a digest may go to. A kind selects the agencies of that
// kind serving the case's place; an agency id, that agency when it is
// one of them.
func digestSelector(cfg *rules.Config, s *rules.Schedule) (string, map[string]bool) {
	recipients := cfg.Recipients(s)
	allowed := make(map[string]bool, len(recipients))
	sel := s.To.Agency
	isKind := false
	for _, t := range recipients {
		allowed[t.ContactID] = true
		isKind = isKind || t.AgencyKind == s.To.Agency
	}
	if !isKind && len(recipients) > 0 {
		sel = recipients[0].AgencyKind
	}
	return sel, allowed
}

// dueCases reads the check-in deadlines in [start, end) and keeps the
// active cases of the given levels, reading case hashes in pipelined
// batches.
func (sc *Scheduler) dueCases(ctx context.Context, start, end time.Time, levels []event.Level) ([]dueCase, error) {
	zs, err := keyTimerCheckin.rangeByScore(ctx, sc.Redis, strconv.FormatInt(start.UnixMilli(), 10),
		"("+strconv.FormatInt(end.UnixMilli(), 10), 0)
	if err != nil {
		return nil, fmt.Errorf("read check-in timers: %w", err)
	}
	var out []dueCase
	for len(zs) > 0 {
		batch := zs[:min(len(zs), scheduleBatch)]
		zs = zs[len(batch):]
		pipe := sc.Redis.Pipeline()
		cmds := make([]*redis.SliceCmd, len(batch))
		for i, z := range batch {
			cmds[i] = pipe.HMGet(ctx, caseKey(hashField(z.Member)), "level", "muni", "prov", "region", "unit", "active")
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read %d cases: %w", len(batch), err)
		}
		for i, z := range batch {
			if c, ok := dueCaseOf(hashField(z.Member), z.Score, cmds[i].Val(), levels); ok {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// dueCaseOf reads the HMGET of one case; closed, vanished and unlisted
// cases are not due.
func dueCaseOf(id string, score float64, v []any, levels []event.Level) (dueCase, bool) {
	if len(v) != 6 || hashField(v[5]) != "1" {
		return dueCase{}, false
	}
	n, _ := strconv.Atoi(hashField(v[0]))
	lvl := event.Level(n)
	if !digestLevel(levels, lvl) {
		return dueCase{}, false
	}
	return dueCase{id: id, level: lvl, due: time.UnixMilli(int64(score)).UTC(), rc: rules.RouteContext{
		Jurisdiction:    event.Jurisdiction{Municipality: hashField(v[1]), Province: hashField(v[2]), Region: hashField(v[3])},
		ResponsibleUnit: hashField(v[4]),
	}}, true
}

func hashField(v any) string {
	s, _ := v.(string)
	return s
}

func digestLevel(levels []event.Level, l event.Level) bool {
	for _, x := range levels {
		if x == l {
			return true
		}
	}
	return false
}

// fireWall is the firing's local wall-clock time in the schedule's zone.
func fireWall(s *rules.Schedule, at time.Time) string {
	loc := s.Location()
	if loc == nil {
		loc = time.UTC
	}
	return at.In(loc).Format(scheduleWallLayout)
}

func (sc *Scheduler) clock() Clock {
	if sc.Clock == nil {
		return RealClock{}
	}
	return sc.Clock
}

func (sc *Scheduler) owner() string {
	sc.once.Do(func() {
		sc.instance = sc.Instance
		if sc.instance == "" {
			host, _ := os.Hostname()
			var b [4]byte
			_, _ = rand.Read(b[:])
			sc.instance = host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
		}
	})
	return sc.instance
}
