package dispatcher

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// pipeGate counts pipelines of scripts and holds the first one until released.
type pipeGate struct {
	pipelines, cmds atomic.Int64
	first           chan struct{} // closed when the first pipeline arrived
	release         chan struct{}
	once            sync.Once
}

func (g *pipeGate) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (g *pipeGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (g *pipeGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || cmds[0].Name() != "evalsha" {
			return next(ctx, cmds) // a connection's set-up (HELLO)
		}
		if g.pipelines.Add(1) == 1 {
			g.once.Do(func() { close(g.first) })
			<-g.release
		}
		g.cmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// runBatcher gives a delivery state a batcher, as a running deliver
// stage does; stop takes it away, as the stage does when it returns.
func runBatcher(rdb redis.UniversalClient) (*deliveryState, context.Context, func()) {
	s := &deliveryState{rdb: rdb, ttl: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	b := newPipeBatcher(rdb)
	s.batch.Store(b)
	return s, ctx, func() { cancel(); s.batch.CompareAndSwap(b, nil) }
}

// With Redis gone, a batched call answers with the error (the job then
// runs again), and the batcher goes on: calls after Redis is back work.
func TestBatchedCallFailsWhileRedisIsDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	rdb := srv.Client(t)
	s, ctx, stop := runBatcher(rdb)
	defer stop()
	srv.Stop()
	errc := make(chan error, 1)
	go func() { _, _, _, err := s.begin(ctx, testIntent("down-1"), "sms", "A", time.Minute); errc <- err }()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("begin with Redis stopped reported no error")
		}
	case <-time.After(waitLimit):
		t.Fatal("begin with Redis stopped never returned")
	}
	srv.Restart(t)
	if st, _, _, err := s.begin(ctx, testIntent("down-1"), "sms", "A", time.Minute); err != nil || st != beganClaimed {
		t.Fatalf("begin after Redis came back: %q %v", st, err)
	}
}

// goroutinesIn counts goroutines in state (e.g. "select") whose stack
// holds fn.
func goroutinesIn(state, fn string) int {
	buf := make([]byte, 1<<22)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "["+state) && strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// While one round trip is on the wire, the calls of other workers gather
// and go out together in the next one, and each reads its own reply: the
// begin of every intent claims it, and a second owner finds it busy.
func TestBatchedCallsShareOneRoundTrip(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	// Loaded first, so no call meets NOSCRIPT and goes again on its own.
	if err := beginScript.Load(context.Background(), rdb).Err(); err != nil {
		t.Fatal(err)
	}
	gate := &pipeGate{first: make(chan struct{}), release: make(chan struct{})}
	rdb.AddHook(gate)
	s, ctx, stop := runBatcher(rdb)
	defer stop()

	const n = 40
	states := make([]string, n+1)
	var wg sync.WaitGroup
	begin := func(i int, owner string) {
		defer wg.Done()
		st, _, _, err := s.begin(ctx, testIntent(fmt.Sprintf("batch-%d", i%n)), "webhook", owner, time.Minute)
		if err != nil {
			t.Errorf("begin %d: %v", i, err)
		}
		states[i] = st
	}
	wg.Add(1)
	go begin(0, "A") // its round trip is held at the gate
	<-gate.first
	for i := 1; i <= n; i++ {
		wg.Add(1)
		owner := "A"
		if i == n {
			owner = "B" // the same intent as call 0, another owner
		}
		go begin(i, owner)
	}
	wctx, wcancel := context.WithTimeout(ctx, waitLimit)
	defer wcancel()
	// Every other call waits to be handed in.
	var release sync.Once
	defer release.Do(func() { close(gate.release) })
	waitFor(t, wctx, func() bool { return goroutinesIn("select", "(*pipeBatcher).do(") == n })
	release.Do(func() { close(gate.release) })
	wg.Wait()
	if p := gate.pipelines.Load(); p != 2 {
		t.Fatalf("%d round trips for %d calls, want 2 (the held one, then all the others)", p, n+1)
	}
	for i := 0; i < n; i++ {
		if states[i] != beganClaimed {
			t.Fatalf("call %d: %q, want claimed", i, states[i])
		}
	}
	if states[n] != beganBusy {
		t.Fatalf("another owner's begin of a claimed intent: %q, want busy", states[n])
	}
}

// Once the stage stopped and took its batcher away, calls go direct: no
// caller is left waiting.
func TestBatcherStoppedCallsGoDirect(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	s, _, stop := runBatcher(rdb)
	in := testIntent("stop-1")
	if st, _, _, err := s.begin(context.Background(), in, "sms", "A", time.Minute); err != nil || st != beganClaimed {
		t.Fatalf("begin while running: %q %v", st, err)
	}
	stop()
	r := resultFor(in, "sms", 1, OutcomeSent, time.Now())
	r.ProviderID = "SM-stop-1"
	errc := make(chan error, 1)
	go func() { errc <- s.markSent(context.Background(), in, r, "A") }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLimit):
		t.Fatal("markSent after the batcher stopped never returned")
	}
	if st, prev, _, _ := s.begin(context.Background(), in, "sms", "B", time.Minute); st != beganSent || prev.ProviderID != "SM-stop-1" {
		t.Fatalf("after the direct markSent: %q %+v", st, prev)
	}
	if sid := rdb.Exists(context.Background(), smsKey("SM-stop-1")).Val(); sid != 1 {
		t.Fatal("the SMS sid was not mapped to its intent")
	}
}

// A server that lost its scripts (restart, failover) answers NOSCRIPT to
// a batched call: the script is loaded and the call sent again.
func TestBatchedCallSurvivesAScriptFlush(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	s, ctx, stop := runBatcher(rdb)
	defer stop()
	in := testIntent("flush-1")
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if st, _, _, err := s.begin(ctx, in, "sms", "A", time.Minute); err != nil || st != beganClaimed {
		t.Fatalf("begin after SCRIPT FLUSH: %q %v", st, err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r := resultFor(in, "sms", 1, OutcomeSent, time.Now())
	if err := s.markSent(ctx, in, r, "A"); err != nil {
		t.Fatalf("markSent after SCRIPT FLUSH: %v", err)
	}
	if st, _, _, _ := s.begin(ctx, in, "sms", "B", time.Minute); st != beganSent {
		t.Fatalf("after markSent: %q, want sent", st)
	}
}

// stackHook records whether the pipelines of scripts ran on a goroutine
// whose stack holds want.
type stackHook struct {
	want       string
	on, others atomic.Int64
}

func (h *stackHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *stackHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *stackHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "evalsha" {
			buf := make([]byte, 1<<16)
			if strings.Contains(string(buf[:runtime.Stack(buf, false)]), h.want) {
				h.on.Add(1)
			} else {
				h.others.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}

// A call that comes alone makes its round trip itself, on its own
// goroutine: no hand-over to another goroutine and back on a lone
// alert's path.
func TestBatchedCallAloneMakesItsOwnRoundTrip(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	if err := beginScript.Load(context.Background(), rdb).Err(); err != nil {
		t.Fatal(err)
	}
	if err := markSentScript.Load(context.Background(), rdb).Err(); err != nil {
		t.Fatal(err) // loaded first: no call meets NOSCRIPT and goes again
	}
	hook := &stackHook{want: "TestBatchedCallAloneMakesItsOwnRoundTrip"}
	rdb.AddHook(hook)
	s, ctx, stop := runBatcher(rdb)
	defer stop()
	for i := range 3 {
		in := testIntent(fmt.Sprintf("lone-%d", i))
		if st, _, _, err := s.begin(ctx, in, "sms", "A", time.Minute); err != nil || st != beganClaimed {
			t.Fatalf("begin %d: %q %v", i, st, err)
		}
		if err := s.markSent(ctx, in, resultFor(in, "sms", 1, OutcomeSent, time.Now()), "A"); err != nil {
			t.Fatal(err)
		}
	}
	if on, others := hook.on.Load(), hook.others.Load(); on != 6 || others != 0 {
		t.Fatalf("round trips on the caller's goroutine %d, elsewhere %d; want 6 and 0", on, others)
	}
}

// BenchmarkBatchedBegin: many workers beginning and marking sends at
// once, as in a burst; reports round trips per call.
func BenchmarkBatchedBegin(b *testing.B) {
	rdb := testenv.StartRedis(b).Client(b)
	for _, sc := range []*redis.Script{beginScript, markSentScript} {
		if err := sc.Load(context.Background(), rdb).Err(); err != nil {
			b.Fatal(err)
		}
	}
	gate := &pipeGate{first: make(chan struct{}), release: make(chan struct{})}
	close(gate.release)
	rdb.AddHook(gate)
	s, ctx, stop := runBatcher(rdb)
	defer stop()
	var seq atomic.Int64
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			in := testIntent(fmt.Sprint("bench-", seq.Add(1)))
			if _, _, _, err := s.begin(ctx, in, "sms", "A", time.Minute); err != nil {
				b.Error(err)
				return
			}
			if err := s.markSent(ctx, in, resultFor(in, "sms", 1, OutcomeSent, time.Now()), "A"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(gate.pipelines.Load())/float64(2*b.N), "roundtrips/call")
}
