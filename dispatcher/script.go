package dispatcher

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// scriptCall is one invocation of a Lua script.
type scriptCall struct {
	keys []string
	args []any
}

// evalAll runs script once per call in one pipelined round trip, in order.
// A server that lost its script cache (restart, failover) answers NOSCRIPT:
// the script is loaded and the whole pipeline sent again, which is safe
// because every script of ours is idempotent.
func evalAll(ctx context.Context, rdb redis.UniversalClient, script *redis.Script, calls []scriptCall) ([]*redis.Cmd, error) {
	cmds, err := evalPipe(ctx, rdb, script, calls)
	if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		if lerr := script.Load(ctx, rdb).Err(); lerr != nil {
			return nil, fmt.Errorf("load script: %w", lerr)
		}
		cmds, err = evalPipe(ctx, rdb, script, calls)
	}
	return cmds, err
}

func evalPipe(ctx context.Context, rdb redis.UniversalClient, script *redis.Script, calls []scriptCall) ([]*redis.Cmd, error) {
	pipe := rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(calls))
	for i, c := range calls {
		cmds[i] = script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, err := pipe.Exec(ctx)
	if err == redis.Nil {
		err = nil // a script returned nil; callers read each Cmd
	}
	return cmds, err
}
