package loadtest

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// setShards and the set names mirror dispatcher/shards.go and keys.go:
// 16 hash-tagged shards per global sorted set, plus the unsharded key of
// earlier versions.
const setShards = 16

// zcardAll sums the cardinality of every shard of a global set.
func zcardAll(ctx context.Context, rc *redis.Client, base string) (int64, error) {
	pipe := rc.Pipeline()
	cmds := make([]*redis.IntCmd, 0, setShards+1)
	for i := range setShards {
		cmds = append(cmds, pipe.ZCard(ctx, fmt.Sprintf("{%s:%02d}", base, i)))
	}
	cmds = append(cmds, pipe.ZCard(ctx, base))
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return 0, err
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// queuedDeliveries counts the jobs in every channel's delivery queue.
func queuedDeliveries(ctx context.Context, rc *redis.Client) int64 {
	var n int64
	for _, ch := range []string{"sms", "email", "pager", "webhook"} {
		k, _ := zcardAll(ctx, rc, "deliver:queue:"+ch)
		n += k
	}
	return n
}

// usedMemory is INFO memory's used_memory in bytes.
func usedMemory(ctx context.Context, rc *redis.Client) (int64, error) {
	s, err := rc.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(s, "\r\n") {
		if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO memory has no used_memory")
}

// keyClass is one kind of key with how many there are and what they use.
type keyClass struct {
	Pattern string `json:"pattern"`
	Keys    int64  `json:"keys"`
	Sampled int    `json:"sampled"`
	// Bytes is the estimated total: mean MEMORY USAGE of the sample × Keys.
	Bytes int64 `json:"bytes"`
}

var (
	reCase = regexp.MustCompile(`C-LT[0-9a-z]+`)
	reHex  = regexp.MustCompile(`[0-9a-f]{16,}`)
	reNum  = regexp.MustCompile(`[0-9]{6,}`)
	reLTEv = regexp.MustCompile(`lt-[0-9a-z]+-[0-9]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	reShrd = regexp.MustCompile(`:[0-9][0-9]}$`)
)

func classOf(key string) string {
	for _, pre := range []string{"ackcode:", "sms:", "lock:schedule:"} {
		if strings.HasPrefix(key, pre) {
			return pre + "<code>"
		}
	}
	k := reShrd.ReplaceAllString(key, ":NN}")
	k = reCase.ReplaceAllString(k, "C")
	k = reLTEv.ReplaceAllString(k, "<event>")
	k = reHex.ReplaceAllString(k, "<id>")
	return reNum.ReplaceAllString(k, "<n>")
}

// keyBreakdown scans every key, classes them by pattern and samples up
// to perClass MEMORY USAGE calls per class.
func keyBreakdown(ctx context.Context, rc *redis.Client, perClass int) ([]keyClass, error) {
	classes := map[string]*keyClass{}
	sums := map[string]int64{}
	var cursor uint64
	for {
		keys, next, err := rc.Scan(ctx, cursor, "*", 2000).Result()
		if err != nil {
			return nil, err
		}
		var sample []string
		for _, k := range keys {
			c := classOf(k)
			kc := classes[c]
			if kc == nil {
				kc = &keyClass{Pattern: c}
				classes[c] = kc
			}
			kc.Keys++
			if kc.Sampled < perClass {
				kc.Sampled++
				sample = append(sample, k)
			}
		}
		if len(sample) > 0 {
			pipe := rc.Pipeline()
			cmds := make([]*redis.IntCmd, len(sample))
			for i, k := range sample {
				cmds[i] = pipe.MemoryUsage(ctx, k)
			}
			_, _ = pipe.Exec(ctx)
			for i, k := range sample {
				sums[classOf(k)] += cmds[i].Val()
			}
		}
		cursor = next
		if cursor == 0 {
			break
		}
	}
	out := make([]keyClass, 0, len(classes))
	for c, kc := range classes {
		if kc.Sampled > 0 {
			kc.Bytes = sums[c] * kc.Keys / int64(kc.Sampled)
		}
		out = append(out, *kc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bytes > out[j].Bytes })
	return out, nil
}

// CmdStat is one line of INFO commandstats: what Redis spent its time on.
type CmdStat struct {
	Command     string  `json:"command"`
	Calls       int64   `json:"calls"`
	Usec        int64   `json:"usec"`
	UsecPerCall float64 `json:"usec_per_call"`
}

// CommandStats returns INFO commandstats, most time first (also used by
// the dispatcher's benchmarks).
func CommandStats(ctx context.Context, rc redis.UniversalClient) ([]CmdStat, error) {
	s, err := rc.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	var out []CmdStat
	for _, l := range strings.Split(s, "\r\n") {
		name, rest, ok := strings.Cut(l, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		c := CmdStat{Command: strings.TrimPrefix(name, "cmdstat_")}
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				c.Calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				c.Usec, _ = strconv.ParseInt(v, 10, 64)
			case "usec_per_call":
				c.UsecPerCall, _ = strconv.ParseFloat(v, 64)
			}
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Usec > out[j].Usec })
	return out, nil
}
