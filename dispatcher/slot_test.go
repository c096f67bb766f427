package dispatcher

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// keySlot is Redis Cluster's hash slot of a key: CRC16 (XMODEM) of the
// key, or of its hash tag (the part between the first '{' and the next
// '}', when not empty), modulo 16384.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

func TestKeySlot(t *testing.T) {
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
	for key, want := range map[string]int{"123456789": 12739 % 16384, "foo": 12182, "{user1000}.following": keySlot("user1000"),
		"foo{}{bar}": keySlot("foo{}{bar}"), "case:{C-1}:esc:A": keySlot("C-1")} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
	if keySlot("foo{}{bar}") == keySlot("bar") {
		t.Error("an empty first tag must hash the whole key")
	}
}

// slotGuard fails t when a Lua script or a MULTI block of rdb's commands
// touches keys of more than one hash slot: Redis Cluster refuses those
// (CROSSSLOT). Plain pipelines may span slots: go-redis splits them.
type slotGuard struct {
	t  *testing.T
	mu sync.Mutex
	n  int // scripts and transactions checked
}

func guardSlots(t *testing.T, rdb *redis.Client) *slotGuard {
	g := &slotGuard{t: t}
	rdb.AddHook(g)
	return g
}

func (g *slotGuard) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *slotGuard) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		g.check([]redis.Cmder{cmd}, false)
		return next(ctx, cmd)
	}
}

func (g *slotGuard) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		var tx []redis.Cmder
		in := false
		for _, c := range cmds {
			switch c.Name() {
			case "multi":
				in, tx = true, nil
			case "exec":
				g.check(tx, true)
				in = false
			default:
				if in {
					tx = append(tx, c)
				} else {
					g.check([]redis.Cmder{c}, false)
				}
			}
		}
		return next(ctx, cmds)
	}
}

// check looks at the keys of a transaction, or of each script call.
func (g *slotGuard) check(cmds []redis.Cmder, tx bool) {
	var keys []string
	for _, c := range cmds {
		args := c.Args()
		switch c.Name() {
		case "eval", "evalsha":
			n, _ := strconv.Atoi(toString(args[2]))
			for _, k := range args[3 : 3+n] {
				keys = append(keys, toString(k))
			}
			if !tx {
				g.verify(keys, "script")
				keys = nil
			}
		default:
			if tx && len(args) > 1 {
				keys = append(keys, toString(args[1]))
			}
		}
	}
	if tx {
		g.verify(keys, "MULTI")
	}
}

func (g *slotGuard) verify(keys []string, what string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n++
	for _, k := range keys[min(1, len(keys)):] {
		if keySlot(k) != keySlot(keys[0]) {
			g.t.Errorf("%s spans hash slots: %q", what, keys)
			return
		}
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}

// TestSlotSafeLadder runs case events, escalations (open, climb, ack-code
// allocation, close) and timers through a client that fails the test on
// any script or transaction spanning hash slots.
func TestSlotSafeLadder(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	g := guardSlots(t, rdb)
	clock := newFakeNow(time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC))
	p := startPipelineOn(t, rdb, clock.Now)
	p.publish(t, ev("s1", event.CaseOpened, "C-SL1", 1, event.Medio), ev("s2", event.RiskAssessed, "C-SL1", 2, event.Extremo))
	isLadder := func(in Intent) bool { return in.CaseRef == "C-SL1" && in.Rule == "risk-rises-to-extremo" }
	p.intents.waitFor(t, "step 0", isLadder)
	e := waitEscalation(t, p, "C-SL1")
	for _, sr := range [][2]int{{0, 1}, {1, 0}, {2, 0}} {
		clock.Add(31 * time.Minute)
		fireAll(t, p.timers)
		p.intents.waitFor(t, "next step", func(in Intent) bool {
			return isLadder(in) && in.Kind == KindAlert && in.Step == sr[0] && in.Round == sr[1]
		})
		p.waitProcessed(t) // the step's intents are written before its record (and next timer) is saved
	}
	clock.Add(31 * time.Minute)
	fireAll(t, p.timers)
	p.intents.waitFor(t, "unacknowledged notice", func(in Intent) bool { return isLadder(in) && in.Template == "escalation_unacked" })
	waitState(t, p, e, EscClosed)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n < 10 {
		t.Errorf("only %d scripts and transactions checked", g.n)
	}
}
