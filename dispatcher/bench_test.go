package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/loadtest"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// benchPayloads encodes n distinct events over 500 cases.
func benchPayloads(b *testing.B, n int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, n)
	for i := range n {
		e := ev(fmt.Sprintf("b-%d-%d", time.Now().UnixNano(), i), event.RiskAssessed,
			fmt.Sprintf("C-B%03d", i%500), int64(i/500+1), event.Level(1+rng.IntN(4)))
		p, err := event.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = p
	}
	return out
}

// BenchmarkDecodeApply measures decode + one pipelined Redis round trip
// per batch, as the consumer does per fetch; ns/op is per event.
func BenchmarkDecodeApply(b *testing.B) {
	for _, batch := range []int{1, 100, 500} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			rdb := testenv.StartRedis(b).Client(b)
			store := NewStore(rdb, time.Hour)
			payloads := benchPayloads(b, b.N)
			ctx := context.Background()
			evs := make([]event.Event, 0, batch)
			if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				evs = evs[:0]
				for _, p := range payloads[i:min(i+batch, b.N)] {
					e, err := event.Decode(p)
					if err != nil {
						b.Fatal(err)
					}
					evs = append(evs, e)
				}
				if _, err := store.Apply(ctx, evs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			// Redis's own time in apply.lua: what bounds the decide stage,
			// since one Redis thread runs every event's script.
			b.ReportMetric(commandMicros(b, rdb, "evalsha"), "redis-µs/script")
		})
	}
}

// commandMicros is Redis's usec_per_call of a command since the last
// CONFIG RESETSTAT (INFO commandstats).
func commandMicros(b *testing.B, rdb redis.UniversalClient, cmd string) float64 {
	stats, err := loadtest.CommandStats(context.Background(), rdb)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range stats {
		if c.Command == cmd {
			return c.UsecPerCall
		}
	}
	return 0
}

// BenchmarkDecode is the decoder alone.
func BenchmarkDecode(b *testing.B) {
	payloads := benchPayloads(b, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := event.Decode(payloads[i%1000]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIntentEncode compares the intent encoder with json.Marshal
// (they write the same bytes: TestIntentEncodingMatchesEncodingJSON).
func BenchmarkIntentEncode(b *testing.B) {
	now := time.Date(2026, 11, 30, 15, 4, 5, 123456789, time.UTC)
	in := Intent{ID: IntentID("0123456789abcdef", 0, 0, "lt-unidad-hook"), Kind: KindAlert, AlertID: "0123456789abcdef",
		Rule: "lt-alarm", Template: "device_alarm", Severity: "critical", CaseRef: "C-LT-0000001", EventID: "ev-000001",
		EventType: event.DeviceAlarm, OccurredAt: now, DecidedAt: now, AgencyID: "lt-unidad", AgencyName: "Unidad LT",
		ContactID: "lt-unidad-hook", Locale: "es", Channels: []string{"webhook"}}
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := in.Encode(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
