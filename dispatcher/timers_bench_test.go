package dispatcher

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// BenchmarkFireTimers fires N check-in deadlines due at the same moment
// (N = TIMERS_N, default 100,000) with one Timers instance against a real
// redis-server and the in-process broker, and reports how long until all
// were published (fire-s) and the rate. One op = the whole backlog.
func BenchmarkFireTimers(b *testing.B) {
	n := envInt("TIMERS_N", 100000)
	_, brokers := testenv.StartKafka(b, 4, TopicInternal)
	rdb := testenv.StartRedis(b).Client(b)
	ctx := context.Background()
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	w := NewWriter(brokers, quietLog())
	defer w.Close()
	tm := &Timers{Redis: rdb, Writer: w, Now: func() time.Time { return now }, Log: quietLog()}
	tm.defaults()
	var total time.Duration
	for range b.N {
		b.StopTimer()
		pipe := rdb.Pipeline()
		for i := range n {
			id := fmt.Sprintf("C-BT%07d", i)
			pipe.HSet(ctx, caseKey(id), "muni", "13047", "prov", "13", "region", "CM", "unit", "gc-ciudad-real")
			pipe.ZAdd(ctx, keyTimerCheckin.key(id), redisZ(now.Add(-time.Second), id))
			if pipe.Len() >= 10000 {
				if _, err := pipe.Exec(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		began := time.Now()
		for {
			more, err := tm.round(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if !more {
				break
			}
		}
		total += time.Since(began)
		if left, _ := keyTimerCheckin.card(ctx, rdb); left != 0 {
			b.Fatalf("%d timers left", left)
		}
	}
	sec := total.Seconds() / float64(b.N)
	b.ReportMetric(sec, "fire-s")
	b.ReportMetric(float64(n)/sec, "timers/s")
}

func envInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err != nil || v <= 0 {
		return def
	}
	return v
}
