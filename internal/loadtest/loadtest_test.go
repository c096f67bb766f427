package loadtest

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	MaybeBroker() // the broker child is this test binary run again
	os.Exit(m.Run())
}

// TestLoadCommandCountsEveryAlertOnce runs the load command at a tiny size
// in each mode against the real binary, Redis and broker: every event's
// alert reaches the receiver exactly once, signed. Correctness only: no
// timing is asserted.
func TestLoadCommandCountsEveryAlertOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the dispatcher binary: skipped with -short")
	}
	wd, _ := os.Getwd()
	root, err := moduleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := buildDispatcher(root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []Config{
		{Mode: ModeBurst, Events: 200},
		{Mode: ModeSteady, Events: 100, Rate: 200},
		{Mode: ModeTimers, Events: 100, TimerLead: 4 * time.Second},
		{Mode: ModeEscalations, Events: 100},
		{Mode: ModeDecide, Events: 100},
	} {
		t.Run(tc.Mode, func(t *testing.T) {
			tc.Dispatcher, tc.Dir, tc.Idle, tc.Settle = bin, filepath.Join(t.TempDir(), "run"), 60*time.Second, time.Second
			res, err := Run(context.Background(), tc)
			if err != nil {
				t.Fatal(err)
			}
			if res.Delivered != int64(tc.Events) || res.Lost != 0 || res.Dups != 0 {
				t.Errorf("delivered %d of %d, lost %d, duplicates %d", res.Delivered, tc.Events, res.Lost, res.Dups)
			}
			if res.Unexpected != 0 || res.Fallback != 0 || res.BadSig != 0 {
				t.Errorf("unexpected %d, fallback %d, bad signatures %d", res.Unexpected, res.Fallback, res.BadSig)
			}
			if tc.Mode == ModeDecide {
				if res.Latency.N != tc.Events {
					t.Errorf("latency of %d intents, want %d", res.Latency.N, tc.Events)
				}
				return // nothing is delivered: no receiver figures
			}
			if res.Latency.N != tc.Events {
				t.Errorf("latency of %d alerts, want %d", res.Latency.N, tc.Events)
			}
			if res.CPU["dispatcher"] <= 0 || res.PeakRSS["redis-server"] <= 0 {
				t.Errorf("process figures missing: cpu %v, rss %v", res.CPU, res.PeakRSS)
			}
			switch tc.Mode {
			case ModeTimers:
				if tf := res.TimerFiring; tf.Fired != tc.Events || tf.LateSetup != 0 {
					t.Errorf("timers fired %d of %d (late setup %d)", tf.Fired, tc.Events, tf.LateSetup)
				}
			case ModeEscalations:
				if e := res.Escalations; e.Open != int64(tc.Events) || e.RedisUsedAfter <= e.RedisUsedBefore {
					t.Errorf("escalations open %d of %d, redis memory %d -> %d", e.Open, tc.Events, e.RedisUsedBefore, e.RedisUsedAfter)
				}
			}
		})
	}
}

func TestKeyClasses(t *testing.T) {
	for key, want := range map[string]string{
		"case:{C-LTa1b2c30000012}:esc:0123456789abcdef":                      "case:{C}:esc:<id>",
		"case:{C-LTa1b2c30000012}:seen:lt-a1b2c3-0000012":                    "case:{C}:seen:<event>",
		"case:{C-LTa1b2c30000012}:seen:a1b2c300-0000-400c-8054-00009e3779b1": "case:{C}:seen:<event>",
		"{timers:escalation:07}":                                             "{timers:escalation:NN}",
		"ackcode:K7P2Q":                                                      "ackcode:<code>",
	} {
		if got := classOf(key); got != want {
			t.Errorf("classOf(%q) = %q, want %q", key, got, want)
		}
	}
}

// --uuid-ids gives every event a distinct id of 36 characters shaped as a
// UUID, within the event contract's id characters.
func TestUUIDEventIDs(t *testing.T) {
	shape := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$`)
	const n = 1 << 17
	p := newPlan(ModeEscalations, "a1b2c3", n, nil, true)
	seen := make(map[string]bool, n)
	for _, i := range []int{0, 1, 4095, 4096, 65535, 65536, n - 1} {
		if id := p.events[i].ID; !shape.MatchString(id) {
			t.Fatalf("event %d: id %q is not shaped as a UUID", i, id)
		}
	}
	for _, e := range p.events {
		if seen[e.ID] {
			t.Fatalf("id %s given twice", e.ID)
		}
		seen[e.ID] = true
	}
}
