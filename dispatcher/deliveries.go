package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/rules"
)

// Delivery is what became of one channel of one notification of an
// escalation, as the console's timeline shows it: ids, channel and
// outcome only.
type Delivery struct {
	Step, Round         int
	AgencyID, ContactID string
	Channel             string
	// Outcome is the audit record's (sent, ...) once the provider accepted,
	// "failed" when the channel failed for good, else "pending".
	Outcome    string
	Attempt    int
	ProviderID string
	At         time.Time
	// Receipts are the delivery-receipt statuses recorded (SMS), and
	// "unconfirmed" when none came in time.
	Receipts []string
}

// Deliveries reads the delivery state of every notification of e so far:
// the intents of each step and round reached, resolved with cfg as the
// ladder resolves them (a configuration changed since may name other
// contacts), and for each channel its sent-marker or final state.
func (s *EscalationStore) Deliveries(ctx context.Context, cfg *rules.Config, e *Escalation) ([]Delivery, error) {
	var out []Delivery
	for step := 0; step <= e.Step && step < len(e.Alert.Policy.Steps); step++ {
		rounds := e.Alert.Policy.Steps[step].Repeat
		if step == e.Step {
			rounds = e.Round
		}
		for round := 0; round <= rounds; round++ {
			for _, in := range StepIntents(cfg, e.Alert, step, round, e.AckCode, e.OpenedAt) {
				ds, err := s.intentDeliveries(ctx, in, step, round)
				if err != nil {
					return nil, err
				}
				out = append(out, ds...)
			}
		}
	}
	return out, nil
}

func (s *EscalationStore) intentDeliveries(ctx context.Context, in Intent, step, round int) ([]Delivery, error) {
	state, err := s.rdb.HGetAll(ctx, intentKey(in.CaseRef, in.ID)).Result()
	if err != nil {
		return nil, fmt.Errorf("read intent %s: %w", in.ID, err)
	}
	var receipts []string
	for f := range state {
		if r, ok := strings.CutPrefix(f, "receipt:"); ok {
			if i := strings.LastIndex(r, ":"); i >= 0 {
				receipts = append(receipts, r[i+1:])
			}
		}
	}
	sort.Strings(receipts)
	if _, ok := state["unconfirmed"]; ok {
		receipts = append(receipts, "unconfirmed")
	}
	var out []Delivery
	channels := in.planned()
	for _, ch := range channels {
		d := Delivery{Step: step, Round: round, AgencyID: in.AgencyID, ContactID: in.ContactID, Channel: ch, Outcome: "pending"}
		b, err := s.rdb.Get(ctx, sentKey(in.CaseRef, in.ID, ch)).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			if state[ch] == stateFailed {
				d.Outcome = stateFailed
			} else if isFallback(in, ch) {
				continue // a fallback channel never tried
			}
		case err != nil:
			return nil, fmt.Errorf("read sent-marker: %w", err)
		default:
			// Either layout (decodeSent); a marker that does not decode
			// leaves the outcome "pending", as before.
			if r, decErr := decodeSent(in, ch, b); decErr == nil {
				d.Outcome, d.Attempt, d.ProviderID, d.At = r.Outcome, r.Attempt, r.ProviderID, r.At
			}
		}
		if ch == "sms" {
			d.Receipts = receipts
		}
		out = append(out, d)
	}
	return out, nil
}

func isFallback(in Intent, ch string) bool {
	for _, c := range in.Channels {
		if c == ch {
			return false
		}
	}
	return true
}
