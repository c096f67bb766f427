package dispatcher

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/channels/sms"
	"github.com/viogen-alerts/dispatcher/templates"
)

// faultHook makes chosen Redis commands fail while armed, as a Redis
// timeout or failover would.
type faultHook struct {
	// cmd fails single commands whose name it returns true for.
	cmd func(redis.Cmder) bool
	// pipe fails whole pipelines it returns true for.
	pipe func([]redis.Cmder) bool
}

var errInjected = errors.New("injected redis failure")

func (h faultHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h faultHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, c redis.Cmder) error {
		if h.cmd != nil && h.cmd(c) {
			c.SetErr(errInjected)
			return errInjected
		}
		return next(ctx, c)
	}
}

func (h faultHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cs []redis.Cmder) error {
		if h.pipe != nil && h.pipe(cs) {
			for _, c := range cs {
				c.SetErr(errInjected)
			}
			return errInjected
		}
		return next(ctx, cs)
	}
}

// faultyDeliverer is newDeliverer on its own Redis client (same server)
// carrying hook.
func faultyDeliverer(t *testing.T, e *deliverEnv, hook faultHook) *Deliverer {
	t.Helper()
	base, ok := e.store.rdb.(*redis.Client)
	if !ok {
		t.Fatalf("store client is %T", e.store.rdb)
	}
	rdb := redis.NewClient(&redis.Options{Addr: base.Options().Addr})
	rdb.AddHook(hook)
	t.Cleanup(func() { _ = rdb.Close() })
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	return NewDeliverer(DeliverConfig{Brokers: e.brokers, Retry: Backoff{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond},
		Poll: 20 * time.Millisecond, Lease: 2 * time.Second}, DeliverDeps{
		Rules: e.d.Engine.Config(), Templates: tmpl, Channels: e.prov.chans,
		Directory: ConfigDirectory{Cfg: e.d.Engine.Config(), Secret: func(string) string { return testKey }},
		Redis:     rdb, Writer: e.d.Writer, Log: quietLog(),
	})
}

// sentSID waits for the sent record of an intent's SMS and returns its sid.
func sentSID(t *testing.T, brokers []string, match func(Result) bool) string {
	t.Helper()
	var sid string
	readResults(t, brokers, func(rs []Result) bool {
		for _, r := range rs {
			if r.Outcome == OutcomeSent && r.Channel == "sms" && r.ProviderID != "" && match(r) {
				sid = r.ProviderID
				return true
			}
		}
		return false
	})
	return sid
}

// Was a bug (receipts.go afterUndelivered; fixed by resendNotice): a coordinating-center
// notice whose SMS Twilio accepted but could not deliver to the handset
// (status "undelivered") is neither retried nor declared UNDELIVERABLE.
// afterUndelivered lacks the send path's "a notice never triggers a
// notice" guard: for a notice it claims the notice step and calls
// notice() on the notice itself, which re-writes notices whose ids
// (NoticeID(alert, contact)) already carry sent-markers, so nothing is
// sent; the notices metric goes up and the log says "coordinating center
// notified". The center's on-call contact (SMS only in the example
// config) never hears of the unreachable target, and nothing says so
// loudly: the last resort fails silently (issue 8, item 8).
func TestReviewUndeliveredNoticeSMSIsNeitherRetriedNorUndeliverable(t *testing.T) {
	e := newDeliverEnv(t)
	rejectGC(e.prov)
	d := newDeliverer(t, e.decideEnv, e.prov)
	runDeliverer(t, d)
	writeIntents(t, e.d.Writer, unreachableAlert("a-review-notice")...)
	const onCall = "+34600000001" // ses-viogen-guardia: SMS is its only notice channel
	sid := sentSID(t, e.brokers, func(r Result) bool { return r.Kind == KindNotice && r.ContactID == "ses-viogen-guardia" })
	settled(t, d, e.brokers)
	noticesBefore := counterValue(t, d.metrics.notices)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := d.receipt(ctx, sms.StatusCallback{MessageSid: sid, MessageStatus: "undelivered", ErrorCode: "30003"}); err != nil {
		t.Fatal(err)
	}
	// Retries in this configuration come within 200 ms, but a loaded
	// machine may take seconds to run the queued resend.
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if smsTo(e.prov, onCall) >= 2 || counterValue(t, d.metrics.undeliverable) > 0 {
			return // retried, or declared undeliverable
		}
		time.Sleep(50 * time.Millisecond)
	}
	settled(t, d, e.brokers)
	t.Errorf("undelivered notice SMS: %d SMS to the center's on-call number, undeliverable=%v, queue=%d, notices metric %v -> %v "+
		"(the notice 'notified' itself): the last resort was dropped silently",
		smsTo(e.prov, onCall), counterValue(t, d.metrics.undeliverable), queueSize(t, d),
		noticesBefore, counterValue(t, d.metrics.notices))
}

// Was a bug (receipts.go; fixed: follow-up jobs are queued before the step is claimed,
// riding out a short Redis blip in the handler): the fallback of an undelivered
// critical SMS is not durable. The receipt claims the intent's "fallback"
// step for its own owner ("receipt:<sid>:<status>") before the fallback
// jobs are queued; if queueing fails (a Redis blip, or the process dies
// between claimStep and queue.add), the handler answers 500 and relies on
// Twilio calling back again. Twilio does not retry status callbacks by
// default, and nothing else can redo the step: the send path's
// claimStep(owner "send:<id>") is refused because the receipt holds it,
// and no job carries the plan. The fallback e-mail is never sent.
func TestReviewReceiptFallbackLostOnTransientRedisError(t *testing.T) {
	e := newDeliverEnv(t)
	var failZAdd atomic.Bool
	d := faultyDeliverer(t, e, faultHook{cmd: func(c redis.Cmder) bool { return c.Name() == "zadd" && failZAdd.CompareAndSwap(true, false) }})
	runDeliverer(t, d)
	in := intentFor("review-rcpt-1", "gc-cr-sala", "sms", true)
	in.Fallback = []string{"email"}
	writeIntents(t, e.d.Writer, in)
	sid := sentSID(t, e.brokers, func(r Result) bool { return r.IntentID == in.ID })
	eventually(t, "the sms job to leave the queue", func() bool { return queueSize(t, d) == 0 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	failZAdd.Store(true) // the next ZADD fails: a blip
	if _, err := d.receipt(ctx, sms.StatusCallback{MessageSid: sid, MessageStatus: "undelivered", ErrorCode: "30003"}); err != nil {
		t.Fatalf("a one-command Redis blip failed the receipt: %v", err)
	}
	if failZAdd.Load() {
		t.Fatal("the fault was never injected")
	}
	// Twilio does not call back again; the stage keeps running (and on a
	// loaded machine may take seconds to run the queued fallback).
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if emailsTo(e.prov, "sala.gc-cr@example.org") > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, _ := d.state.states(context.Background(), in)
	t.Errorf("critical sms undelivered, fallback email never sent (queue %d, intent state %v): the step is claimed by the "+
		"failed receipt and no durable job carries it", queueSize(t, d), st)
}

// Was a bug (deliver_send.go; fixed by recordSent retrying under the held claim): one
// transient Redis error on the sent-marker write after the provider
// accepted an SMS makes the stage send it again. attempt returns the
// error, run gives the job back, the claim (never released, no longer
// renewed) runs out, and the next attempt finds neither a marker nor a
// claim and sends a second SMS (Twilio has no idempotency key). The
// architecture accepts a duplicate only when the process died before the
// marker was written; a live process could retry markSent instead.
func TestReviewMarkSentBlipResendsAcceptedSMS(t *testing.T) {
	e := newDeliverEnv(t)
	var armed atomic.Bool
	armed.Store(true)
	d := faultyDeliverer(t, e, faultHook{pipe: func(cs []redis.Cmder) bool {
		for _, c := range cs {
			args := c.Args()
			if (c.Name() == "eval" || c.Name() == "evalsha") && len(args) > 1 {
				if src, _ := args[1].(string); strings.Contains(src, "'sent')") || c.Name() == "evalsha" && containsSHA(args[1], markSentScript) {
					return armed.CompareAndSwap(true, false)
				}
			}
		}
		return false
	}})
	runDeliverer(t, d)
	in := intentFor("review-marker-1", "gc-cr-sala", "sms", false)
	writeIntents(t, e.d.Writer, in)
	readResults(t, e.brokers, func(rs []Result) bool {
		for _, r := range rs {
			if r.Outcome == OutcomeSent && r.IntentID == in.ID {
				return true
			}
		}
		return false
	})
	eventually(t, "the job to leave the queue", func() bool { return queueSize(t, d) == 0 })
	if armed.Load() {
		t.Fatal("the fault was never injected")
	}
	if n := smsTo(e.prov, "+34600000012"); n != 1 {
		t.Errorf("provider accepted %d SMS after one failed sent-marker write in a live process, want 1", n)
	}
}

func containsSHA(arg any, s *redis.Script) bool {
	sha, _ := arg.(string)
	return sha == s.Hash()
}
