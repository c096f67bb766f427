package dispatcher

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
	"github.com/viogen-alerts/dispatcher/rules"
	"github.com/viogen-alerts/dispatcher/templates"
)

// Schedules used by these tests, in the shape of deploy/config/viogen.yaml.
const (
	patrolSchedule = `
  - id: patrol-reminders
    cron: "0 7 * * *"
    zone: Europe/Madrid
    digest: {levels: [alto, extremo]}
    to: {agency: local_police, role: duty}
    via: [email]
    template: patrol_digest
`
	nightSchedule = `
  - id: night-check
    cron: "30 2 * * *"
    zone: Europe/Madrid
    digest: {levels: [alto, extremo]}
    to: {agency: local_police, role: duty}
    via: [email]
    template: patrol_digest
`
	hourlySchedule = `
  - id: hourly
    cron: "0 * * * *"
    zone: Europe/Madrid
    digest: {levels: [extremo]}
    to: {agency: local_police, role: duty}
    via: [email]
`
)

// scheduleConfig is the example configuration with its schedules
// replaced by the given ones.
func scheduleConfig(t testing.TB, schedules ...string) *rules.Config {
	t.Helper()
	b, err := os.ReadFile("../deploy/config/viogen.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base, _, ok := strings.Cut(string(b), "\nschedules:")
	if !ok {
		t.Fatal("example config has no schedules section")
	}
	cfg, err := rules.Parse([]byte(base+"\nschedules:"+strings.Join(schedules, "")), "viogen.yaml", rules.LoadOptions{})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func scheduleByID(t testing.TB, cfg *rules.Config, id string) *rules.Schedule {
	t.Helper()
	for i := range cfg.Schedules {
		if cfg.Schedules[i].ID == id {
			return &cfg.Schedules[i]
		}
	}
	t.Fatalf("no schedule %s", id)
	return nil
}

func madrid(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Madrid")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestDSTScheduleFireTimes walks each schedule over the three local days
// around the 2026 changes in Europe/Madrid: 29 March (02:00 → 03:00) and
// 25 October (03:00 → 02:00).
func TestDSTScheduleFireTimes(t *testing.T) {
	cfg := scheduleConfig(t, patrolSchedule, nightSchedule)
	loc := madrid(t)
	tests := []struct {
		schedule string
		day      time.Time // the change day
		want     []string  // UTC instants, one per local day
		local    []string  // the same in local time
	}{
		{"patrol-reminders", time.Date(2026, 3, 29, 12, 0, 0, 0, loc),
			[]string{"2026-03-28T06:00:00Z", "2026-03-29T05:00:00Z", "2026-03-30T05:00:00Z"},
			[]string{"03-28 07:00 CET", "03-29 07:00 CEST", "03-30 07:00 CEST"}},
		{"patrol-reminders", time.Date(2026, 10, 25, 12, 0, 0, 0, loc),
			[]string{"2026-10-24T05:00:00Z", "2026-10-25T06:00:00Z", "2026-10-26T06:00:00Z"},
			[]string{"10-24 07:00 CEST", "10-25 07:00 CET", "10-26 07:00 CET"}},
		// 02:30 does not exist on 29 March: it fires when the clock jumps.
		{"night-check", time.Date(2026, 3, 29, 12, 0, 0, 0, loc),
			[]string{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"},
			[]string{"03-28 02:30 CET", "03-29 03:00 CEST", "03-30 02:30 CEST"}},
		// 02:30 happens twice on 25 October: it fires at the first.
		{"night-check", time.Date(2026, 10, 25, 12, 0, 0, 0, loc),
			[]string{"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
			[]string{"10-24 02:30 CEST", "10-25 02:30 CEST", "10-26 02:30 CET"}},
	}
	for _, tc := range tests {
		t.Run(tc.schedule+"/"+tc.day.Format("01-02"), func(t *testing.T) {
			s := scheduleByID(t, cfg, tc.schedule)
			from, _ := s.LocalDay(tc.day.AddDate(0, 0, -1))
			_, to := s.LocalDay(tc.day.AddDate(0, 0, 1))
			var got, local []string
			perDay := map[string]int{}
			for at := s.NextFire(from.Add(-time.Nanosecond)); at.Before(to); at = s.NextFire(at) {
				got = append(got, at.UTC().Format(time.RFC3339))
				local = append(local, at.In(loc).Format("01-02 15:04 MST"))
				perDay[at.In(loc).Format("01-02")]++
			}
			t.Logf("%s: %v", s.Cron, local)
			if strings.Join(got, " ") != strings.Join(tc.want, " ") || strings.Join(local, " ") != strings.Join(tc.local, " ") {
				t.Errorf("fires at %v (%v), want %v (%v)", got, local, tc.want, tc.local)
			}
			for day, n := range perDay {
				if n != 1 {
					t.Errorf("%d firings on %s, want 1", n, day)
				}
			}
			// What robfig/cron alone does, for docs/schedules.md.
			var naive []string
			for at := s.CronSchedule().Next(from.Add(-time.Nanosecond)); at.Before(to); at = s.CronSchedule().Next(at) {
				naive = append(naive, at.In(loc).Format("01-02 15:04 MST"))
			}
			t.Logf("robfig/cron Next alone: %v", naive)
		})
	}
}

// TestDSTRepeatedHourRestart: an instance (re)started inside the repeated
// hour after the first 02:30 fires the second showing; both showings
// name the same wall-clock lock, so the firing is still sent once.
func TestDSTRepeatedHourRestart(t *testing.T) {
	s := scheduleByID(t, scheduleConfig(t, nightSchedule), "night-check")
	first, second := utc("2026-10-25T00:30:00Z"), utc("2026-10-25T01:30:00Z")
	if got := s.NextFire(utc("2026-10-25T00:45:00Z")); !got.Equal(utc("2026-10-26T01:30:00Z")) {
		t.Errorf("after the first 02:30 (02:45 CEST): next %v, want the next day", got)
	}
	if got := s.NextFire(utc("2026-10-25T01:15:00Z")); !got.Equal(second) {
		t.Errorf("from 02:15 CET: next %v, want %v", got, second)
	}
	if a, b := fireWall(s, first), fireWall(s, second); a != b || a != "2026-10-25T02:30:00" {
		t.Errorf("lock names %q and %q, want both 2026-10-25T02:30:00", a, b)
	}
}

// TestDSTHourlySchedule documents an hourly schedule on the change days:
// each local wall time fires once, so the spring day has 23 firings
// (02:00 fires at 03:00 with it) and the autumn day 24 (not 25).
func TestDSTHourlySchedule(t *testing.T) {
	s := scheduleByID(t, scheduleConfig(t, hourlySchedule), "hourly")
	loc := madrid(t)
	for day, want := range map[time.Time]int{
		time.Date(2026, 3, 29, 12, 0, 0, 0, loc):  23,
		time.Date(2026, 10, 25, 12, 0, 0, 0, loc): 24,
		time.Date(2026, 10, 26, 12, 0, 0, 0, loc): 24,
	} {
		start, end := s.LocalDay(day)
		n := 0
		for at := s.NextFire(start.Add(-time.Nanosecond)); at.Before(end); at = s.NextFire(at) {
			n++
		}
		if n != want {
			t.Errorf("%s: %d firings, want %d", day.Format("01-02"), n, want)
		}
	}
}

func TestDSTLocalDay(t *testing.T) {
	s := scheduleByID(t, scheduleConfig(t, patrolSchedule), "patrol-reminders")
	loc := madrid(t)
	for _, tc := range []struct {
		at         time.Time
		start, end string
		hours      float64
	}{
		{time.Date(2026, 3, 29, 7, 0, 0, 0, loc), "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", 23},
		{time.Date(2026, 10, 25, 7, 0, 0, 0, loc), "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", 25},
		{time.Date(2026, 10, 26, 0, 0, 0, 0, loc), "2026-10-25T23:00:00Z", "2026-10-26T23:00:00Z", 24},
	} {
		start, end := s.LocalDay(tc.at)
		if !start.Equal(utc(tc.start)) || !end.Equal(utc(tc.end)) || end.Sub(start).Hours() != tc.hours {
			t.Errorf("day of %v: [%v, %v), want [%s, %s) (%vh)", tc.at, start.UTC(), end.UTC(), tc.start, tc.end, tc.hours)
		}
	}
}

// scheduleEnv is Redis and Kafka shared by one or more Schedulers.
type scheduleEnv struct {
	cfg     *rules.Config
	srv     *testenv.Redis
	rdb     *redis.Client
	brokers []string
	writer  *kafka.Writer
}

func newScheduleEnv(t *testing.T, cfg *rules.Config) *scheduleEnv {
	t.Helper()
	_, brokers := testenv.StartKafka(t, 1, TopicIntents)
	w := NewWriter(brokers, quietLog())
	t.Cleanup(func() { _ = w.Close() })
	srv := testenv.StartRedis(t)
	return &scheduleEnv{cfg: cfg, srv: srv, rdb: srv.Client(t), brokers: brokers, writer: w}
}

// scheduler is one "instance".
func (e *scheduleEnv) scheduler(instance string, clock Clock) *Scheduler {
	return &Scheduler{Rules: e.cfg, Redis: e.rdb, Writer: e.writer, Topic: TopicIntents,
		Clock: clock, Log: quietLog(), Instance: instance}
}

// seedCase writes a case as apply.lua and the state stage keep it: the
// case hash and its check-in deadline in timers:checkin.
func (e *scheduleEnv) seedCase(t *testing.T, id, muni string, lvl event.Level, active bool, due time.Time) {
	t.Helper()
	ctx := context.Background()
	places := map[string][3]string{
		"13047": {"13", "CM", "gc-ciudad-real"},   // Herencia
		"07040": {"07", "IB", "pn-illes-balears"}, // Palma
		"45168": {"45", "CM", "gc-toledo"},        // Toledo: no local police adhered
	}
	p := places[muni]
	act := "0"
	if active {
		act = "1"
	}
	if err := e.rdb.HSet(ctx, caseKey(id), "level", int(lvl), "muni", muni, "prov", p[0], "region", p[1],
		"unit", p[2], "active", act).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.ZAdd(ctx, keyTimerCheckin.key(id), redis.Z{Score: float64(due.UnixMilli()), Member: id}).Err(); err != nil {
		t.Fatal(err)
	}
}

// intents reads every intent in the topic.
func (e *scheduleEnv) intents(t *testing.T) []Intent { return readIntents(t, e.brokers) }

// digestOf summarises intents as "contact: case,case".
func digestOf(ins []Intent) map[string]string {
	m := map[string]string{}
	for _, in := range ins {
		var refs []string
		for _, it := range in.Digest {
			refs = append(refs, it.CaseRef)
		}
		m[in.ContactID] = strings.Join(refs, ",")
	}
	return m
}

// TestDigestContent: each local police's duty contact gets the alto and
// extremo cases of its own municipality whose check-in is due that local
// day, on a 23-hour day.
func TestDigestContent(t *testing.T) {
	e := newScheduleEnv(t, scheduleConfig(t, patrolSchedule))
	loc := madrid(t)
	day := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, loc) }
	e.seedCase(t, "C-HER-A1", "13047", event.Alto, true, day(29, 10, 0))
	e.seedCase(t, "C-HER-E1", "13047", event.Extremo, true, day(29, 9, 0))
	e.seedCase(t, "C-HER-M1", "13047", event.Medio, true, day(29, 9, 30))    // level not listed
	e.seedCase(t, "C-HER-X1", "13047", event.Alto, false, day(29, 11, 0))    // closed
	e.seedCase(t, "C-HER-T1", "13047", event.Alto, true, day(30, 8, 0))      // tomorrow
	e.seedCase(t, "C-HER-Y1", "13047", event.Extremo, true, day(28, 23, 59)) // yesterday
	e.seedCase(t, "C-PMI-A1", "07040", event.Alto, true, day(29, 23, 30))    // 21:30 UTC: in the 23-hour day
	e.seedCase(t, "C-PMI-E1", "07040", event.Extremo, true, day(29, 0, 0))   // the day's first instant
	e.seedCase(t, "C-PMI-T1", "07040", event.Extremo, true, day(30, 0, 0))   // the next day's first instant
	e.seedCase(t, "C-PMI-L1", "07040", event.Extremo, true, day(30, 0, 30))  // within 24h of midnight, but tomorrow
	e.seedCase(t, "C-TOL-A1", "45168", event.Alto, true, day(29, 12, 0))     // no local police there
	if err := e.rdb.ZAdd(context.Background(), keyTimerCheckin.legacy(), redis.Z{Score: float64(day(29, 12, 0).UnixMilli()), Member: "C-GONE"}).Err(); err != nil {
		t.Fatal(err)
	}

	s := scheduleByID(t, e.cfg, "patrol-reminders")
	at := s.NextFire(day(29, 0, 0))
	if !at.Equal(day(29, 7, 0)) {
		t.Fatalf("fire at %v", at)
	}
	sc := e.scheduler("a", NewManualClock(at))
	if sent, err := sc.Fire(context.Background(), s, at); !sent || err != nil {
		t.Fatalf("Fire: sent %v, %v", sent, err)
	}
	ins := e.intents(t)
	got := digestOf(ins)
	want := map[string]string{"pl-herencia-reten": "C-HER-E1,C-HER-A1", "pl-palma-sala": "C-PMI-E1,C-PMI-A1"}
	if len(got) != len(want) || len(ins) != len(want) {
		t.Fatalf("digests %v, want %v", got, want)
	}
	for c, refs := range want {
		if got[c] != refs {
			t.Errorf("%s gets %q, want %q", c, got[c], refs)
		}
	}
	set, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		if in.Kind != KindDigest || in.Template != "patrol_digest" || in.Severity != "info" ||
			in.CaseRef != "digest-patrol-reminders" || in.Rule != "patrol-reminders" ||
			strings.Join(in.Channels, ",") != "email" || !in.OccurredAt.Equal(at) {
			t.Errorf("intent %+v", in)
		}
		if in.ID != IntentID("digest:patrol-reminders:2026-03-29T07:00:00", 0, 0, in.ContactID) {
			t.Errorf("intent id %s not derived from the firing", in.ID)
		}
		if in.Digest[0].Level != "extremo" || in.Digest[1].Level != "alto" {
			t.Errorf("levels %+v", in.Digest)
		}
		r, err := Render(set, in, "email", loc)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range in.Digest {
			if !strings.Contains(r.Body, it.CaseRef) {
				t.Errorf("email to %s does not list %s:\n%s", in.ContactID, it.CaseRef, r.Body)
			}
		}
	}
	// The same firing again (a second instance, a retry): nothing more.
	if sent, err := e.scheduler("b", NewManualClock(at)).Fire(context.Background(), s, at); sent || err != nil {
		t.Errorf("second Fire: sent %v, %v", sent, err)
	}
	if n := len(e.intents(t)); n != len(want) {
		t.Errorf("%d intents after a second Fire, want %d", n, len(want))
	}
}

// firing is one attempt observed in Run.
type firing struct {
	schedule, instance string
	at                 time.Time
	sent               bool
	err                error
}

type firings struct {
	mu  sync.Mutex
	all []firing
}

func (f *firings) observe(sc *Scheduler) {
	sc.observe = func(s *rules.Schedule, at time.Time, sent bool, err error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.all = append(f.all, firing{s.ID, sc.Instance, at, sent, err})
	}
}

// runUntil runs the schedulers on clock, moving it by step until end.
func runUntil(t *testing.T, clock *ManualClock, end time.Time, step time.Duration, scs ...*Scheduler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, sc := range scs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sc.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
	}
	wait, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	for {
		if err := clock.BlockUntil(wait, len(scs)); err != nil {
			t.Fatalf("schedulers did not go back to sleep at %v: %v", clock.Now(), err)
		}
		if !clock.Now().Before(end) {
			break
		}
		clock.Advance(step)
	}
	cancel()
	wg.Wait()
}

// TestScheduleRunAcrossDST drives Run with a manual clock over the two
// 2026 changes with a 02:30 schedule: one firing per local day.
func TestScheduleRunAcrossDST(t *testing.T) {
	loc := madrid(t)
	for _, tc := range []struct {
		name       string
		start, end time.Time
		due        time.Time // a case due on the change day
		want       []string
	}{
		{"october", time.Date(2026, 10, 24, 12, 0, 0, 0, loc), time.Date(2026, 10, 26, 12, 0, 0, 0, loc),
			time.Date(2026, 10, 25, 10, 0, 0, 0, loc), []string{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
		{"march", time.Date(2026, 3, 28, 12, 0, 0, 0, loc), time.Date(2026, 3, 30, 12, 0, 0, 0, loc),
			time.Date(2026, 3, 29, 10, 0, 0, 0, loc), []string{"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newScheduleEnv(t, scheduleConfig(t, nightSchedule))
			e.seedCase(t, "C-HER-A1", "13047", event.Alto, true, tc.due)
			clock := NewManualClock(tc.start)
			sc := e.scheduler("a", clock)
			var f firings
			f.observe(sc)
			runUntil(t, clock, tc.end, 10*time.Minute, sc)
			var got []string
			for _, x := range f.all {
				if x.err != nil || !x.sent {
					t.Errorf("firing %+v", x)
				}
				got = append(got, x.at.UTC().Format(time.RFC3339))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("fired at %v, want %v", got, tc.want)
			}
			ins := e.intents(t)
			if len(ins) != 1 || ins[0].ContactID != "pl-herencia-reten" || digestOf(ins)["pl-herencia-reten"] != "C-HER-A1" {
				t.Errorf("digests %v, want one to pl-herencia-reten", digestOf(ins))
			}
		})
	}
}

// TestScheduleTwoInstancesSendOneDigest: two instances share Redis and
// Kafka and both fire the 07:00 schedule; one digest set is written.
func TestScheduleTwoInstancesSendOneDigest(t *testing.T) {
	loc := madrid(t)
	e := newScheduleEnv(t, scheduleConfig(t, patrolSchedule, nightSchedule))
	e.seedCase(t, "C-HER-A1", "13047", event.Alto, true, time.Date(2026, 10, 25, 10, 0, 0, 0, loc))
	e.seedCase(t, "C-PMI-E1", "07040", event.Extremo, true, time.Date(2026, 10, 25, 20, 0, 0, 0, loc))
	clock := NewManualClock(time.Date(2026, 10, 25, 6, 50, 0, 0, loc))
	a, b := e.scheduler("a", clock), e.scheduler("b", clock)
	var f firings
	f.observe(a)
	f.observe(b)
	runUntil(t, clock, time.Date(2026, 10, 25, 7, 10, 0, 0, loc), time.Minute, a, b)

	sent := 0
	for _, x := range f.all {
		if x.err != nil || x.schedule != "patrol-reminders" || !x.at.Equal(time.Date(2026, 10, 25, 7, 0, 0, 0, loc)) {
			t.Errorf("firing %+v", x)
		}
		if x.sent {
			sent++
		}
	}
	if len(f.all) != 2 || sent != 1 {
		t.Errorf("%d attempts, %d sent; want 2 attempts, 1 sent", len(f.all), sent)
	}
	ins := e.intents(t)
	if got := digestOf(ins); len(ins) != 2 || got["pl-herencia-reten"] != "C-HER-A1" || got["pl-palma-sala"] != "C-PMI-E1" {
		t.Errorf("digests %v (%d intents), want one each to pl-herencia-reten and pl-palma-sala", got, len(ins))
	}

	// Two instances that disagree on which showing of the repeated 02:30
	// to fire (a restart in the repeated hour) still send it once.
	s := scheduleByID(t, e.cfg, "night-check")
	sentA, errA := a.Fire(context.Background(), s, utc("2026-10-25T00:30:00Z"))
	sentB, errB := b.Fire(context.Background(), s, utc("2026-10-25T01:30:00Z"))
	if errA != nil || errB != nil || !sentA || sentB {
		t.Errorf("repeated 02:30: a sent %v (%v), b sent %v (%v); want only a", sentA, errA, sentB, errB)
	}
	if n := len(e.intents(t)); n != 4 {
		t.Errorf("%d intents, want 4 (2 at 07:00, 2 at 02:30)", n)
	}
}

// TestScheduleFireReleasesLockOnWriteFailure: a firing whose intents
// cannot be written leaves the lock free, so a retry sends it.
func TestScheduleFireReleasesLockOnWriteFailure(t *testing.T) {
	loc := madrid(t)
	e := newScheduleEnv(t, scheduleConfig(t, patrolSchedule))
	e.seedCase(t, "C-HER-A1", "13047", event.Alto, true, time.Date(2026, 6, 1, 10, 0, 0, 0, loc))
	s := scheduleByID(t, e.cfg, "patrol-reminders")
	at := time.Date(2026, 6, 1, 7, 0, 0, 0, loc)
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	broken := &kafka.Writer{Addr: kafka.TCP("127.0.0.1:" + strconv.Itoa(port)), MaxAttempts: 1,
		WriteTimeout: time.Second, BatchTimeout: time.Millisecond}
	defer broken.Close()
	sc := e.scheduler("a", NewManualClock(at))
	sc.Writer = broken
	if sent, err := sc.Fire(context.Background(), s, at); sent || err == nil {
		t.Fatalf("Fire with Kafka down: sent %v, err %v", sent, err)
	}
	key := scheduleLockKey(s.ID, "2026-06-01T07:00:00")
	if n := e.rdb.Exists(context.Background(), key).Val(); n != 0 {
		t.Fatalf("lock %s kept after a failed firing", key)
	}
	if sent, err := e.scheduler("b", NewManualClock(at)).Fire(context.Background(), s, at); !sent || err != nil {
		t.Fatalf("retry: sent %v, %v", sent, err)
	}
	if owner := e.rdb.Get(context.Background(), key).Val(); owner != "b" {
		t.Errorf("lock held by %q, want b", owner)
	}
	if ttl := e.rdb.TTL(context.Background(), key).Val(); ttl <= 23*time.Hour {
		t.Errorf("lock ttl %v, want 24h", ttl)
	}
	if n := len(e.intents(t)); n != 1 {
		t.Errorf("%d intents, want 1", n)
	}
}

// TestScheduleFiringOfADeadInstanceIsTakenOver: the lock of a firing in
// progress held it for 24 h, so an instance dying between taking it and
// writing the digests lost that firing: the others saw it taken and never
// looked again. Now a firing in progress holds it for scheduleLease only,
// the others look again while it is in progress, and take it over once a
// dead instance's lease has run out.
func TestScheduleFiringOfADeadInstanceIsTakenOver(t *testing.T) {
	loc := madrid(t)
	e := newScheduleEnv(t, scheduleConfig(t, patrolSchedule))
	e.seedCase(t, "C-HER-A1", "13047", event.Alto, true, time.Date(2026, 6, 1, 10, 0, 0, 0, loc))
	s := scheduleByID(t, e.cfg, "patrol-reminders")
	at := time.Date(2026, 6, 1, 7, 0, 0, 0, loc)
	key := scheduleLockKey(s.ID, "2026-06-01T07:00:00")
	ctx := context.Background()

	// a is firing (its write hangs): the lock is held for the lease only,
	// and b is told to look again, not that it was sent.
	a := e.scheduler("a", NewManualClock(at))
	a.Writer = stuckSink{}
	actx, stopA := context.WithCancel(ctx)
	aDone := make(chan error, 1)
	go func() { _, err := a.Fire(actx, s, at); aDone <- err }()
	waitFor(t, ctx, func() bool { return e.rdb.Get(ctx, key).Val() == scheduleFiring+"a" })
	if ttl := e.rdb.PTTL(ctx, key).Val(); ttl <= 0 || ttl > scheduleLease {
		t.Errorf("lock of a firing in progress lives %v, want at most %v", ttl, scheduleLease)
	}
	b := e.scheduler("b", NewManualClock(at))
	if sent, err := b.Fire(ctx, s, at); sent || !errors.Is(err, errScheduleBusy) {
		t.Errorf("b during a's firing: sent %v, %v; want errScheduleBusy", sent, err)
	}
	stopA()
	<-aDone

	// What a dead instance leaves (its lease shortened for the test): b
	// looks again and sends once the lease has run out.
	if err := e.rdb.Set(ctx, key, scheduleFiring+"dead", 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	slot := &scheduleSlot{s: s, at: at, wake: at}
	if b.try(ctx, slot, at) || b.Check() != nil {
		t.Fatalf("b's try while the dead instance's lease lasts: done, or reported failing (%v)", b.Check())
	}
	waitFor(t, ctx, func() bool { return e.rdb.Exists(ctx, key).Val() == 0 })
	if sent, err := b.Fire(ctx, s, at); !sent || err != nil {
		t.Fatalf("b after the lease ran out: sent %v, %v", sent, err)
	}
	if v, ttl := e.rdb.Get(ctx, key).Val(), e.rdb.TTL(ctx, key).Val(); v != "b" || ttl <= 23*time.Hour {
		t.Errorf("lock after the firing: %q for %v, want b for 24h", v, ttl)
	}
	if sent, err := e.scheduler("c", NewManualClock(at)).Fire(ctx, s, at); sent || err != nil {
		t.Errorf("c after b sent it: sent %v, %v; want neither", sent, err)
	}
	if n := len(e.intents(t)); n != 1 {
		t.Errorf("%d intents, want 1", n)
	}
}

func TestClockManual(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewManualClock(start)
	if !c.Now().Equal(start) {
		t.Fatal(c.Now())
	}
	now := <-c.After(0)
	if !now.Equal(start) {
		t.Errorf("After(0) sent %v", now)
	}
	late, early := c.After(2*time.Hour), c.After(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.BlockUntil(ctx, 2); err != nil || c.Waiters() != 2 {
		t.Fatalf("waiters %d, %v", c.Waiters(), err)
	}
	c.Advance(59 * time.Minute)
	select {
	case <-early:
		t.Fatal("fired early")
	default:
	}
	c.Advance(2 * time.Hour)
	if got := <-early; !got.Equal(start.Add(179 * time.Minute)) {
		t.Errorf("early got %v", got)
	}
	<-late
	if c.Waiters() != 0 {
		t.Errorf("%d waiters left", c.Waiters())
	}
	go func() { <-c.After(time.Minute) }()
	if err := c.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	c.Set(start.Add(24 * time.Hour))
	var _ Clock = c
	var _ Clock = RealClock{}
}

// TestScheduleRunLateFirings: a firing up to an hour old is still sent
// (an instance started just after 07:00), an older one is not (a host
// suspended past it), and a failing one is retried until it goes out.
func TestScheduleRunLateFirings(t *testing.T) {
	loc := madrid(t)
	seven := time.Date(2026, 6, 1, 7, 0, 0, 0, loc)
	run := func(t *testing.T, e *scheduleEnv, start time.Time, moves ...func(*ManualClock)) []firing {
		clock := NewManualClock(start)
		sc := e.scheduler("a", clock)
		var f firings
		f.observe(sc)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = sc.Run(ctx) }()
		wait, stop := context.WithTimeout(context.Background(), 30*time.Second)
		defer stop()
		for _, move := range append(moves, func(*ManualClock) {}) {
			if err := clock.BlockUntil(wait, 1); err != nil {
				t.Fatal(err)
			}
			move(clock)
		}
		cancel()
		<-done
		return f.all
	}
	advance := func(d time.Duration) func(*ManualClock) { return func(c *ManualClock) { c.Advance(d) } }

	t.Run("started 20 minutes late", func(t *testing.T) {
		e := newScheduleEnv(t, scheduleConfig(t, patrolSchedule))
		e.seedCase(t, "C-HER-A1", "13047", event.Alto, true, seven.Add(3*time.Hour))
		got := run(t, e, seven.Add(20*time.Minute))
		if len(got) != 1 || !got[0].sent || !got[0].at.Equal(seven) {
			t.Errorf("firings %+v, want the 07:00 one sent", got)
		}
	})
	t.Run("asleep past the hour", func(t *testing.T) {
		e := newScheduleEnv(t, scheduleConfig(t, patrolSchedule))
		got := run(t, e, seven.Add(-time.Hour), advance(3*time.Hour))
		if len(got) != 0 {
			t.Errorf("firings %+v, want none", got)
		}
	})
	t.Run("redis down, then back", func(t *testing.T) {
		e := newScheduleEnv(t, scheduleConfig(t, patrolSchedule))
		got := run(t, e, seven.Add(-time.Minute),
			func(c *ManualClock) { e.srv.Stop(); c.Advance(time.Minute) },
			func(c *ManualClock) {
				e.srv.Restart(t)
				e.seedCase(t, "C-HER-A1", "13047", event.Alto, true, seven.Add(3*time.Hour))
				c.Advance(scheduleRetry)
			})
		if len(got) != 2 || got[0].err == nil || !got[1].sent || !got[1].at.Equal(seven) {
			t.Errorf("firings %+v, want a failure then the 07:00 one sent", got)
		}
		if n := len(e.intents(t)); n != 1 {
			t.Errorf("%d intents, want 1", n)
		}
	})
}
