package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// Due, unfired timers are counted per kind; future ones are not.
func TestTimersDueCollector(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	now := time.Now()
	// Counted over every shard and the unsharded key of earlier versions.
	rdb.ZAdd(ctx, keyTimerCheckin.shardKey(0), redis.Z{Score: ms(now.Add(-time.Minute)), Member: "C-1"},
		redis.Z{Score: ms(now.Add(time.Hour)), Member: "C-3"})
	rdb.ZAdd(ctx, keyTimerCheckin.shardKey(setShards-1), redis.Z{Score: ms(now.Add(-time.Second)), Member: "C-2"})
	rdb.ZAdd(ctx, keyTimerCheckin.legacy(), redis.Z{Score: ms(now.Add(-time.Hour)), Member: "C-4"})
	rdb.ZAdd(ctx, keyTimerEscalation.legacy(), redis.Z{Score: ms(now.Add(-time.Second)), Member: "C-1|a"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(&TimersDueCollector{Redis: rdb, Now: func() time.Time { return now }})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	if got["checkin"] != 3 || got["escalation"] != 1 || got["reassessment"] != 0 || len(got) != 3 {
		t.Fatalf("timers due %v, want checkin 3, escalation 1, reassessment 0", got)
	}
}

// A critical job made due (scored critAhead early) shows its real wait.
func TestQueueAgeOfCriticalJobs(t *testing.T) {
	now := time.Now()
	if got := queueAge(now, now.Add(-critAhead).Add(-5*time.Second)); got < 4.9 || got > 5.1 {
		t.Errorf("critical job due 5 s ago: age %v", got)
	}
	if got := queueAge(now, now.Add(-10*time.Minute)); got != 600 {
		t.Errorf("job due 10 min ago: age %v", got)
	}
}
