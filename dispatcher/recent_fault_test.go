package dispatcher

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// failCmdHook fails, inside pipelines, every command name on key (any
// key when key is ""), after Redis ran it (a node that times out, a lost
// reply), and returns the first error, as go-redis does.
type failCmdHook struct{ name, key string }

func (h failCmdHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h failCmdHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h failCmdHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		_ = next(ctx, cmds)
		for _, c := range cmds {
			if a := c.Args(); len(a) > 1 && c.Name() == h.name && (h.key == "" || a[1] == h.key) {
				c.SetErr(errors.New("i/o timeout"))
			}
		}
		for _, c := range cmds {
			if c.Err() != nil {
				return c.Err()
			}
		}
		return nil
	}
}

// The console's history (Recent) and open list (Open) read every shard
// of their sets in one pipeline: one shard failing fails the list, never
// a shorter list that looks complete.
func TestRecentAndOpenFailWithAShard(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	s := NewEscalationStore(rdb, time.Hour)
	refs := saveEscalations(t, s, 1, 3)
	ctx := context.Background()
	since := time.Now().Add(-RecentWindow + time.Hour)
	if got, err := s.Recent(ctx, since, 100); err != nil || len(got) != 3 {
		t.Fatalf("recent: %d (%v), want 3", len(got), err)
	}
	rdb.AddHook(failCmdHook{name: "zrangebyscore", key: keyEscOpen.key(refs[1])})
	if got, err := s.Recent(ctx, since, 100); err == nil {
		t.Fatalf("recent with a shard failing: %d escalations, no error", len(got))
	}
	if got, err := s.Open(ctx, 100); err == nil {
		t.Fatalf("open with a shard failing: %d escalations, no error", len(got))
	}
}
