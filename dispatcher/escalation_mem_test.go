package dispatcher

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// BenchmarkEscalationMemory opens ESC_N (default 20,000) escalations the
// way the ladder does (Ladder.Open: ack code, record, indexes, step timer)
// for the example config's bracelet-alarm policy in Palma, and reports
// Redis used_memory per open escalation (bytes/esc) and the record's JSON
// size (json-bytes).
func BenchmarkEscalationMemory(b *testing.B) {
	n := envInt("ESC_N", 20000)
	eng := exampleEngine(b)
	cfg := eng.Config()
	for range b.N {
		b.StopTimer()
		rdb := testenv.StartRedis(b).Client(b)
		ctx := context.Background()
		store := NewEscalationStore(rdb, 30*24*time.Hour)
		l := &Ladder{Rules: cfg, Store: store, Log: quietLog()}
		before := usedMemory(b, rdb)
		now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
		var jsonBytes int
		b.StartTimer()
		for i := 0; i < n; i += 100 {
			var opened []openedAlert
			for j := i; j < min(i+100, n); j++ {
				ev := event.Event{ID: fmt.Sprintf("ev-%07d", j), Type: event.DeviceAlarm, CaseID: fmt.Sprintf("C-EM%07d", j),
					Source: "viogen", OccurredAt: now, ResponsibleUnit: "pl-palma",
					Jurisdiction: event.Jurisdiction{Municipality: "07040", Province: "07", Region: "IB"},
					Alarm:        &event.Alarm{Kind: event.AlarmProximity}}
				c := event.Case{ID: ev.CaseID, Level: event.Alto, Jurisdiction: ev.Jurisdiction, ResponsibleUnit: "pl-palma", Active: true}
				alerts, err := eng.Evaluate(ev, event.NewTransition(event.Alto, event.Alto), c)
				if err != nil {
					b.Fatal(err)
				}
				for _, a := range alerts {
					if len(a.Policy.Steps) > 0 && a.Policy.Steps[0].AckWithin > 0 {
						opened = append(opened, openedAlert{alert: a, intents: StepIntents(cfg, a, 0, 0, "", now)})
						break
					}
				}
			}
			if len(opened) == 0 {
				b.Fatal("the example config opens no escalation for a bracelet alarm in Palma")
			}
			if err := l.Open(ctx, opened, now); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		open, _ := keyEscOpen.card(ctx, rdb)
		if open != int64(n) {
			b.Fatalf("%d escalations open, want %d", open, n)
		}
		raw, _ := rdb.Get(ctx, escKey("C-EM0000000", AlertIDOf(b, store, "C-EM0000000"))).Result()
		jsonBytes = len(raw)
		if testing.Verbose() {
			b.Logf("%s", raw)
		}
		b.ReportMetric(float64(usedMemory(b, rdb)-before)/float64(n), "bytes/esc")
		b.ReportMetric(float64(jsonBytes), "json-bytes")
		b.StartTimer()
	}
}

// AlertIDOf is the alert id of a case's first open escalation.
func AlertIDOf(b *testing.B, s *EscalationStore, caseRef string) string {
	es, err := s.OpenForCase(context.Background(), caseRef)
	if err != nil || len(es) == 0 {
		b.Fatalf("no open escalation for %s: %v", caseRef, err)
	}
	return es[0].ID
}

func usedMemory(b *testing.B, rdb *redis.Client) int64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("INFO memory has no used_memory")
	return 0
}
