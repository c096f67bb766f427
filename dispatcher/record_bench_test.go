package dispatcher

import (
	"testing"
	"time"
)

// The sent-marker markSent writes for every accepted send, encoded and
// decoded (go test -run '^$' -bench 'SentMarker' ./dispatcher).
func BenchmarkSentMarker(b *testing.B) {
	in := testIntent("")
	in.ID = IntentID(in.AlertID, in.Step, in.Round, in.ContactID)
	r := resultFor(in, "webhook", 1, OutcomeSent, time.UnixMilli(1796080300011).UTC())
	r.ProviderID, r.LatencyMS = "wh_load", latencyOf(in, r.At)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeSent(in, "webhook", r, WriteCurrent); err != nil {
				b.Fatal(err)
			}
		}
	})
	raw, err := encodeSent(in, "webhook", r, WriteCurrent)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeSent(in, "webhook", raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
