package dispatcher

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/event"
)

// Suppressor decides which alerts go.
//
// A non-critical alert takes a Redis window per suppression key, so a
// flapping risk level pages once. The key's value is the alert id that
// took the window: the same alert asking again (a replayed batch) is let
// through, so a crash between taking the window and sending never loses
// the alert.
//
// A critical alert is never held by a window. It is merged only into an
// open, unacknowledged escalation of the same case and rule at the same or
// a higher level, found in the case's merge index
// (case:{C}:crit, field "rule|alert" → level). An alert that goes and opens
// an escalation enters the index; the escalation leaves it when it is
// acknowledged or closed (EscalationStore.Save), and the whole index is
// dropped when the case's level falls or the case closes, so the next rise
// pages again. Each critical decision, and each drop, is remembered by
// alert (event) id, so a replayed batch decides exactly as the first time.
type Suppressor struct {
	rdb redis.UniversalClient
	// MemoTTL is how long a critical decision is remembered for replays
	// (default 30 days, as event ids).
	MemoTTL time.Duration
}

// NewSuppressor keeps windows in rdb.
func NewSuppressor(rdb redis.UniversalClient) *Suppressor { return &Suppressor{rdb: rdb} }

// SuppressRequest is one alert asking to go, or (Reset) the news that a
// case's level fell or the case closed.
type SuppressRequest struct {
	CaseID, Key, AlertID string
	Window               time.Duration
	// Critical alerts ignore Window; Rule and Level find their merge target.
	Critical bool
	Rule     string
	Level    event.Level
	// Escalates: the alert, if it goes, opens an escalation later critical
	// alerts may merge into.
	Escalates bool
	// Reset drops the case's merge index (only CaseID and EventID are read).
	Reset   bool
	EventID string
}

// Verdict is the decision about one request.
type Verdict struct {
	Send bool
	// MergedInto is the escalation (alert id) a critical alert was merged
	// into; empty when it goes or was suppressed by a window.
	MergedInto string
}

// Decide answers each request, in order, in one pipelined round trip.
func (s *Suppressor) Decide(ctx context.Context, reqs []SuppressRequest) ([]Verdict, error) {
	out := make([]Verdict, len(reqs))
	memo := s.MemoTTL
	if memo <= 0 {
		memo = 30 * 24 * time.Hour
	}
	var calls []scriptCall
	var idx []int
	for i, r := range reqs {
		switch {
		case r.Reset:
			calls = append(calls, scriptCall{keys: []string{critIndexKey(r.CaseID), critResetKey(r.CaseID, r.EventID)},
				args: []any{"reset", memo.Milliseconds()}})
		case r.Critical:
			esc := "0"
			if r.Escalates {
				esc = "1"
			}
			calls = append(calls, scriptCall{keys: []string{critIndexKey(r.CaseID), critMemoKey(r.CaseID, r.AlertID)},
				args: []any{"critical", memo.Milliseconds(), r.Rule, r.AlertID, int(r.Level), esc}})
		case r.Window > 0:
			calls = append(calls, scriptCall{keys: []string{suppressKey(r.CaseID, r.Key)}, args: []any{"window", r.Window.Milliseconds(), r.AlertID}})
		default:
			out[i].Send = true
			continue
		}
		idx = append(idx, i)
	}
	if len(calls) == 0 {
		return out, nil
	}
	cmds, err := evalAll(ctx, s.rdb, suppressScript, calls)
	if err != nil {
		return nil, fmt.Errorf("suppression: %w", err)
	}
	for j, c := range cmds {
		r := reqs[idx[j]]
		res, err := c.Text()
		if err != nil {
			return nil, fmt.Errorf("suppression of alert %s: %w", r.AlertID, err)
		}
		switch {
		case r.Reset:
		case r.Critical:
			if target, merged := strings.CutPrefix(res, "merge:"); merged {
				out[idx[j]] = Verdict{MergedInto: target}
			} else {
				out[idx[j]] = Verdict{Send: true}
			}
		default:
			out[idx[j]].Send = res == r.AlertID
		}
	}
	return out, nil
}

// suppressScript, by ARGV[1]:
//
//	window   KEYS[1] the window; ARGV[2] ms, ARGV[3] alert: takes the window
//	         unless another alert holds it, returns the holder.
//	critical KEYS[1] merge index, KEYS[2] memo; ARGV[2] memo ms, ARGV[3]
//	         rule, ARGV[4] alert, ARGV[5] level, ARGV[6] "1" if it opens an
//	         escalation: "merge:<alert>" into the highest-level entry of the
//	         rule at the same or a higher level, else "send" (entering the
//	         index when it escalates); a remembered decision is returned as is.
//	reset    KEYS[1] merge index, KEYS[2] memo: drops the index once.
var suppressScript = redis.NewScript(`
local mode = ARGV[1]
if mode == 'window' then
  local v = redis.call('GET', KEYS[1])
  if v then return v end
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
  return ARGV[3]
end
local m = redis.call('GET', KEYS[2])
if m then return m end
if mode == 'reset' then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
  return 'reset'
end
local prefix = ARGV[3] .. '|'
local level = tonumber(ARGV[5])
local best, bestLevel = nil, -1
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local f, lv = all[i], tonumber(all[i + 1])
  if string.sub(f, 1, #prefix) == prefix and lv >= level then
    if lv > bestLevel or (lv == bestLevel and f < best) then best, bestLevel = f, lv end
  end
end
local out = 'send'
if best then
  out = 'merge:' .. string.sub(best, #prefix + 1)
elseif ARGV[6] == '1' then
  redis.call('HSET', KEYS[1], prefix .. ARGV[4], level)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
redis.call('SET', KEYS[2], out, 'PX', ARGV[2])
return out`)

func suppressKey(caseID, key string) string { return "case:{" + caseID + "}:suppress:" + key }

// critIndexKey is a case's merge index of open, unacknowledged critical
// escalations: field critIndexField → level.
func critIndexKey(caseID string) string { return "case:{" + caseID + "}:crit" }

func critIndexField(rule, alertID string) string { return rule + "|" + alertID }

func critMemoKey(caseID, alertID string) string {
	return "case:{" + caseID + "}:crit-decided:" + alertID
}

func critResetKey(caseID, eventID string) string {
	return "case:{" + caseID + "}:crit-reset:" + eventID
}
