package dispatcher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// BenchmarkDeliverSMS measures the deliver stage per notification: sent-
// marker check, render, send to the local Twilio server over HTTP, marker
// write, audit record to Kafka; batches of 100 intents as consumed.
func BenchmarkDeliverSMS(b *testing.B) {
	_, brokers := testenv.StartKafka(b, 1, TopicIntents, TopicResults)
	rdb := testenv.StartRedis(b).Client(b)
	w := NewWriter(brokers, quietLog())
	defer w.Close()
	e := &decideEnv{d: &Decider{Engine: exampleEngine(b), Writer: w}, store: NewStore(rdb, time.Hour), brokers: brokers}
	p := startProvidersTB(b)
	d := newDelivererTB(b, e, p)
	in := Intent{Kind: KindAlert, AlertID: "a3f9c2d1e8b74a10", Rule: "risk-rises-to-alto", Template: "risk_rise",
		Severity: "error", CaseRef: "C-BENCH", ContactID: "gc-cr-guardia", AgencyID: "gc-ciudad-real",
		AgencyName: "Guardia Civil", Locale: "es", Channels: []string{"sms"}, DecidedAt: time.Now(), OccurredAt: time.Now()}
	msgs := make([]kafka.Message, 0, 100)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 100 {
		msgs = msgs[:0]
		for j := i; j < min(i+100, b.N); j++ {
			in.ID = fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), j)
			v, _ := in.Encode()
			msgs = append(msgs, kafka.Message{Value: v})
		}
		if err := d.handleBatch(ctx, msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
