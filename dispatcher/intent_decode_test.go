package dispatcher

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/templates"
)

// TestIntentFastDecodeMatchesEncodingJSON: whatever the fast decoders of
// intents and queued jobs take, they read exactly as json.Unmarshal does,
// and they take nothing json.Unmarshal refuses. Intents with every field
// set or empty, strings with escapes and non-ASCII, times in other zones,
// digests, written by json.Marshal and by the intent encoder, then bent:
// white space, a key in capitals, a null, an unknown key, a fraction, a
// repeated key, trailing data, a cut, raw invalid UTF-8, a leading zero.
func TestIntentFastDecodeMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	gen := newIntentGen(t, rng)
	fast, fastJobs := 0, 0
	for i := range 4000 {
		in := gen.intent()
		if i%40 == 0 {
			in.Digest = []templates.DigestItem{{}}
		}
		b, err := in.Encode()
		if err != nil {
			t.Fatal(err)
		}
		jb, err := json.Marshal(retryJob{Intent: in, Channel: gen.s(), Attempt: rng.IntN(4), Check: gen.s(), SID: gen.s()})
		if err != nil {
			t.Fatal(err)
		}
		for v := range 11 {
			ib, jjb := bend(rng, b, v), bend(rng, jb, v)
			var want, got Intent
			werr := json.Unmarshal(ib, &want)
			if decodeIntentFast(string(ib), &got) {
				fast++
				if werr != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("intent %d, variant %d: %s\nfast: %+v\njson: %+v (%v)", i, v, ib, got, want, werr)
				}
			}
			var wantJ, gotJ retryJob
			werr = json.Unmarshal(jjb, &wantJ)
			if decodeJobFast(string(jjb), &gotJ) {
				fastJobs++
				if werr != nil || !reflect.DeepEqual(gotJ, wantJ) {
					t.Fatalf("job %d, variant %d: %s\nfast: %+v\njson: %+v (%v)", i, v, jjb, gotJ, wantJ, werr)
				}
			}
		}
	}
	// Variants 2-10 are all refused by design: at most 8,000 of each can
	// go the fast way, fewer with odd strings and digests.
	if fast < 4000 || fastJobs < 4000 {
		t.Errorf("only %d intents and %d jobs of 44,000 each took the fast path: the test barely checks it", fast, fastJobs)
	}
}

// DecodeIntent and the queue's decode give json.Unmarshal's result for
// what the fast path gives up on (here: a key in another case).
func TestIntentDecodeFallsBackToEncodingJSON(t *testing.T) {
	b := []byte(`{"ID":"i1","template":"t","contact_id":"c1","channels":["sms"],"Step":2,"level":"alto","deadline":null}`)
	var probe Intent
	if decodeIntentFast(string(b), &probe) {
		t.Fatal("the fast path took capitalised keys")
	}
	in, err := DecodeIntent(b)
	if err != nil || in.ID != "i1" || in.Step != 2 || in.Level != event.Alto || in.Channels[0] != "sms" {
		t.Fatalf("DecodeIntent: %+v (%v)", in, err)
	}
	q := jobQueue{}
	j, err := q.decode(t.Context(), "k", `{"Intent":`+string(b)+`,"channel":"sms","attempt":3}`, time.Now())
	if err != nil || j.job.Intent.ID != "i1" || j.job.Attempt != 3 || j.job.Intent.Step != 2 {
		t.Fatalf("queue decode: %+v (%v)", j.job, err)
	}
}

// bend returns b unchanged (v 0) or changed in one way.
func bend(rng *rand.Rand, b []byte, v int) []byte {
	s := string(b)
	switch v {
	case 1:
		s = strings.ReplaceAll(strings.ReplaceAll(s, `":`, "\" :\n "), `,"`, " ,\t\"")
	case 2:
		s = strings.Replace(s, `"id":`, `"Id":`, 1)
	case 3:
		s = strings.Replace(s, `"locale":`, `"locale":null,"x":`, 1)
	case 4:
		s = strings.Replace(s, `{"`, `{"zz":1,"`, 1)
	case 5:
		s = strings.Replace(s, `"round":`, `"round":1.0,"r":`, 1)
	case 6:
		s = strings.TrimSuffix(s, "}") + `,"id":"again","channels":["x"]}`
	case 7:
		s += " x"
	case 8:
		s = s[:rng.IntN(len(s))]
	case 9:
		s = strings.Replace(s, `"locale":"`, "\"locale\":\"\xff", 1) // raw invalid UTF-8
	case 10:
		s = strings.Replace(s, `"round":`, `"round":0`, 1) // a leading zero
	}
	return []byte(s)
}

// intentGen makes intents with every field set or empty at random.
type intentGen struct {
	rng   *rand.Rand
	times []time.Time
}

func newIntentGen(t *testing.T, rng *rand.Rand) *intentGen {
	madrid, err := time.LoadLocation("Europe/Madrid")
	if err != nil {
		t.Fatal(err)
	}
	return &intentGen{rng: rng, times: []time.Time{{}, time.Date(2026, 11, 30, 15, 4, 5, 123456789, time.UTC),
		time.Date(2026, 3, 29, 2, 30, 0, 0, madrid), time.Date(2026, 7, 1, 0, 0, 0, 0, madrid), time.UnixMilli(1764500000123),
		time.Date(1850, 1, 1, 0, 0, 0, 0, madrid), time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("odd", 3600+30))}}
}

func (g *intentGen) s() string {
	strs := []string{"", "a", "C-LT-000001", "Unidad LT", "pl-x/oncall", "sms", "es", "~{}|", "Policía Local"}
	odd := []string{"a<b", `q"uote`, `back\slash`, "tab\there", "\u2028", "\u2029", "\x7f", "\xff\xfe", "ñandú"}
	if g.rng.IntN(200) == 0 {
		return odd[g.rng.IntN(len(odd))]
	}
	return strs[g.rng.IntN(len(strs))]
}

func (g *intentGen) tm() time.Time { return g.times[g.rng.IntN(len(g.times))] }

func (g *intentGen) list() []string {
	switch g.rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	out := make([]string, 1+g.rng.IntN(3))
	for i := range out {
		out[i] = g.s()
	}
	return out
}

func (g *intentGen) intent() Intent {
	rng := g.rng
	return Intent{ID: g.s(), Kind: g.s(), AlertID: g.s(), Rule: g.s(), Template: g.s(), Severity: g.s(), Critical: rng.IntN(2) == 0,
		Unrouted: rng.IntN(2) == 0, CaseRef: g.s(), EventID: g.s(), EventType: event.Type(g.s()), Level: event.Level(rng.IntN(7)),
		PrevLevel: event.Level(rng.IntN(6)), OccurredAt: g.tm(), DecidedAt: g.tm(), Step: rng.IntN(25) - 12, Round: rng.IntN(3),
		Deadline: g.tm(), AckCode: g.s(), Missed: rng.IntN(3), MissedSince: g.tm(), AgencyID: g.s(), AgencyName: g.s(),
		OtherAgency: g.s(), ContactID: g.s(), Locale: g.s(), Channels: g.list(), Fallback: g.list(), PagerAction: g.s()}
}

// BenchmarkDecodeIntent: a typical webhook intent, the fast way and
// encoding/json's.
func BenchmarkDecodeIntent(b *testing.B) {
	at := time.Date(2026, 11, 30, 15, 4, 5, 123456789, time.UTC)
	in := Intent{ID: "0123456789abcdef01234567", Kind: "alert", AlertID: "0123456789abcdef", Rule: "device-alarm",
		Template: "device_alarm", Severity: "critical", Critical: true, CaseRef: "C-LT00000000001", EventID: "lt-000001",
		EventType: "device.alarm", Level: event.Extremo, OccurredAt: at, DecidedAt: at, AgencyID: "lt-unidad",
		AgencyName: "Unidad LT", ContactID: "lt-unidad-hook", Locale: "es", Channels: []string{"webhook"}}
	raw, err := in.Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got Intent
			if !decodeIntentFast(string(raw), &got) {
				b.Fatal("fell back")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got Intent
			if err := json.Unmarshal(raw, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestJobEncodingMatchesEncodingJSON: a queued job's member is written
// byte for byte as json.Marshal writes it (the member is the job's
// identity in the queue), whether it takes the encoder's own path or
// falls back.
func TestJobEncodingMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	gen := newIntentGen(t, rng)
	own := 0
	for i := range 4000 {
		j := retryJob{Intent: gen.intent(), Channel: gen.s(), Attempt: rng.IntN(30) - 2}
		if i%3 == 0 {
			j.Check, j.SID = gen.s(), gen.s()
		}
		if i%40 == 0 {
			j.Intent.Digest = []templates.DigestItem{{}}
		}
		if _, ok := appendJob(nil, &j); ok {
			own++
		}
		want, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		q, err := newQueued(j)
		if err != nil || q.raw != string(want) {
			t.Fatalf("job %d (%v):\n got %s\nwant %s", i, err, q.raw, want)
		}
	}
	// Two of the generator's seven times (a zone offset with seconds) fall
	// back in each of four fields: about a quarter take the own path.
	if own < 500 {
		t.Errorf("only %d of 4000 jobs took the encoder's own path", own)
	}
}

// Texts the fast decoders take that the generator does not write: a
// repeated key (the last wins, and a repeated nested intent adds to the
// first, as encoding/json does), an empty level, -0, lists empty and
// null, white space around the whole.
func TestIntentFastDecodeEdgeCases(t *testing.T) {
	base := `"id":"i","template":"t","contact_id":"c","channels":["sms"]`
	intents := []string{
		`{` + base + `,"level":""}`,
		`{` + base + `,"level":"alto","level":"extremo"}`,
		`{` + base + `,"channels":["a"],"channels":[]}`,
		`{` + base + `,"fallback":null,"fallback":["x"],"fallback":null}`,
		`{` + base + `,"step":-0,"round":9223372036854775807}`,
		" \n{" + base + `,"id":"again"}` + "\t ",
		`{` + base + `,"agency_name":"Policía Local","occurred_at":"2026-03-29T02:30:00.5+01:00"}`,
	}
	for _, s := range intents {
		var got, want Intent
		if !decodeIntentFast(s, &got) {
			t.Errorf("fast path refused %s", s)
			continue
		}
		if err := json.Unmarshal([]byte(s), &want); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s\nfast: %+v\njson: %+v (%v)", s, got, want, err)
		}
	}
	jobs := []string{
		`{"intent":{` + base + `,"rule":"r1"},"intent":{"id":"j2"},"channel":"sms","attempt":1}`,
		`{"intent":{` + base + `},"channel":"sms","channel":"email","attempt":1,"attempt":2}`,
		`{"channel":"sms","intent":{` + base + `,"level":""},"check":"receipt","sid":"SM1","sid":"SM2"}`,
	}
	for _, s := range jobs {
		var got, want retryJob
		if !decodeJobFast(s, &got) {
			t.Errorf("fast path refused %s", s)
			continue
		}
		if err := json.Unmarshal([]byte(s), &want); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s\nfast: %+v\njson: %+v (%v)", s, got, want, err)
		}
	}
}
