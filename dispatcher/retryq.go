package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// retryJob is one channel of one intent waiting for another attempt.
type retryJob struct {
	Intent  Intent `json:"intent"`
	Channel string `json:"channel"`
	Attempt int    `json:"attempt"`
}

// retryQueue is a Redis sorted set of jobs scored by due time. A claim
// does not remove a job: it pushes its score a lease ahead, so a worker
// that dies mid-send leaves the job to be claimed again; done removes it.
type retryQueue struct {
	rdb redis.UniversalClient
	key string
}

// claimScript returns up to ARGV[2] jobs due at ARGV[1] and leases them
// until ARGV[3]. Atomic, so two instances never claim the same job.
var claimScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[3], m) end
return due`)

func (q *retryQueue) add(ctx context.Context, j retryJob, due time.Time) error {
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode retry: %w", err)
	}
	if err := q.rdb.ZAdd(ctx, q.key, redis.Z{Score: float64(due.UnixMilli()), Member: b}).Err(); err != nil {
		return fmt.Errorf("schedule retry: %w", err)
	}
	return nil
}

// claim leases up to n due jobs; raw members are returned for done.
func (q *retryQueue) claim(ctx context.Context, now time.Time, n int, lease time.Duration) ([]retryJob, []string, error) {
	res, err := claimScript.Run(ctx, q.rdb, []string{q.key},
		strconv.FormatInt(now.UnixMilli(), 10), n, strconv.FormatInt(now.Add(lease).UnixMilli(), 10)).StringSlice()
	if err != nil {
		return nil, nil, fmt.Errorf("claim retries: %w", err)
	}
	jobs := make([]retryJob, 0, len(res))
	raws := make([]string, 0, len(res))
	for _, m := range res {
		var j retryJob
		if err := json.Unmarshal([]byte(m), &j); err != nil {
			// Not ours to interpret: drop it from the queue loudly rather
			// than claim it forever.
			_ = q.rdb.ZRem(ctx, q.key, m).Err()
			return nil, nil, fmt.Errorf("corrupt retry job removed: %w", err)
		}
		jobs = append(jobs, j)
		raws = append(raws, m)
	}
	return jobs, raws, nil
}

func (q *retryQueue) done(ctx context.Context, raw string) error {
	if err := q.rdb.ZRem(ctx, q.key, raw).Err(); err != nil {
		return fmt.Errorf("finish retry: %w", err)
	}
	return nil
}

func (q *retryQueue) size(ctx context.Context) (int64, error) {
	return q.rdb.ZCard(ctx, q.key).Result()
}
