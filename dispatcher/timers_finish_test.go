package dispatcher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// Finishing a claim removes, in one call, every fired timer
// that still holds its lease, and keeps one whose deadline the case's
// state moved meanwhile (a new score) and one of another lease.
func TestTimerFinishKeepsMovedDeadlines(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	tm := &Timers{Redis: rdb, Log: quietLog()}
	ctx := context.Background()
	key := keyTimerCheckin.shardKey(2)
	lease := time.Now().Add(time.Minute).UnixMilli()
	var cs []claimed
	for i := range 300 {
		m := fmt.Sprint("C-FIN-", i)
		if err := rdb.ZAdd(ctx, key, redis.Z{Score: float64(lease), Member: m}).Err(); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, claimed{member: m, lease: lease})
	}
	moved := float64(lease + 3_600_000)
	if err := rdb.ZAdd(ctx, key, redis.Z{Score: moved, Member: "C-FIN-7"}).Err(); err != nil {
		t.Fatal(err)
	}
	other := lease + 5
	if err := rdb.ZAdd(ctx, key, redis.Z{Score: float64(other), Member: "C-FIN-OTHER"}).Err(); err != nil {
		t.Fatal(err)
	}
	cs = append(cs, claimed{member: "C-FIN-OTHER", lease: lease}) // claimed under a lease it no longer has

	if err := tm.finish(ctx, key, lease, cs); err != nil {
		t.Fatal(err)
	}
	left, err := rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, z := range left {
		got[z.Member.(string)] = z.Score
	}
	want := map[string]float64{"C-FIN-7": moved, "C-FIN-OTHER": float64(other)}
	if len(got) != len(want) || got["C-FIN-7"] != moved || got["C-FIN-OTHER"] != float64(other) {
		t.Fatalf("left %v, want only the moved deadline and the one with another lease %v", got, want)
	}
}
