package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Per-channel states of an intent, kept in its Redis hash.
const (
	stateSent   = "sent"
	stateFailed = "failed"
)

// deliveryState keeps what delivery must not forget across restarts: the
// sent-marker per intent and channel (written only after the provider
// accepted, holding the audit record so a replay re-emits it), and the
// final state of each channel of an intent.
type deliveryState struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

func sentKey(caseRef, intentID, channel string) string {
	return "case:{" + caseRef + "}:sent:" + intentID + ":" + channel
}

func intentKey(caseRef, intentID string) string { return "case:{" + caseRef + "}:intent:" + intentID }

func smsKey(sid string) string { return "sms:" + sid }

// sent returns the audit record of an earlier accepted send, if any.
func (s *deliveryState) sent(ctx context.Context, in Intent, channel string) (*Result, error) {
	b, err := s.rdb.Get(ctx, sentKey(in.CaseRef, in.ID, channel)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sent-marker: %w", err)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode sent-marker: %w", err)
	}
	return &r, nil
}

// markSent records an accepted send. For SMS it also maps the provider's
// message sid to the intent, for delivery receipts.
func (s *deliveryState) markSent(ctx context.Context, in Intent, r Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode sent-marker: %w", err)
	}
	pipe := s.rdb.TxPipeline()
	pipe.Set(ctx, sentKey(in.CaseRef, in.ID, r.Channel), b, s.ttl)
	pipe.HSet(ctx, intentKey(in.CaseRef, in.ID), r.Channel, stateSent)
	pipe.Expire(ctx, intentKey(in.CaseRef, in.ID), s.ttl)
	if r.Channel == "sms" && r.ProviderID != "" {
		ib, err := in.Encode()
		if err != nil {
			return err
		}
		pipe.Set(ctx, smsKey(r.ProviderID), ib, 7*24*time.Hour)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("write sent-marker: %w", err)
	}
	return nil
}

// markFailed records a channel's final failure and returns the states of
// all channels of the intent.
func (s *deliveryState) markFailed(ctx context.Context, in Intent, channel string) (map[string]string, error) {
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, intentKey(in.CaseRef, in.ID), channel, stateFailed)
	pipe.Expire(ctx, intentKey(in.CaseRef, in.ID), s.ttl)
	all := pipe.HGetAll(ctx, intentKey(in.CaseRef, in.ID))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("record failure: %w", err)
	}
	return all.Val(), nil
}

// states returns the recorded channel states of an intent.
func (s *deliveryState) states(ctx context.Context, in Intent) (map[string]string, error) {
	m, err := s.rdb.HGetAll(ctx, intentKey(in.CaseRef, in.ID)).Result()
	if err != nil {
		return nil, fmt.Errorf("read intent state: %w", err)
	}
	return m, nil
}

// intentBySID finds the intent an SMS sid was sent for.
func (s *deliveryState) intentBySID(ctx context.Context, sid string) (*Intent, error) {
	b, err := s.rdb.Get(ctx, smsKey(sid)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sms sid: %w", err)
	}
	in, err := DecodeIntent(b)
	if err != nil {
		return nil, err
	}
	return &in, nil
}

func sendingKey(caseRef, intentID, channel string) string {
	return "case:{" + caseRef + "}:sending:" + intentID + ":" + channel
}

// claimSend takes the in-flight claim of one intent and channel, so two
// workers (a redelivery and a retry, or a rebalance) never call the
// provider for it at once. It expires by itself if its holder dies.
func (s *deliveryState) claimSend(ctx context.Context, in Intent, channel string, ttl time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, sendingKey(in.CaseRef, in.ID, channel), "1", ttl).Result()
	if err != nil {
		return false, fmt.Errorf("claim send: %w", err)
	}
	return ok, nil
}

// releaseSend gives the claim back; if this fails the claim just expires.
func (s *deliveryState) releaseSend(ctx context.Context, in Intent, channel string) {
	_ = s.rdb.Del(ctx, sendingKey(in.CaseRef, in.ID, channel)).Err()
}
