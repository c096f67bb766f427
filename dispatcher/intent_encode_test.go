package dispatcher

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/templates"
)

// TestIntentEncodingMatchesEncodingJSON: Intent.Encode writes exactly
// what json.Marshal writes, for intents with every field set or left
// empty, strings that need escaping, times in other zones and at the
// edges, and a digest (which falls back).
func TestIntentEncodingMatchesEncodingJSON(t *testing.T) {
	madrid, err := time.LoadLocation("Europe/Madrid")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	strs := []string{"", "a", "C-LT-000001", "Unidad LT", "pl-x/oncall", "sms", "es", "~{}|"}
	odd := []string{"a<b", "x>y", `q"uote`, `back\slash`, "<b>&amp;", "ñandú", "tab\there", "\u2028", "\u2029", "\x7f", "\xff\xfe"}
	times := []time.Time{{}, time.Date(2026, 11, 30, 15, 4, 5, 123456789, time.UTC), time.Date(2026, 3, 29, 2, 30, 0, 0, madrid),
		time.Date(2026, 7, 1, 0, 0, 0, 0, madrid), time.UnixMilli(1764500000123), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1850, 1, 1, 0, 0, 0, 0, madrid), time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("odd", 3600+30))}
	s := func() string {
		if rng.IntN(40) == 0 {
			return odd[rng.IntN(len(odd))]
		}
		return strs[rng.IntN(len(strs))]
	}
	tm := func() time.Time {
		if rng.IntN(20) == 0 {
			return times[rng.IntN(len(times))]
		}
		return times[rng.IntN(5)]
	}
	list := func() []string {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return []string{}
		default:
			out := make([]string, 1+rng.IntN(3))
			for i := range out {
				out[i] = s()
			}
			return out
		}
	}
	fast := 0
	for i := range 5000 {
		in := Intent{ID: s(), Kind: s(), AlertID: s(), Rule: s(), Template: s(), Severity: s(), Critical: rng.IntN(2) == 0,
			Unrouted: rng.IntN(2) == 0, CaseRef: s(), EventID: s(), EventType: event.Type(s()), Level: event.Level(rng.IntN(7)),
			PrevLevel: event.Level(rng.IntN(6)), OccurredAt: tm(), DecidedAt: tm(), Step: rng.IntN(3) - 1, Round: rng.IntN(3),
			Deadline: tm(), AckCode: s(), Missed: rng.IntN(3), MissedSince: tm(), AgencyID: s(), AgencyName: s(),
			OtherAgency: s(), ContactID: s(), Locale: s(), Channels: list(), Fallback: list(), PagerAction: s()}
		if i%50 == 0 {
			in.Digest = []templates.DigestItem{{}}
		}
		if _, ok := appendIntent(nil, &in); ok {
			fast++
		}
		want, werr := json.Marshal(in)
		got, gerr := in.Encode()
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("intent %d: error %v, json.Marshal's %v", i, gerr, werr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("intent %d:\n got %s\nwant %s", i, got, want)
		}
	}
	if fast < 1000 {
		t.Errorf("only %d of 5000 intents took the encoder's own path: the test barely checks it", fast)
	}
}
