package dispatcher

import (
	"context"
	"testing"
	"time"
)

// unconfirmedEnv runs the receipt check and the failure path directly on
// a deliverer with real Redis and Kafka (from the second independent
// review).
type unconfirmedEnv struct {
	t *testing.T
	d *Deliverer
}

func newUnconfirmedEnv(t *testing.T) unconfirmedEnv {
	e := newDeliverEnv(t)
	d := newDeliverer(t, e.decideEnv, e.prov)
	d.cfg.ReceiptTimeout = 5 * time.Minute // the check marks unconfirmed
	return unconfirmedEnv{t: t, d: d}
}

// check runs the due receipt check of in's SMS and returns its records.
func (u unconfirmedEnv) check(in Intent) []Result {
	u.t.Helper()
	q, err := newQueued(retryJob{Intent: in, Channel: "sms", Check: checkReceipt, SID: "SM-" + in.ID})
	if err != nil {
		u.t.Fatal(err)
	}
	f, err := u.d.checkReceipt(context.Background(), q)
	if err != nil {
		u.t.Fatal(err)
	}
	return f.results
}

// fail marks ch of in failed for good and runs what follows.
func (u unconfirmedEnv) fail(in Intent, ch string) []Result {
	u.t.Helper()
	states, err := u.d.state.markFailed(context.Background(), in, ch)
	if err != nil {
		u.t.Fatal(err)
	}
	rs, err := u.d.afterFailure(context.Background(), in, states)
	if err != nil {
		u.t.Fatal(err)
	}
	return rs
}

// sent records ch of in as accepted by its provider.
func (u unconfirmedEnv) sent(in Intent, ch string) {
	u.t.Helper()
	ctx := context.Background()
	if got, _, _, err := u.d.state.begin(ctx, in, ch, "test", time.Minute); err != nil || got != beganClaimed {
		u.t.Fatalf("begin %s: %q %v", ch, got, err)
	}
	if err := u.d.state.markSent(ctx, in, resultFor(in, ch, 1, OutcomeSent, time.Now()), "test"); err != nil {
		u.t.Fatal(err)
	}
}

// A critical intent by [sms, pager] with no fallback whose SMS ends
// unconfirmed and whose pager fails for good: the coordinating center is
// told once, whichever of the two came first (it was told only when the
// pager failed last). An SMS-only critical intent with no fallback is
// told about too; a non-critical one is only marked.
func TestUnconfirmedSMSNoticeDoesNotDependOnOrder(t *testing.T) {
	u := newUnconfirmedEnv(t)
	for _, order := range []string{"pager-first", "check-first"} {
		in := testIntent("uc-" + order)
		in.Critical, in.Channels, in.Fallback = true, []string{"sms", "pager"}, nil
		u.sent(in, "sms")
		var rs []Result
		if order == "pager-first" {
			rs = append(u.fail(in, "pager"), u.check(in)...)
		} else {
			rs = append(u.check(in), u.fail(in, "pager")...)
		}
		if n := count(rs, OutcomeNotice, ""); n != 1 {
			t.Errorf("%s: %d notices, want 1", order, n)
		}
	}
	for _, critical := range []bool{true, false} {
		in := testIntent("uc-sms-only-" + map[bool]string{true: "critical", false: "normal"}[critical])
		in.Critical, in.Channels, in.Fallback = critical, []string{"sms"}, nil
		u.sent(in, "sms")
		want := 0
		if critical {
			want = 1
		}
		if n := count(u.check(in), OutcomeNotice, ""); n != want {
			t.Errorf("sms only, critical %v: %d notices, want %d", critical, n, want)
		}
	}
}

// A critical intent by [email] with the SMS as its fallback: the email
// fails, the fallback SMS is accepted and never confirmed. The
// coordinating center is told, as when that SMS is reported undelivered
// (it used to be told nobody, with nothing left to run).
func TestUnconfirmedFallbackSMSTellsCoordinatingCenter(t *testing.T) {
	u := newUnconfirmedEnv(t)
	in := testIntent("uc-fallback-sms")
	in.Critical, in.Channels, in.Fallback = true, []string{"email"}, []string{"sms"}
	if rs := u.fail(in, "email"); count(rs, OutcomeFallback, "") != 1 {
		t.Fatalf("the email's failure did not fall back: %+v", rs)
	}
	u.sent(in, "sms")
	if n := count(u.check(in), OutcomeNotice, ""); n != 1 {
		t.Fatalf("%d notices after the fallback SMS went unconfirmed, want 1", n)
	}
}

// The same with a second fallback channel that fails after the SMS went
// unconfirmed: the failure path counts the unconfirmed SMS as failed too.
func TestUnconfirmedFallbackSMSThenFailedFallbackTellsCoordinatingCenter(t *testing.T) {
	u := newUnconfirmedEnv(t)
	in := testIntent("uc-fallback-sms-webhook")
	in.Critical, in.Channels, in.Fallback = true, []string{"email"}, []string{"sms", "webhook"}
	if rs := u.fail(in, "email"); count(rs, OutcomeFallback, "") != 1 {
		t.Fatalf("the email's failure did not fall back: %+v", rs)
	}
	u.sent(in, "sms")
	rs := u.check(in) // the webhook is still under way: no notice yet
	rs = append(rs, u.fail(in, "webhook")...)
	if n := count(rs, OutcomeNotice, ""); n != 1 {
		t.Fatalf("%d notices once the webhook failed too, want 1", n)
	}
}
