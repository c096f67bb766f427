package main

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// REDIS_ADDRS (the Sentinel) and REDIS_MASTER_NAME against a real
// Sentinel-managed master and replica: case events are applied through
// the client the settings build (the real Lua scripts), the Sentinel
// fails the master over to the replica, and the client follows: what was
// written before is there, and events keep being applied on the new
// master, each once. (Writes the old master takes while the failover is
// under way are lost by Redis itself, replication being asynchronous:
// the test writes again once the failover is complete, see
// docs/operations.md.)
func TestRedisSentinelFailover(t *testing.T) {
	sen := testenv.StartRedisSentinel(t, "viogen")
	var s settings
	fs := newFlagSet("run", "", io.Discard)
	env := map[string]string{"REDIS_ADDRS": sen.Sentinel, "REDIS_MASTER_NAME": "viogen"}
	s.register(fs, func(k string) string { return env[k] }, settings{})
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	rdb, err := s.redisClient()
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	store := dispatcher.NewStore(rdb, time.Hour)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	apply := func(i int) (dispatcher.Outcome, error) {
		ev := event.Event{ID: fmt.Sprintf("sen-%03d", i), Type: event.RiskAssessed, CaseID: fmt.Sprintf("C-SEN%02d", i%10),
			Source: "viogen", Version: int64(i + 1), OccurredAt: t0.Add(time.Duration(i) * time.Minute),
			Jurisdiction: event.Jurisdiction{Municipality: "13047", Province: "13", Region: "CM"}, ResponsibleUnit: "gc-ciudad-real",
			Risk: &event.Risk{Level: event.Level(1 + i%4)}}
		outs, err := store.Apply(ctx, []event.Event{ev})
		if err != nil {
			return dispatcher.Outcome{}, err
		}
		return outs[0], nil
	}
	for i := range 50 {
		if _, err := apply(i); err != nil {
			t.Fatalf("before the failover, event %d: %v", i, err)
		}
	}
	// The replica has everything before the master goes away.
	if n, err := rdb.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica: %d %v", n, err)
	}
	from, to := sen.Failover(t)
	t.Logf("sentinel failed %s over to %s", from, to)
	began := time.Now()
	var first time.Duration
	for i := 50; i < 100; i++ {
		var err error
		for try := 0; try < 100; try++ { // the client rediscovers the master
			if _, err = apply(i); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("after the failover, event %d: %v", i, err)
		}
		if i == 50 {
			first = time.Since(began)
		}
	}
	t.Logf("first event applied %v after the new master was announced", first.Round(time.Millisecond))
	for i := range 100 {
		o, err := apply(i) // every event again: each is known, none applied twice
		if err != nil || !o.Transition.Duplicate {
			t.Fatalf("event %d replayed after the failover: duplicate %v, err %v", i, o.Transition.Duplicate, err)
		}
	}
	// And the data is on the new master itself.
	direct := redis.NewClient(&redis.Options{Addr: to})
	defer direct.Close()
	if n, err := direct.Exists(ctx, "case:{C-SEN00}", "case:{C-SEN09}").Result(); err != nil || n != 2 {
		t.Fatalf("cases on the new master %s: %d %v", to, n, err)
	}
}
