package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// retryJob is one channel of one intent to be attempted.
type retryJob struct {
	Intent  Intent `json:"intent"`
	Channel string `json:"channel"`
	Attempt int    `json:"attempt"`
}

// queued is a job with its queue member (the JSON the queue holds).
type queued struct {
	job retryJob
	raw string
}

func newQueued(j retryJob) (queued, error) {
	b, err := json.Marshal(j)
	if err != nil {
		return queued{}, fmt.Errorf("encode delivery job: %w", err)
	}
	return queued{job: j, raw: string(b)}, nil
}

// jobQueue is the durable delivery queue: one Redis sorted set per
// channel, member = job, score = when the job may next be claimed (ms).
// Every job lives here from the moment its intent is taken from Kafka
// until its outcome and audit record are durable: a job being worked on
// is leased (scored in the future) and its lease renewed while its holder
// lives; when the holder dies the lease runs out and any instance claims
// the job again. A slow channel never holds back another: each has its
// own set, workers and claims.
type jobQueue struct {
	rdb    redis.UniversalClient
	prefix string // "deliver:queue:"
}

// key is the set of a channel's lane; channels without a lane of their
// own share "other", which is also where that lane's poller looks.
func (q *jobQueue) key(channel string) string {
	for _, n := range laneNames {
		if n == channel {
			return q.prefix + channel
		}
	}
	return q.prefix + "other"
}

// critAhead is how far ahead of other due jobs a critical job made due
// now is scored, so claims (lowest score first) take it before a backlog.
const critAhead = 24 * time.Hour

// dueNow scores a job due at now, critical ones ahead of the rest.
func dueNow(q queued, now time.Time) time.Time {
	if q.job.Intent.Critical {
		return now.Add(-critAhead)
	}
	return now
}

func ms(t time.Time) float64 { return float64(t.UnixMilli()) }

// hold adds jobs leased until until; a job already queued keeps its score
// (it is someone's, or due: the claim decides who sends it).
func (q *jobQueue) hold(ctx context.Context, jobs []queued, until time.Time) error {
	if len(jobs) == 0 {
		return nil
	}
	pipe := q.rdb.Pipeline()
	for _, j := range jobs {
		pipe.ZAddNX(ctx, q.key(j.job.Channel), redis.Z{Score: ms(until), Member: j.raw})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("queue %d delivery jobs: %w", len(jobs), err)
	}
	return nil
}

// add queues a new job due at due, unless it is already queued.
func (q *jobQueue) add(ctx context.Context, j retryJob, due time.Time) error {
	qj, err := newQueued(j)
	if err != nil {
		return err
	}
	if err := q.rdb.ZAddNX(ctx, q.key(j.Channel), redis.Z{Score: ms(due), Member: qj.raw}).Err(); err != nil {
		return fmt.Errorf("queue %s job: %w", j.Channel, err)
	}
	return nil
}

// setScore moves jobs that are still queued to score at (a lease renewed,
// or a job given back due now); finished jobs are not brought back.
func (q *jobQueue) setScore(ctx context.Context, jobs []queued, at time.Time) error {
	return q.score(ctx, jobs, func(queued) time.Time { return at })
}

// giveBackNow makes jobs that are still queued due now, critical first.
func (q *jobQueue) giveBackNow(ctx context.Context, jobs []queued, now time.Time) error {
	return q.score(ctx, jobs, func(j queued) time.Time { return dueNow(j, now) })
}

func (q *jobQueue) score(ctx context.Context, jobs []queued, at func(queued) time.Time) error {
	if len(jobs) == 0 {
		return nil
	}
	pipe := q.rdb.Pipeline()
	for _, j := range jobs {
		pipe.ZAddXX(ctx, q.key(j.job.Channel), redis.Z{Score: ms(at(j)), Member: j.raw})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("re-score %d delivery jobs: %w", len(jobs), err)
	}
	return nil
}

// replace swaps a finished attempt for the next one, due at due, in one
// transaction: the job is never absent and never twice.
func (q *jobQueue) replace(ctx context.Context, old queued, next retryJob, due time.Time) error {
	nq, err := newQueued(next)
	if err != nil {
		return err
	}
	pipe := q.rdb.TxPipeline()
	pipe.ZAdd(ctx, q.key(next.Channel), redis.Z{Score: ms(due), Member: nq.raw})
	pipe.ZRem(ctx, q.key(old.job.Channel), old.raw)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("schedule retry: %w", err)
	}
	return nil
}

// done removes finished jobs.
func (q *jobQueue) done(ctx context.Context, jobs []queued) error {
	if len(jobs) == 0 {
		return nil
	}
	pipe := q.rdb.Pipeline()
	for _, j := range jobs {
		pipe.ZRem(ctx, q.key(j.job.Channel), j.raw)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("finish %d delivery jobs: %w", len(jobs), err)
	}
	return nil
}

// claimScript returns up to ARGV[2] jobs due at ARGV[1] and leases them
// until ARGV[3]. Atomic, so two instances never claim the same job.
var claimScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[3], m) end
return due`)

// claim leases up to n due jobs of one channel.
func (q *jobQueue) claim(ctx context.Context, channel string, now time.Time, n int, lease time.Duration) ([]queued, error) {
	res, err := claimScript.Run(ctx, q.rdb, []string{q.key(channel)},
		strconv.FormatInt(now.UnixMilli(), 10), n, strconv.FormatInt(now.Add(lease).UnixMilli(), 10)).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("claim %s jobs: %w", channel, err)
	}
	out := make([]queued, 0, len(res))
	for _, m := range res {
		var j retryJob
		if err := json.Unmarshal([]byte(m), &j); err != nil {
			// Not ours to interpret: keep it out of the way (a day ahead)
			// and say so loudly, rather than claim it forever or drop it.
			_ = q.rdb.ZAddXX(ctx, q.key(channel), redis.Z{Score: ms(now.Add(24 * time.Hour)), Member: m}).Err()
			return out, fmt.Errorf("corrupt %s delivery job parked for a day: %w", channel, err)
		}
		out = append(out, queued{job: j, raw: m})
	}
	return out, nil
}

// depth counts queued jobs of the channels and the oldest score.
func (q *jobQueue) depth(ctx context.Context, chans []string) (int64, error) {
	pipe := q.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(chans))
	for i, c := range chans {
		cmds[i] = pipe.ZCard(ctx, q.key(c))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("queue depth: %w", err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}
