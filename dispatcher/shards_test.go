package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/internal/providertest"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// Every global sorted set spreads over all three masters of a cluster
// created by redis-cli --cluster create (slots split in three equal
// ranges), and its members over all its shards.
func TestShardedSetsSpreadOverTheMasters(t *testing.T) {
	q := &jobQueue{prefix: "deliver:queue:"}
	sets := []shardedSet{keyEscOpen, keyTimerCheckin, keyTimerReassess, keyTimerEscalation}
	for _, n := range laneNames {
		sets = append(sets, q.set(n))
	}
	for _, s := range sets {
		masters := map[int]int{}
		for i := range setShards {
			masters[keySlot(s.shardKey(i))*3/16384]++
		}
		if len(masters) != 3 {
			t.Errorf("%s: shards per master %v, want all three used", s.base, masters)
		}
	}
	perShard := map[string]int{}
	for i := range 16000 {
		perShard[keyTimerCheckin.key(fmt.Sprintf("C-%06d", i))]++
	}
	for k, n := range perShard {
		if n < 800 || n > 1200 {
			t.Errorf("%s holds %d of 16,000 members, want about 1,000", k, n)
		}
	}
	if len(perShard) != setShards {
		t.Errorf("members in %d shards, want %d", len(perShard), setShards)
	}
}

// Jobs queued by an earlier version (the unsharded key) are claimed, their
// next attempt moves to its shard, and finishing removes them.
func TestQueueJobsOfEarlierVersionsAreDelivered(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	q := &jobQueue{rdb: rdb, prefix: "deliver:queue:"}
	ctx := context.Background()
	now := time.Now()
	old := laneJob(t, "legacy-1", false)
	if err := rdb.ZAdd(ctx, "deliver:queue:sms", redis.Z{Score: ms(now.Add(-time.Minute)), Member: old.raw}).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := q.claim(ctx, "sms", now, 10, time.Minute)
	if err != nil || len(got) != 1 || got[0].key != "deliver:queue:sms" {
		t.Fatalf("claimed %+v (%v), want the legacy job from its key", got, err)
	}
	next := retryJob{Intent: got[0].job.Intent, Channel: "sms", Attempt: 2}
	if err := q.replace(ctx, got[0], next, now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.ZCard(ctx, "deliver:queue:sms").Result(); n != 0 {
		t.Fatalf("%d jobs left in the legacy key after the retry was scheduled", n)
	}
	retry, err := q.claim(ctx, "sms", now, 10, time.Minute)
	if err != nil || len(retry) != 1 || retry[0].job.Attempt != 2 || retry[0].key != q.keyOf(next) {
		t.Fatalf("claimed %+v (%v), want attempt 2 from its shard", retry, err)
	}
	if err := q.done(ctx, retry); err != nil {
		t.Fatal(err)
	}
	if n, _ := q.set("sms").card(ctx, rdb); n != 0 {
		t.Fatalf("%d jobs queued after the job finished", n)
	}
}

// Claimers racing over the shards take every due job exactly once, and
// none that is not due.
func TestConcurrentClaimsTakeEachJobOnce(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	q := &jobQueue{rdb: rdb, prefix: "deliver:queue:"}
	ctx := context.Background()
	now := time.Now()
	var due []queued
	for i := range 300 {
		due = append(due, laneJob(t, fmt.Sprint("j-", i), i%10 == 0))
	}
	if err := q.hold(ctx, due, now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := q.hold(ctx, []queued{laneJob(t, "later", false)}, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	claims := map[string]int{}
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				got, err := q.claim(ctx, "sms", now, 7, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, g := range got {
					claims[g.job.Intent.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claims) != 300 || claims["later"] != 0 {
		t.Fatalf("%d distinct jobs claimed (later: %d), want the 300 due ones", len(claims), claims["later"])
	}
	for id, n := range claims {
		if n != 1 {
			t.Fatalf("%s claimed %d times", id, n)
		}
	}
}

// Open escalations are listed oldest first over every shard; a copy an
// earlier version left in the unsharded key is listed once.
func TestOpenEscalationsListedOverShards(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	for i := range 40 {
		ref := EscRef(fmt.Sprintf("C-%02d", i), "a")
		rdb.ZAdd(ctx, keyEscOpen.key(ref), redisZ(t0.Add(time.Duration(i)*time.Minute), ref))
	}
	rdb.ZAdd(ctx, keyEscOpen.legacy(), redisZ(t0.Add(-time.Hour), "C-LEGACY|a"), redisZ(t0.Add(3*time.Minute), EscRef("C-03", "a")))
	zs, err := keyEscOpen.rangeByScore(ctx, rdb, "-inf", "+inf", 5)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, z := range zs {
		got = append(got, fmt.Sprint(z.Member))
	}
	want := []string{"C-LEGACY|a", "C-00|a", "C-01|a", "C-02|a", "C-03|a"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	all, _ := keyEscOpen.rangeByScore(ctx, rdb, "-inf", "+inf", 0)
	if len(all) != 41 {
		t.Fatalf("listed %d, want 41 (the legacy copy of C-03 once)", len(all))
	}
}

// One round of Timers.Run fires a backlog many batches deep (passes over
// the shards until none comes back full), and says when maxPasses left
// more due, so Run goes on at once instead of waiting for the next poll.
func TestTimerRoundFiresABacklogWithoutWaiting(t *testing.T) {
	_, brokers := testenv.StartKafka(t, 1, TopicInternal)
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	put := func(n int, prefix string) {
		pipe := rdb.Pipeline()
		for i := range n {
			id := fmt.Sprintf("%s%04d", prefix, i)
			pipe.HSet(ctx, caseKey(id), "muni", "13047", "prov", "13", "region", "CM", "unit", "gc-ciudad-real")
			pipe.ZAdd(ctx, keyTimerCheckin.key(id), redisZ(now.Add(-time.Minute), id))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	w := NewWriter(brokers, quietLog())
	defer w.Close()
	tm := &Timers{Redis: rdb, Writer: w, Now: func() time.Time { return now }, Batch: 3, Log: quietLog()}
	tm.defaults()
	put(400, "C-BL") // about 25 a shard: 9 passes of 3
	more, err := tm.round(ctx)
	if err != nil || more {
		t.Fatalf("round: more %v, err %v; want all fired", more, err)
	}
	if left, _ := keyTimerCheckin.card(ctx, rdb); left != 0 {
		t.Fatalf("%d of 400 timers left after one round", left)
	}
	if n := topicSize(ctx, t, brokers, TopicInternal); n != 400 {
		t.Fatalf("%d events published, want 400", n)
	}
	put(2000, "C-BX") // about 125 a shard: more than maxPasses (17) of 3
	more, err = tm.round(ctx)
	left, _ := keyTimerCheckin.card(ctx, rdb)
	if err != nil || !more || left == 0 || left > 2000-16*3*maxPasses {
		t.Fatalf("round over a deeper backlog: more %v, err %v, %d left; want more and at least %d fired", more, err, left, 16*3*maxPasses)
	}
}

// A claim takes exactly the n lowest-scored due jobs over all the keys,
// however unevenly they are spread: here most of the lowest sit in one
// shard, the others are scattered, and claims are of odd sizes. Each
// claim is compared with a model of the queue (the claimed are leased
// into the future, so the next claim takes the next lowest).
func TestClaimTakesTheLowestOverUnevenShards(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	q := &jobQueue{rdb: rdb, prefix: "deliver:queue:"}
	ctx := context.Background()
	now := time.Now()
	set := q.set("sms")
	keys := set.keys()
	rng := rand.New(rand.NewPCG(7, 9))
	type entry struct {
		id    string
		score float64
	}
	var model []entry
	for i := range 400 {
		id := fmt.Sprint("u-", i)
		key := keys[3] // the 120 lowest scores, all in one shard
		score := ms(now.Add(-time.Hour)) + float64(i)
		if i >= 120 {
			key = keys[rng.IntN(len(keys))]
			score += float64(rng.IntN(1000))
		}
		j := laneJob(t, id, false)
		if err := rdb.ZAdd(ctx, key, redis.Z{Score: score, Member: j.raw}).Err(); err != nil {
			t.Fatal(err)
		}
		model = append(model, entry{id, score})
	}
	sort.SliceStable(model, func(i, j int) bool { return model[i].score < model[j].score })
	for _, n := range []int{40, 1, 17, 64, 100, 7, 300} {
		got, err := q.claim(ctx, "sms", now, n, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		want := model[:min(n, len(model))]
		model = model[len(want):]
		if len(got) != len(want) {
			t.Fatalf("claim of %d took %d jobs, want %d", n, len(got), len(want))
		}
		wantIDs := map[string]bool{}
		for _, w := range want {
			wantIDs[w.id] = true
		}
		for _, g := range got {
			if !wantIDs[g.job.Intent.ID] {
				t.Fatalf("claim of %d took %s, which is not among the %d lowest scored", n, g.job.Intent.ID, n)
			}
		}
	}
}

// A queue member that is not a job is neither claimed forever nor
// dropped: the claim reports it (errCorruptJob), parks it a day ahead
// where an operator can find it, and still hands out the good jobs.
func TestClaimParksAMemberThatIsNotAJob(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	q := &jobQueue{rdb: rdb, prefix: "deliver:queue:"}
	ctx := context.Background()
	now := time.Now()
	key := q.set("sms").shardKey(5)
	good := laneJob(t, "good-1", false)
	for _, m := range []string{"not a job", good.raw} {
		if err := rdb.ZAdd(ctx, key, redis.Z{Score: ms(now.Add(-time.Minute)), Member: m}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := q.claim(ctx, "sms", now, 10, time.Minute)
	if !errors.Is(err, errCorruptJob) {
		t.Fatalf("claim error %v, want errCorruptJob", err)
	}
	if len(got) != 1 || got[0].job.Intent.ID != good.job.Intent.ID {
		t.Fatalf("claimed %d jobs, want the good one", len(got))
	}
	score, err := rdb.ZScore(ctx, key, "not a job").Result()
	if err != nil {
		t.Fatalf("the member that is not a job is gone: %v", err)
	}
	if at := time.UnixMilli(int64(score)); at.Before(now.Add(23 * time.Hour)) {
		t.Fatalf("parked until %v, want a day ahead", at)
	}
}

// The poller that meets such a member says so loudly: an error line naming
// the queue and dispatcher_delivery_jobs_corrupt_total, which the
// DispatcherCorruptDeliveryJob alert watches; the queue stays healthy.
func TestPollerReportsAMemberThatIsNotAJob(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	reg := prometheus.NewRegistry()
	logs := providertest.CaptureLog()
	d := NewDeliverer(DeliverConfig{Workers: 1}, DeliverDeps{Redis: rdb, Log: logs.Logger, Registry: reg})
	ctx := context.Background()
	key := d.queue.set("sms").shardKey(3)
	if err := rdb.ZAdd(ctx, key, redis.Z{Score: ms(time.Now().Add(-time.Minute)), Member: "not a job"}).Err(); err != nil {
		t.Fatal(err)
	}
	d.pollOnce(ctx, d.laneOf("sms"))
	if got := gathered(t, reg, "dispatcher_delivery_jobs_corrupt_total")[""][0]; got != 1 {
		t.Fatalf("corrupt jobs counted %v, want 1", got)
	}
	if !strings.Contains(logs.String(), "deliver:queue:sms") || !strings.Contains(logs.String(), `"level":"error"`) {
		t.Fatalf("no error line naming the queue:\n%s", logs.String())
	}
	if err := d.health.err(); err != nil {
		t.Fatalf("a corrupt member made the stage unhealthy: %v", err)
	}
}

// A claim reports every error it met: a corrupt member does not hide a
// Redis error from the stage's health, nor the reverse.
func TestWithoutCorrupt(t *testing.T) {
	corrupt := fmt.Errorf("sms: %w", errCorruptJob)
	real := errors.New("claim sms jobs of k: READONLY")
	if err := withoutCorrupt(corrupt); err != nil {
		t.Errorf("corrupt only: %v, want nil", err)
	}
	if err := withoutCorrupt(errors.Join(corrupt, real)); err == nil || errors.Is(err, errCorruptJob) || err.Error() != real.Error() {
		t.Errorf("both: %v, want the Redis error alone", err)
	}
	if err := withoutCorrupt(real); !errors.Is(err, real) {
		t.Errorf("real only: %v", err)
	}
	if err := withoutCorrupt(nil); err != nil {
		t.Errorf("nil: %v", err)
	}
}
