package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/channels/sms"
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
	// format is the layout of the sent-markers written.
	format WriteFormat
	// batch, while the deliver stage runs, carries begin and markSent of
	// concurrent workers in shared round trips (nil: one each).
	batch atomic.Pointer[pipeBatcher]
}

// evalBatched runs script once, batched with other workers' calls; a
// server that lost its script cache gets it loaded and the call sent
// again (every script of ours is idempotent). extra adds commands to
// the same round trip.
func (s *deliveryState) evalBatched(ctx context.Context, script *redis.Script, keys []string, args []any, extra func(redis.Pipeliner)) (*redis.Cmd, error) {
	for try := 0; ; try++ {
		var cmd *redis.Cmd
		err := s.batch.Load().do(ctx, s.rdb, func(p redis.Pipeliner) {
			if extra != nil {
				extra(p)
			}
			cmd = script.EvalSha(ctx, p, keys, args...)
		})
		if err != nil {
			return nil, err
		}
		if err := cmd.Err(); try == 0 && err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			if lerr := script.Load(ctx, s.rdb).Err(); lerr != nil {
				return nil, fmt.Errorf("load script: %w", lerr)
			}
			continue
		}
		return cmd, nil
	}
}

func sentKey(caseRef, intentID, channel string) string {
	return "case:{" + caseRef + "}:sent:" + intentID + ":" + channel
}

func intentKey(caseRef, intentID string) string { return "case:{" + caseRef + "}:intent:" + intentID }

func smsKey(sid string) string { return "sms:" + sid }

// smsKeyTTL is how long an SMS sid finds its intent (for its receipts).
const smsKeyTTL = 7 * 24 * time.Hour

// sent returns the audit record of an earlier accepted send, if any; a
// marker that does not decode is an error, not "not sent".
func (s *deliveryState) sent(ctx context.Context, in Intent, channel string) (*Result, error) {
	b, err := s.rdb.Get(ctx, sentKey(in.CaseRef, in.ID, channel)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sent-marker: %w", err)
	}
	r, err := decodeSent(in, channel, b)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// markSentScript writes the sent-marker and gives the in-flight claim
// back if ARGV[4] still holds it, in one step. The marker is the channel's
// "sent" state (states reads it there), so the intent hash, which keeps
// failures, receipts and claimed steps, is not created for an intent
// every channel of which got through: one key fewer per alert (issue 9).
// With ARGV[5] = 1 (WritePrevious) the state is also written to the hash,
// where the release before reads it.
var markSentScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[2], ARGV[2], 'sent')
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
if redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
return 1`)

// markSent records an accepted send and releases the claim owner holds.
// For SMS it also maps the provider's message sid to the intent, for
// delivery receipts.
func (s *deliveryState) markSent(ctx context.Context, in Intent, r Result, owner string) error {
	b, err := encodeSent(in, r.Channel, r, s.format)
	if err != nil {
		return err
	}
	var ib []byte
	if r.Channel == "sms" && r.ProviderID != "" {
		if ib, err = in.Encode(); err != nil {
			return err
		}
	}
	// The script goes by its hash (EVALSHA), not its text: loaded once
	// per server, on the first NOSCRIPT. Both commands are idempotent.
	var set *redis.StatusCmd
	extra := func(p redis.Pipeliner) {
		if ib != nil {
			set = p.Set(ctx, smsKey(r.ProviderID), ib, smsKeyTTL)
		}
	}
	cmd, err := s.evalBatched(ctx, markSentScript,
		[]string{sentKey(in.CaseRef, in.ID, r.Channel), intentKey(in.CaseRef, in.ID), sendingKey(in.CaseRef, in.ID, r.Channel)},
		[]any{b, r.Channel, s.ttl.Milliseconds(), owner, s.format == WritePrevious}, extra)
	if err == nil {
		err = cmd.Err()
	}
	if err == nil && set != nil {
		err = set.Err()
	}
	if err != nil {
		return fmt.Errorf("write sent-marker: %w", err)
	}
	return nil
}

// mapSID writes the sid → intent mapping of an accepted SMS again, unless
// it is there: markSent writes it beside the marker, as a command of its
// own that can fail (and, in a cluster, on another node) while the marker
// was written.
func (s *deliveryState) mapSID(ctx context.Context, in Intent, r Result) error {
	if r.Channel != sms.Name || r.ProviderID == "" {
		return nil
	}
	b, err := in.Encode()
	if err != nil {
		return err
	}
	if err := s.rdb.SetNX(ctx, smsKey(r.ProviderID), b, smsKeyTTL).Err(); err != nil {
		return fmt.Errorf("write sms sid: %w", err)
	}
	return nil
}

// markFailed records a channel's final failure and returns the states of
// all channels of the intent (see states).
func (s *deliveryState) markFailed(ctx context.Context, in Intent, channel string) (map[string]string, error) {
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, intentKey(in.CaseRef, in.ID), channel, stateFailed)
	pipe.Expire(ctx, intentKey(in.CaseRef, in.ID), s.ttl)
	read := s.readStates(ctx, pipe, in)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("record failure: %w", err)
	}
	return read(), nil
}

// states returns the channel states of an intent: the intent hash (a
// channel "failed", receipts, claimed steps) and "sent" for each channel
// with a sent-marker the hash says nothing about. The release before
// wrote "sent" into the hash, which still counts.
func (s *deliveryState) states(ctx context.Context, in Intent) (map[string]string, error) {
	pipe := s.rdb.Pipeline()
	read := s.readStates(ctx, pipe, in)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read intent state: %w", err)
	}
	return read(), nil
}

// readStates queues the reads of states on pipe (the keys share the
// case's hash slot) and returns what assembles them after Exec.
func (s *deliveryState) readStates(ctx context.Context, pipe redis.Pipeliner, in Intent) func() map[string]string {
	all := pipe.HGetAll(ctx, intentKey(in.CaseRef, in.ID))
	chans := in.planned()
	marked := make([]*redis.IntCmd, len(chans))
	for i, ch := range chans {
		marked[i] = pipe.Exists(ctx, sentKey(in.CaseRef, in.ID, ch))
	}
	return func() map[string]string {
		m := all.Val()
		if m == nil {
			m = map[string]string{}
		}
		for i, ch := range chans {
			if marked[i].Val() == 1 && m[ch] == "" {
				m[ch] = stateSent
			}
		}
		return m
	}
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

// What begin found for one intent and channel.
const (
	beganSent    = "sent"    // sent before: the marker holds the audit record
	beganFailed  = "failed"  // the channel failed for good before
	beganBusy    = "busy"    // another attempt holds the in-flight claim
	beganClaimed = "claimed" // this attempt holds the claim: send
)

// beginScript checks the sent-marker and the channel state and takes the
// in-flight claim in one atomic step, so an attempt that saw "not sent"
// can never send after another attempt recorded its send.
var beginScript = redis.NewScript(`
local m = redis.call('GET', KEYS[1])
if m then return {'sent', m} end
if redis.call('HGET', KEYS[2], ARGV[1]) == 'failed' then return {'failed', ''} end
local h = redis.call('GET', KEYS[3])
if h and h ~= ARGV[2] then return {'busy', tostring(redis.call('PTTL', KEYS[3]))} end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
return {'claimed', ''}`)

// begin decides what an attempt on one intent and channel does: with
// beganSent it returns the earlier audit record, with beganBusy how long
// the other claim has left; with beganClaimed owner holds the claim for
// ttl (renewed by its holder, released by markSent or release).
func (s *deliveryState) begin(ctx context.Context, in Intent, channel, owner string, ttl time.Duration) (string, *Result, time.Duration, error) {
	keys, args := beginArgs(in, channel, owner, ttl)
	cmd, err := s.evalBatched(ctx, beginScript, keys, args, nil)
	if err != nil {
		return "", nil, 0, fmt.Errorf("begin send: %w", err)
	}
	return beginReply(cmd, in, channel)
}

func beginArgs(in Intent, channel, owner string, ttl time.Duration) ([]string, []any) {
	return []string{sentKey(in.CaseRef, in.ID, channel), intentKey(in.CaseRef, in.ID), sendingKey(in.CaseRef, in.ID, channel)},
		[]any{channel, owner, ttl.Milliseconds()}
}

// beginReply reads what beginScript answered (see begin).
func beginReply(cmd *redis.Cmd, in Intent, channel string) (string, *Result, time.Duration, error) {
	res, err := cmd.StringSlice()
	if err != nil {
		return "", nil, 0, fmt.Errorf("begin send: %w", err)
	}
	if len(res) != 2 {
		return "", nil, 0, fmt.Errorf("begin send: unexpected reply %d", len(res))
	}
	switch res[0] {
	case beganSent:
		r, err := decodeSent(in, channel, []byte(res[1]))
		if err != nil {
			return "", nil, 0, fmt.Errorf("begin send: %w", err)
		}
		return beganSent, &r, 0, nil
	case beganBusy:
		left, _ := strconv.ParseInt(res[1], 10, 64)
		return beganBusy, nil, time.Duration(max(left, 0)) * time.Millisecond, nil
	}
	return res[0], nil, 0, nil
}

// ownedScript runs on a claim only while ARGV[1] holds it: DEL to give
// it back, PEXPIRE ARGV[2] to renew it.
var ownedScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then return redis.call('DEL', KEYS[1]) end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])`)

// release gives the claim back; if this fails the claim just expires.
func (s *deliveryState) release(ctx context.Context, in Intent, channel, owner string) {
	_ = ownedScript.Run(ctx, s.rdb, []string{sendingKey(in.CaseRef, in.ID, channel)}, owner, "").Err()
}

// renewClaims extends claims still held by their owners, in one round trip.
func (s *deliveryState) renewClaims(ctx context.Context, claims []heldClaim, ttl time.Duration) error {
	if err := s.owned(ctx, claims, ttl.Milliseconds()); err != nil {
		return fmt.Errorf("renew %d send claims: %w", len(claims), err)
	}
	return nil
}

// releaseClaims gives back claims still held by their owners, in one
// round trip.
func (s *deliveryState) releaseClaims(ctx context.Context, claims []heldClaim) error {
	if err := s.owned(ctx, claims, ""); err != nil {
		return fmt.Errorf("release %d send claims: %w", len(claims), err)
	}
	return nil
}

// owned runs ownedScript on each claim with arg (a TTL renews, "" gives
// back), in one round trip.
func (s *deliveryState) owned(ctx context.Context, claims []heldClaim, arg any) error {
	if len(claims) == 0 {
		return nil
	}
	calls := make([]scriptCall, len(claims))
	for i, c := range claims {
		calls[i] = scriptCall{keys: []string{sendingKey(c.caseRef, c.intentID, c.channel)}, args: []any{c.owner, arg}}
	}
	_, err := evalAll(ctx, s.rdb, ownedScript, calls)
	return err
}

// heldClaim names an in-flight claim and its owner.
type heldClaim struct{ caseRef, intentID, channel, owner string }
