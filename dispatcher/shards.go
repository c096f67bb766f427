package dispatcher

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"

	"github.com/redis/go-redis/v9"
)

// setShards is how many sorted sets each global index is split into. In
// a Redis Cluster every shard has its own hash tag, so the shards of one
// index spread over the masters and no single node holds all the timers,
// open escalations or queued deliveries; every instance works on all of
// them. The number is part of the key layout: every instance of a
// deployment must use the same one (it is a constant, not a setting).
const setShards = 16

// shardedSet is a global sorted set split into setShards sets. A member
// always lives in the shard its hash picks ("{timers:checkin:07}"); the
// unsharded key of earlier versions ("timers:checkin") is still read, so
// entries written before an upgrade are fired, listed and delivered.
type shardedSet struct{ base string }

// shardOf picks a member's shard.
func shardOf(member string) int {
	h := fnv.New32a()
	h.Write([]byte(member))
	return int(h.Sum32() % setShards)
}

// shardKey is the key of shard i.
func (s shardedSet) shardKey(i int) string {
	return "{" + s.base + ":" + fmt.Sprintf("%02d", i) + "}"
}

// key is the shard a member is written to.
func (s shardedSet) key(member string) string { return s.shardKey(shardOf(member)) }

// legacy is the unsharded key of earlier versions: read, never written.
func (s shardedSet) legacy() string { return s.base }

// keys lists every key to read: the shards and the legacy key.
func (s shardedSet) keys() []string {
	out := make([]string, 0, setShards+1)
	for i := range setShards {
		out = append(out, s.shardKey(i))
	}
	return append(out, s.legacy())
}

// shuffledKeys is keys in a random rotation, so instances working through
// the shards at the same time start at different ones.
func (s shardedSet) shuffledKeys() []string {
	ks := s.keys()
	r := rand.IntN(len(ks))
	return append(ks[r:], ks[:r]...)
}

// card counts the members of every key.
func (s shardedSet) card(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	return s.sum(ctx, rdb, func(p redis.Pipeliner, k string) *redis.IntCmd { return p.ZCard(ctx, k) })
}

// count counts the members scored up to max (ms) in every key.
func (s shardedSet) count(ctx context.Context, rdb redis.UniversalClient, max string) (int64, error) {
	return s.sum(ctx, rdb, func(p redis.Pipeliner, k string) *redis.IntCmd { return p.ZCount(ctx, k, "-inf", max) })
}

func (s shardedSet) sum(ctx context.Context, rdb redis.UniversalClient, cmd func(redis.Pipeliner, string) *redis.IntCmd) (int64, error) {
	pipe := rdb.Pipeline()
	ks := s.keys()
	cmds := make([]*redis.IntCmd, len(ks))
	for i, k := range ks {
		cmds[i] = cmd(pipe, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("count %s: %w", s.base, err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// score reads a member's score (redis.Nil when absent), from its shard
// or, for an entry of an earlier version, the legacy key.
func (s shardedSet) score(ctx context.Context, rdb redis.UniversalClient, member string) (float64, error) {
	v, err := rdb.ZScore(ctx, s.key(member), member).Result()
	if err == redis.Nil {
		v, err = rdb.ZScore(ctx, s.legacy(), member).Result()
	}
	return v, err
}

// rangeByScore reads the members scored in [min, max] of every key,
// lowest score first, at most limit of them (0: all).
func (s shardedSet) rangeByScore(ctx context.Context, rdb redis.UniversalClient, min, max string, limit int64) ([]redis.Z, error) {
	return rangeByScoreOf(ctx, rdb, []shardedSet{s}, min, max, limit)
}

// rangeByScoreOf is rangeByScore over the keys of several sets, in one
// round trip; a member in more than one set is listed once, with the
// score of the first set that holds it.
func rangeByScoreOf(ctx context.Context, rdb redis.UniversalClient, sets []shardedSet, min, max string, limit int64) ([]redis.Z, error) {
	pipe := rdb.Pipeline()
	var cmds []*redis.ZSliceCmd
	for _, s := range sets {
		for _, k := range s.keys() {
			cmds = append(cmds, pipe.ZRangeByScoreWithScores(ctx, k, &redis.ZRangeBy{Min: min, Max: max, Count: limit}))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("read %s: %w", sets[0].base, err)
	}
	var out []redis.Z
	seen := map[string]bool{}
	for _, c := range cmds { // shards first: a legacy copy of a member is dropped
		for _, z := range c.Val() {
			m := fmt.Sprint(z.Member)
			if !seen[m] {
				seen[m] = true
				out = append(out, z)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score < out[j].Score })
	if limit > 0 && int64(len(out)) > limit {
		out = out[:limit]
	}
	return out, nil
}

// zAdd sets a member's score in its shard. A copy an earlier version left
// in the legacy key stays until it is removed or fired: its readers treat
// it as stale (a timer whose deadline is no longer the case's, see
// apply.lua and Ladder.Timeout), and listings keep one entry per member.
func (s shardedSet) zAdd(ctx context.Context, pipe redis.Pipeliner, member string, at float64) {
	pipe.ZAdd(ctx, s.key(member), redis.Z{Score: at, Member: member})
}

// zAddNX adds a member to its shard unless it is there.
func (s shardedSet) zAddNX(ctx context.Context, pipe redis.Pipeliner, member string, at float64) {
	pipe.ZAddNX(ctx, s.key(member), redis.Z{Score: at, Member: member})
}

// zRem removes a member wherever it is.
func (s shardedSet) zRem(ctx context.Context, pipe redis.Pipeliner, member string) {
	pipe.ZRem(ctx, s.key(member), member)
	pipe.ZRem(ctx, s.legacy(), member)
}
