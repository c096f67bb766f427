package dispatcher

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/rules"
)

//go:embed ratelimit.lua
var rateLimitLua string

var rateLimitScript = redis.NewScript(rateLimitLua)

// Destination is where a message goes on the provider's side: a Twilio
// sender, the SMTP relay, a routing key (hashed), a webhook host. Never a
// recipient.
type Destination struct {
	Channel string
	Name    string
}

// key is the destination's budget in Redis, a hash tag of its own so
// destinations spread over a cluster's masters.
func (d Destination) key() string { return "{ratelimit:" + d.Channel + ":" + d.Name + "}" }

// RateLimiter keeps one GCRA budget per destination in Redis, shared by
// every instance (ratelimit.lua). It never blocks: a message over the
// limit gets the time to try again. Critical messages come first: others
// leave the reserve of the burst untouched, and while a critical message
// of this instance waits for a destination, others of this instance take
// no token there. If Redis fails, a local bucket of the same limit
// decides, so critical delivery never stops on the limiter.
type RateLimiter struct {
	rdb redis.UniversalClient
	// now, when set, replaces the Redis server's clock (tests).
	now func() time.Time
	// overrides replace the per_second of channels the file leaves at
	// their default (RATE_LIMIT_<CHANNEL>).
	overrides map[string]float64
	horizon   time.Duration
	local     localBuckets
	holds     criticalHolds
	log       logrus.FieldLogger
	warned    atomic.Int64 // unix seconds of the last fallback warning
	downUntil atomic.Int64 // unix ns: Redis failed; decide locally until then
	throttled *prometheus.CounterVec
	fallbacks *prometheus.CounterVec
}

// RateLimiterConfig are a RateLimiter's collaborators.
type RateLimiterConfig struct {
	Redis redis.UniversalClient
	// Now replaces the Redis server's clock; nil in production.
	Now func() time.Time
	// Overrides are RATE_LIMIT_<CHANNEL>: per_second of a channel's
	// destinations when the file leaves the channel at its default.
	Overrides map[string]float64
	// Horizon is the furthest ahead a retry slot is given (default
	// DefaultSlotHorizon); messages beyond it ask again after it, with
	// jitter.
	Horizon  time.Duration
	Log      logrus.FieldLogger
	Registry prometheus.Registerer // nil: a private registry
}

// DefaultSlotHorizon bounds retry slots: a backlog of a destination holds
// at most a minute of its rate in slots; the rest asks again every one to
// two minutes, so a raised limit reaches it within two.
const DefaultSlotHorizon = time.Minute

// NewRateLimiter builds the limiter and registers its metrics.
func NewRateLimiter(c RateLimiterConfig) *RateLimiter {
	reg := c.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if c.Log == nil {
		c.Log = logrus.New()
	}
	if c.Horizon <= 0 {
		c.Horizon = DefaultSlotHorizon
	}
	r := &RateLimiter{
		rdb: c.Redis, now: c.Now, overrides: c.Overrides, horizon: c.Horizon, log: c.Log.WithField("component", "ratelimit"),
		local: localBuckets{tat: map[Destination]time.Time{}},
		holds: criticalHolds{until: map[Destination]time.Time{}},
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatcher_ratelimit_throttled_total",
			Help: "Messages held back by their destination's rate limit and queued again, by channel, destination (sender, relay, host, hashed routing key) and priority.",
		}, []string{"channel", "destination", "priority"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatcher_ratelimit_fallback_total",
			Help: "Rate-limit decisions taken by the local bucket because Redis failed, by channel.",
		}, []string{"channel"}),
	}
	reg.MustRegister(r.throttled, r.fallbacks)
	return r
}

// Limit applies the environment overrides to a limit read from the
// configuration; explicit says the file set it.
func (r *RateLimiter) Limit(channel string, l rules.Limit, explicit bool) rules.Limit {
	if r == nil || explicit {
		return l
	}
	if v, ok := r.overrides[channel]; ok {
		return rules.Rate{PerSecond: &v}.Resolve()
	}
	return l
}

// Take asks for a token for one message to dest: 0 means send now,
// anything else how long until the message may try again (its retry slot).
func (r *RateLimiter) Take(ctx context.Context, dest Destination, l rules.Limit, critical bool) time.Duration {
	if r == nil || l.PerSecond <= 0 {
		return 0
	}
	// Validated at load; kept safe here too: non-critical messages need
	// one token above the reserve, or they would wait forever.
	l.Burst = max(l.Burst, 1)
	l.Reserve = min(max(l.Reserve, 0), l.Burst-1)
	hold := !critical && r.holds.waiting(dest, r.localNow())
	wait, err := r.remote(ctx, dest, l, critical, hold)
	if err != nil {
		r.fellBack(dest, err)
		wait = r.local.take(dest, l, critical, hold, r.localNow())
	}
	if wait >= r.horizon {
		// No slot: the backlog beyond the horizon asks again, spread over
		// the next horizon rather than all at once.
		wait = r.horizon + rand.N(r.horizon)
	}
	if wait > 0 {
		prio := "normal"
		if critical {
			prio = "critical"
			r.holds.set(dest, r.localNow().Add(wait+holdGrace))
		}
		r.throttled.WithLabelValues(dest.Channel, dest.Name, prio).Inc()
	}
	return wait
}

// remote runs the GCRA script; a slow Redis counts as a failed one.
func (r *RateLimiter) remote(ctx context.Context, dest Destination, l rules.Limit, critical, hold bool) (time.Duration, error) {
	if r.rdb == nil {
		return 0, errors.New("no redis")
	}
	if time.Now().UnixNano() < r.downUntil.Load() {
		return 0, errors.New("redis failed less than a second ago")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	now := int64(0)
	if r.now != nil {
		now = r.now().UnixMicro()
	}
	args := []any{now, interval(l).Microseconds(), l.Burst, l.Reserve, flag(critical), flag(hold), r.horizon.Microseconds()}
	cmds, err := evalAll(ctx, r.rdb, rateLimitScript, []scriptCall{{keys: []string{dest.key()}, args: args}})
	if err != nil {
		// Not asked again for a second: a down Redis must not cost every
		// send a timeout.
		r.downUntil.Store(time.Now().Add(time.Second).UnixNano())
		return 0, fmt.Errorf("rate limit %s: %w", dest.Channel, err)
	}
	v, err := cmds[0].Int64Slice()
	if err != nil || len(v) != 2 {
		return 0, fmt.Errorf("rate limit %s: unexpected reply %v: %w", dest.Channel, cmds[0].Val(), err)
	}
	if v[0] == 1 {
		return 0, nil
	}
	return time.Duration(max(v[1], 1)) * time.Microsecond, nil
}

// fellBack counts a local decision and warns, at most every 10 s.
func (r *RateLimiter) fellBack(dest Destination, err error) {
	r.fallbacks.WithLabelValues(dest.Channel).Inc()
	now := time.Now().Unix()
	if last := r.warned.Load(); now-last >= 10 && r.warned.CompareAndSwap(last, now) {
		r.log.WithError(err).WithField("channel", dest.Channel).
			Warn("rate limiter cannot reach Redis: limiting per instance until it can")
	}
}

func (r *RateLimiter) localNow() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// interval is the time between messages at the limit, at least 1 µs,
// rounded up (never faster than the limit).
func interval(l rules.Limit) time.Duration {
	us := 1e6 / l.PerSecond
	return time.Duration(max(int64(us+0.999999), 1)) * time.Microsecond
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// localBuckets are the same GCRA per destination, in this process only:
// what limits while Redis cannot be reached.
type localBuckets struct {
	mu  sync.Mutex
	tat map[Destination]time.Time
}

// maxLocalBuckets bounds the fallback's memory; destinations come from the
// configuration, so it is only reached by a misconfiguration.
const maxLocalBuckets = 10000

func (b *localBuckets) take(d Destination, l rules.Limit, critical, hold bool, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.tat) >= maxLocalBuckets {
		clear(b.tat)
	}
	t := interval(l)
	tat := b.tat[d]
	if tat.Before(now) {
		tat = now
	}
	n := l.Burst
	if !critical {
		n -= l.Reserve
	}
	earliest := tat.Add(t - time.Duration(n)*t)
	if hold && earliest.Before(now.Add(t)) {
		earliest = now.Add(t)
	}
	if !earliest.After(now) {
		b.tat[d] = tat.Add(t)
		return 0
	}
	return earliest.Sub(now)
}

// holdGrace is how long after its retry slot a critical message still
// holds its destination: it comes back on the lane's next poll, not at
// the exact time.
const holdGrace = time.Second

// criticalHolds remember, per destination, until when a critical message
// of this instance waits for a token: other messages take none meanwhile.
type criticalHolds struct {
	mu    sync.Mutex
	until map[Destination]time.Time
}

func (h *criticalHolds) set(d Destination, until time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.until) >= maxLocalBuckets {
		clear(h.until)
	}
	if until.After(h.until[d]) {
		h.until[d] = until
	}
}

func (h *criticalHolds) waiting(d Destination, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	u, ok := h.until[d]
	if ok && !now.Before(u) {
		delete(h.until, d)
		return false
	}
	return ok
}
