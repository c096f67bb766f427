package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// limiter counts failed logins per key (client address, operator id) in
// a fixed window that starts at the key's first failure, in Redis, so
// every replica shares the count: an attacker gets LoginLimit tries per
// window in all, however many replicas answer.
//
// When Redis fails, the count of this process is used instead (every
// failure is counted here too): logins stay possible during a Redis
// blip in a cluster whose session keys live on another node, limited per
// process as before; with Redis wholly down no session can be stored,
// so no login succeeds anyway.
type limiter struct {
	rdb    redis.UniversalClient
	limit  int
	window time.Duration
	local  *localLimiter
	log    logrus.FieldLogger
}

func newLimiter(rdb redis.UniversalClient, limit int, window time.Duration, log logrus.FieldLogger) *limiter {
	return &limiter{rdb: rdb, limit: limit, window: window, local: newLocalLimiter(limit, window), log: log}
}

// failKey holds a key's failure count. The key is hashed: an operator id
// typed at login may be a mistyped password, and Redis keeps no address.
func failKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return "console:login:fails:" + hex.EncodeToString(h[:])
}

// countFailScript adds a failure and starts the window at the first.
var countFailScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`)

// blocked reports whether any key used up its failures.
func (l *limiter) blocked(ctx context.Context, now time.Time, keys ...string) bool {
	p := l.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = p.Get(ctx, failKey(k))
	}
	_, _ = p.Exec(ctx) // each command's error is looked at below
	blocked := false
	for _, c := range cmds {
		n, err := c.Int()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			l.log.WithError(err).Warn("console: login rate limit unreadable in Redis; this process's count used")
			return l.local.blocked(now, keys...)
		case n >= l.limit:
			blocked = true
		}
	}
	return blocked
}

// fail counts a failed login against every key.
func (l *limiter) fail(ctx context.Context, now time.Time, keys ...string) {
	l.local.fail(now, keys...)
	p := l.rdb.Pipeline()
	for _, k := range keys {
		countFailScript.Eval(ctx, p, []string{failKey(k)}, l.window.Milliseconds()) // EVAL: a pipeline cannot fall back from EVALSHA
	}
	if _, err := p.Exec(ctx); err != nil {
		l.log.WithError(err).Warn("console: failed login not counted in Redis; this process counted it")
	}
}

// clear forgets the failures of keys (after a successful login).
func (l *limiter) clear(ctx context.Context, keys ...string) {
	l.local.clear(keys...)
	hashed := make([]string, len(keys))
	for i, k := range keys {
		hashed[i] = failKey(k)
	}
	p := l.rdb.Pipeline()
	for _, k := range hashed {
		p.Del(ctx, k) // one key per command: keys of any slot
	}
	if _, err := p.Exec(ctx); err != nil {
		l.log.WithError(err).Warn("console: login failures not cleared in Redis")
	}
}
