package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Rule ids of testdata/load.yaml: which rule each mode's alerts come from.
const (
	ruleAlarm    = "lt-alarm"
	ruleEscalate = "lt-escalate"
	ruleCheckin  = "lt-checkin"
)

// checkinEvery is the extremo check-in period of testdata/load.yaml: a
// risk.assessed at extremo that occurred at T puts the case's check-in
// deadline at T + checkinEvery.
const checkinEvery = time.Hour

type jurisdiction struct {
	Municipality string `json:"municipality"`
	Province     string `json:"province"`
	Region       string `json:"region"`
}

// loadEvent is an event of the public contract (docs/events.md), with
// synthetic ids only.
type loadEvent struct {
	ID              string       `json:"id"`
	Type            string       `json:"type"`
	CaseID          string       `json:"case_id"`
	OccurredAt      string       `json:"occurred_at"`
	Source          string       `json:"source"`
	Jurisdiction    jurisdiction `json:"jurisdiction"`
	ResponsibleUnit string       `json:"responsible_unit"`
	Alarm           *alarm       `json:"alarm,omitempty"`
	Risk            *risk        `json:"risk,omitempty"`
}

type alarm struct {
	Kind      string `json:"kind"`
	DistanceM int    `json:"distance_m"`
}

type risk struct {
	Level string `json:"level"`
}

// plan is what one run publishes and expects: event i gives alert ids[i].
type plan struct {
	events []loadEvent
	ids    []string    // expected alert per event
	due    []time.Time // timers mode: the check-in deadline of event i's case
}

// newPlan builds n events of distinct synthetic cases (C-LT<tag><n>) for
// mode. Timers: risk.assessed at extremo that occurred one check-in
// period before due(i), so case i's deadline is due(i); the alert comes
// later, from the checkin.missed the timer fires (its event id is
// timer:checkin:<case>:<due ms>, dispatcher/timers.go).
func newPlan(mode string, tag string, n int, due func(i int) time.Time, uuids bool) plan {
	p := plan{events: make([]loadEvent, n), ids: make([]string, n)}
	if mode == ModeTimers {
		p.due = make([]time.Time, n)
	}
	j := jurisdiction{Municipality: "13047", Province: "13", Region: "CM"}
	for i := range n {
		id := fmt.Sprintf("lt-%s-%07d", tag, i)
		if uuids { // version 4's layout, from the tag and i: distinct per run
			id = fmt.Sprintf("%s%02x-%04x-4%03x-8%03x-%012x", tag, i>>24&0xff, i>>8&0xffff, i&0xfff, (i*7)&0xfff, uint64(i)*2654435761&0xffffffffffff)
		}
		e := loadEvent{ID: id, CaseID: fmt.Sprintf("C-LT%s%07d", tag, i),
			Source: "cometa", Jurisdiction: j, ResponsibleUnit: "lt-unidad"}
		switch mode {
		case ModeTimers:
			d := due(i).Truncate(time.Millisecond)
			e.Type, e.Source, e.Risk = "risk.assessed", "viogen", &risk{Level: "extremo"}
			e.OccurredAt = d.Add(-checkinEvery).UTC().Format(time.RFC3339Nano)
			p.due[i] = d
			p.ids[i] = alertID(fmt.Sprintf("timer:checkin:%s:%d", e.CaseID, d.UnixMilli()), ruleCheckin)
		case ModeEscalations:
			e.Type = "breach.reported"
			p.ids[i] = alertID(e.ID, ruleEscalate)
		default:
			e.Type, e.Alarm = "device.alarm", &alarm{Kind: "panic"}
			p.ids[i] = alertID(e.ID, ruleAlarm)
		}
		p.events[i] = e
	}
	return p
}

// message encodes event i with occurred_at = at (unless already set).
func (p plan) message(i int, at time.Time) (kafka.Message, error) {
	e := p.events[i]
	if e.OccurredAt == "" {
		e.OccurredAt = at.UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return kafka.Message{}, err
	}
	return kafka.Message{Key: []byte(e.CaseID), Value: b}, nil
}

// publisher writes to case-events keyed by case id with the CRC32
// partitioner (as `dispatcher publish` and kcat do), acks from all
// replicas.
func newWriter(brokers string, batchSize int) *kafka.Writer {
	return &kafka.Writer{Addr: kafka.TCP(brokers), Topic: "case-events", Balancer: &kafka.CRC32Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchBytes: 1_000_000,
		BatchSize: batchSize, Transport: &kafka.Transport{}}
}

// publishStats is how publishing went.
type publishStats struct {
	start, end time.Time
	produce    []time.Duration // per write call: how long the broker took to ack
}

// publish writes every event of p: all at once in chunks when rate is
// 0, else paced at rate events/s (each due event written as soon as its
// time comes; late ones are written together). Before each write it
// records the time as the reference of its alerts (unless refs is nil).
func publish(ctx context.Context, w *kafka.Writer, p plan, rate float64, refs func(i int, t time.Time)) (publishStats, error) {
	st := publishStats{start: time.Now()}
	n := len(p.events)
	chunk := 1000
	for i := 0; i < n; {
		j := min(n, i+chunk)
		if rate > 0 {
			due := st.start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			// Every event whose time has come, at least one.
			el := time.Since(st.start).Seconds()
			j = min(n, max(i+1, int(el*rate)+1))
		}
		now := time.Now()
		msgs := make([]kafka.Message, 0, j-i)
		for k := i; k < j; k++ {
			m, err := p.message(k, now)
			if err != nil {
				return st, err
			}
			msgs = append(msgs, m)
			if refs != nil {
				refs(k, now)
			}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return st, fmt.Errorf("publish events %d-%d: %w", i, j-1, err)
		}
		st.produce = append(st.produce, time.Since(now))
		i = j
	}
	st.end = time.Now()
	return st, nil
}
