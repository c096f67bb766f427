package dispatcher

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Suppressor holds a Redis window per suppression key so a flapping risk
// level pages once. The key's value is the alert id that took the window:
// the same alert asking again (a replayed batch) is let through, so a
// crash between taking the window and sending never loses the alert.
type Suppressor struct{ rdb redis.UniversalClient }

// NewSuppressor keeps windows in rdb.
func NewSuppressor(rdb redis.UniversalClient) *Suppressor { return &Suppressor{rdb: rdb} }

// SuppressRequest is one alert asking for its window.
type SuppressRequest struct {
	CaseID, Key, AlertID string
	Window               time.Duration
}

// Allow answers, per request, whether the alert may go (true) or is
// suppressed by another alert inside the window (false). One round trip.
func (s *Suppressor) Allow(ctx context.Context, reqs []SuppressRequest) ([]bool, error) {
	out := make([]bool, len(reqs))
	var calls []scriptCall
	var idx []int
	for i, r := range reqs {
		if r.Window <= 0 {
			out[i] = true
			continue
		}
		calls = append(calls, scriptCall{keys: []string{suppressKey(r.CaseID, r.Key)}, args: []any{r.AlertID, r.Window.Milliseconds()}})
		idx = append(idx, i)
	}
	if len(calls) == 0 {
		return out, nil
	}
	cmds, err := evalAll(ctx, s.rdb, suppressScript, calls)
	if err != nil {
		return nil, fmt.Errorf("suppression windows: %w", err)
	}
	for j, c := range cmds {
		holder, err := c.Text()
		if err != nil {
			return nil, fmt.Errorf("suppression window %s: %w", reqs[idx[j]].Key, err)
		}
		out[idx[j]] = holder == reqs[idx[j]].AlertID
	}
	return out, nil
}

// suppressScript takes the window for ARGV[1] unless another alert holds
// it, and returns the holder.
var suppressScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]`)

func suppressKey(caseID, key string) string { return "case:{" + caseID + "}:suppress:" + key }
