package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// retryJob is one channel of one intent to be attempted.
type retryJob struct {
	Intent  Intent `json:"intent"`
	Channel string `json:"channel"`
	Attempt int    `json:"attempt"`
	// Check, when set, makes the job a check rather than a send:
	// checkReceipt looks, at its due time, whether the SMS sent as SID got
	// its final delivery receipt (receipt_check.go).
	Check string `json:"check,omitempty"`
	SID   string `json:"sid,omitempty"`
}

// queued is a job with its queue member (the JSON the queue holds) and,
// once claimed, the key it was claimed from.
type queued struct {
	job retryJob
	raw string
	key string // "": the job's own shard (jobQueue.at)
	// begun, for a handed-off job, is what its attempt's begin found in
	// the round trip that queued it (Deliverer.holdAndBegin).
	begun *begun
}

func newQueued(j retryJob) (queued, error) {
	if b, ok := appendJob(nil, &j); ok {
		return queued{job: j, raw: string(b)}, nil
	}
	b, err := json.Marshal(j)
	if err != nil {
		return queued{}, fmt.Errorf("encode delivery job: %w", err)
	}
	return queued{job: j, raw: string(b)}, nil
}

// appendJob appends the job's JSON, byte for byte what json.Marshal
// writes (the queue member is the job's identity: a redelivered intent
// must give the same member); ok as for appendIntent.
func appendJob(b []byte, j *retryJob) (_ []byte, ok bool) {
	b = append(b, `{"intent":`...)
	if b, ok = appendIntent(b, &j.Intent); !ok {
		return b, false
	}
	w := jsonAppender{b: b, ok: true}
	w.raw(`,"channel":`)
	w.str(j.Channel)
	w.raw(`,"attempt":`)
	w.b = strconv.AppendInt(w.b, int64(j.Attempt), 10)
	w.optStr(`,"check":`, j.Check)
	w.optStr(`,"sid":`, j.SID)
	w.raw(`}`)
	return w.b, w.ok
}

// jobQueue is the durable delivery queue: one sorted set per channel lane
// (sharded, see shardedSet), member = job, score = when the job may next
// be claimed (ms). Every job lives here from the moment its intent is
// taken from Kafka until its outcome and audit record are durable: a job
// being worked on is leased (scored in the future) and its lease renewed
// while its holder lives; when the holder dies the lease runs out and any
// instance claims the job again. A slow channel never holds back another:
// each has its own sets, workers and claims.
type jobQueue struct {
	rdb    redis.UniversalClient
	prefix string // "deliver:queue:"
}

// set is the queue of a channel's lane; channels without a lane of their
// own share "other", which is also where that lane's poller looks.
func (q *jobQueue) set(channel string) shardedSet {
	for _, n := range laneNames {
		if n == channel {
			return shardedSet{q.prefix + channel}
		}
	}
	return shardedSet{q.prefix + "other"}
}

// keyOf is the shard of a job: by intent and channel, so every attempt of
// one delivery lives in the same shard (replace moves it in one MULTI).
func (q *jobQueue) keyOf(j retryJob) string {
	return q.set(j.Channel).key(j.Intent.ID + "|" + j.Channel)
}

// at is the key a job lives in.
func (q *jobQueue) at(j queued) string {
	if j.key != "" {
		return j.key
	}
	return q.keyOf(j.job)
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
	return q.holdOrDue(ctx, jobs, nil, until, time.Time{})
}

// holdOrDue adds, in one round trip, held jobs leased until until and due
// jobs due at now (critical ones ahead, see dueNow), for whoever has room
// first; a job already queued keeps its score either way.
func (q *jobQueue) holdOrDue(ctx context.Context, held, due []queued, until, now time.Time) error {
	if len(held)+len(due) == 0 {
		return nil
	}
	pipe := q.rdb.Pipeline()
	q.addHeld(ctx, pipe, held, until)
	for _, j := range due {
		pipe.ZAddNX(ctx, q.at(j), redis.Z{Score: ms(dueNow(j, now)), Member: j.raw})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("queue %d delivery jobs: %w", len(held)+len(due), err)
	}
	return nil
}

// addHeld adds to pipe the ZADD NX of each job, leased until until; the
// commands answer whether each was added.
func (q *jobQueue) addHeld(ctx context.Context, pipe redis.Pipeliner, jobs []queued, until time.Time) []*redis.IntCmd {
	cmds := make([]*redis.IntCmd, len(jobs))
	for i, j := range jobs {
		cmds[i] = pipe.ZAddNX(ctx, q.at(j), redis.Z{Score: ms(until), Member: j.raw})
	}
	return cmds
}

// add queues a new job due at due, unless it is already queued.
func (q *jobQueue) add(ctx context.Context, j retryJob, due time.Time) error {
	qj, err := newQueued(j)
	if err != nil {
		return err
	}
	if err := q.rdb.ZAddNX(ctx, q.keyOf(j), redis.Z{Score: ms(due), Member: qj.raw}).Err(); err != nil {
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
		pipe.ZAddXX(ctx, q.at(j), redis.Z{Score: ms(at(j)), Member: j.raw})
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
	from, to := q.at(old), q.keyOf(next)
	if from != to {
		// A job claimed from the legacy key: its next attempt goes to its
		// shard first, then the old one leaves (never absent; if the
		// removal fails the old attempt runs again: a duplicate at most).
		if err := q.rdb.ZAdd(ctx, to, redis.Z{Score: ms(due), Member: nq.raw}).Err(); err != nil {
			return fmt.Errorf("schedule retry: %w", err)
		}
		if err := q.rdb.ZRem(ctx, from, old.raw).Err(); err != nil {
			return fmt.Errorf("schedule retry: remove the last attempt: %w", err)
		}
		return nil
	}
	pipe := q.rdb.TxPipeline()
	pipe.ZAdd(ctx, to, redis.Z{Score: ms(due), Member: nq.raw})
	pipe.ZRem(ctx, from, old.raw)
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
		pipe.ZRem(ctx, q.at(j), j.raw)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("finish %d delivery jobs: %w", len(jobs), err)
	}
	return nil
}

// claimScript leases, until ARGV[2], the members ARGV[3..] of KEYS[1]
// that are still due at ARGV[1] (scored at most it), and returns their
// positions among ARGV[3..] (from 1): the caller has the members already.
// Atomic, so two instances never claim the same job.
var claimScript = redis.NewScript(`
local out = {}
for i = 3, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) <= tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i])
    out[#out + 1] = i - 2
  end
end
return out`)

// claim leases up to n due jobs of one channel's lane: the n lowest
// scores over all its shards (critical jobs first, they are scored ahead),
// read, then leased if still due.
func (q *jobQueue) claim(ctx context.Context, channel string, now time.Time, n int, lease time.Duration) ([]queued, error) {
	set := q.set(channel)
	due, err := q.peek(ctx, set, now, n)
	if err != nil || len(due) == 0 {
		return nil, err
	}
	var calls []scriptCall
	var asked [][]string
	for key, members := range due {
		args := []any{formatMS(now), formatMS(now.Add(lease))}
		for _, m := range members {
			args = append(args, m)
		}
		calls = append(calls, scriptCall{keys: []string{key}, args: args})
		asked = append(asked, members)
	}
	cmds, err := evalAll(ctx, q.rdb, claimScript, calls)
	if err != nil {
		return nil, fmt.Errorf("claim %s jobs: %w", channel, err)
	}
	var out []queued
	var bad []error // every one: a corrupt member must not hide a Redis error, nor the reverse
	for i, c := range calls {
		got, err := cmds[i].Int64Slice()
		if err != nil {
			bad = append(bad, fmt.Errorf("claim %s jobs of %s: %w", channel, c.keys[0], err))
			continue
		}
		for _, pos := range got {
			if pos < 1 || int(pos) > len(asked[i]) {
				bad = append(bad, fmt.Errorf("claim %s jobs of %s: position %d out of range", channel, c.keys[0], pos))
				continue
			}
			qj, err := q.decode(ctx, c.keys[0], asked[i][pos-1], now)
			if err != nil {
				bad = append(bad, fmt.Errorf("%s: %w", channel, err))
				continue
			}
			out = append(out, qj)
		}
	}
	return out, errors.Join(bad...)
}

// withoutCorrupt is err without its corrupt-member errors (nil if they
// were all).
func withoutCorrupt(err error) error {
	var rest []error
	for _, e := range flatten(err) {
		if !errors.Is(e, errCorruptJob) {
			rest = append(rest, e)
		}
	}
	return errors.Join(rest...)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// peek reads the n lowest-scored due members over a set's keys, by key.
// It reads a few more than its share from each key, not n from each (a
// member is a whole job: reading n from each of 17 keys moved 17 times
// what a claim takes): the members it is sure of are those scored at most
// the last one read from every key that had more. When they are too few,
// it reads again with twice the share, up to n a key.
func (q *jobQueue) peek(ctx context.Context, set shardedSet, now time.Time, n int) (map[string][]string, error) {
	keys := set.keys()
	for share := firstShare(n, len(keys)); ; share = min(2*share, n) {
		picked, complete, err := q.readShare(ctx, set.base, keys, now, n, share)
		if err != nil || complete || len(picked) >= n || share >= n {
			return byKey(picked), err
		}
	}
}

// firstShare is how many due members peek first reads from each key.
func firstShare(n, keys int) int {
	return min(n, max(8, 2*((n+keys-1)/keys)))
}

type dueMember struct {
	key    string
	member string
	score  float64
}

// readShare reads up to share due members of each key and returns the n
// lowest of those it is sure of; complete when no key had more.
func (q *jobQueue) readShare(ctx context.Context, base string, keys []string, now time.Time, n, share int) ([]dueMember, bool, error) {
	pipe := q.rdb.Pipeline()
	cmds := make([]*redis.ZSliceCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.ZRangeByScoreWithScores(ctx, k, &redis.ZRangeBy{Min: "-inf", Max: formatMS(now), Count: int64(share)})
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, false, fmt.Errorf("read due %s jobs: %w", base, err)
	}
	var all []dueMember
	sure, complete := math.Inf(1), true
	for i, c := range cmds {
		zs := c.Val()
		for _, z := range zs {
			m, _ := z.Member.(string)
			all = append(all, dueMember{keys[i], m, z.Score})
		}
		if len(zs) == share && share < n {
			// This key may hold more, scored after its last one read.
			sure, complete = min(sure, zs[len(zs)-1].Score), false
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].score < all[j].score })
	k := 0
	for k < len(all) && k < n && all[k].score <= sure {
		k++
	}
	return all[:k], complete, nil
}

func byKey(ds []dueMember) map[string][]string {
	out := map[string][]string{}
	for _, d := range ds {
		out[d.key] = append(out[d.key], d.member)
	}
	return out
}

// errCorruptJob is a queue member that is not a job.
var errCorruptJob = errors.New("corrupt delivery job parked for a day")

// decode reads a claimed member. One that is not a job is kept out of the
// way (a day ahead) and reported loudly, rather than claimed forever or
// dropped.
func (q *jobQueue) decode(ctx context.Context, key, m string, now time.Time) (queued, error) {
	var j retryJob
	if decodeJobFast(m, &j) {
		return queued{job: j, raw: m, key: key}, nil
	}
	j = retryJob{}
	if err := json.Unmarshal([]byte(m), &j); err != nil {
		_ = q.rdb.ZAddXX(ctx, key, redis.Z{Score: ms(now.Add(24 * time.Hour)), Member: m}).Err()
		return queued{}, fmt.Errorf("%w: %w", errCorruptJob, err)
	}
	return queued{job: j, raw: m, key: key}, nil
}

// depth counts queued jobs of the channels.
func (q *jobQueue) depth(ctx context.Context, chans []string) (int64, error) {
	var n int64
	for _, c := range chans {
		k, err := q.set(c).card(ctx, q.rdb)
		if err != nil {
			return 0, fmt.Errorf("queue depth: %w", err)
		}
		n += k
	}
	return n, nil
}
