package dispatcher

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/channels/sms"
)

// checkReceipt is the retryJob.Check of a receipt check.
const checkReceipt = "receipt"

// Receipt reconciliation. When Twilio accepts an SMS, a check job is
// queued in the SMS lane's durable queue, due ReceiptTimeout after the
// acceptance (queued after the sent-marker; a crash in between re-runs the
// send job, which finds the marker and queues the check then). It lives in
// Redis like any delivery job, so a restart or a dead instance loses
// none. When it comes due:
//   - a final receipt (delivered, undelivered, failed, canceled) already
//     recorded for the intent: nothing (the receipt cancelled it);
//   - else the SMS is marked "unconfirmed" in the intent's delivery state
//     (field "unconfirmed") and an audit record with outcome
//     "unconfirmed" goes to the results topic; for a critical alert the
//     plan's fallback channels are queued, once per intent (the "fallback"
//     step shared with the send path and the undelivered receipt, so the
//     three never fall back twice). A non-critical SMS is only marked. No
//     notice to the coordinating center: an unconfirmed SMS is not known
//     to have failed.
//
// A receipt arriving after the deadline is still recorded as usual
// (receipts.go); an undelivered one then finds the fallback already
// claimed and queues nothing new.

// queueReceiptCheck queues the check of an accepted SMS (r is its sent
// audit record), due ReceiptTimeout after the acceptance. Idempotent: the
// job is the same for every call (ZADD NX).
func (d *Deliverer) queueReceiptCheck(ctx context.Context, in Intent, r Result) error {
	after := d.cfg.ReceiptTimeout
	if after <= 0 {
		after = d.cfg.ReceiptSweep // finish failed callbacks only
	}
	if after <= 0 || r.Channel != sms.Name || r.ProviderID == "" {
		return nil
	}
	j := retryJob{Intent: in, Channel: sms.Name, Check: checkReceipt, SID: r.ProviderID}
	if err := d.queue.add(ctx, j, r.At.Add(after)); err != nil {
		return fmt.Errorf("queue sms receipt check: %w", err)
	}
	return nil
}

// unconfirmedScript decides a due receipt check on the intent's hash
// (KEYS[1]) in one step: "received" when a final receipt was recorded
// (a field receipt:<sid>:<status> = ARGV[3], written by the status
// callback once it is handled), "pending", the field's name and its
// value ("pending:<error code>") when a callback began and did not finish (its handler failed and answered 500,
// which Twilio does not retry by default), "done" when another owner
// marked it, else it marks the SMS unconfirmed for ARGV[1] (or finds it
// marked for ARGV[1], a re-run after a crash) and answers "unconfirmed";
// with ARGV[4] = 0 (the receipt timeout off) it marks nothing and answers
// "done".
var unconfirmedScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'unconfirmed')
if v and v ~= ARGV[1] then return {'done', '', ''} end
if not v then
  local pending, value = '', ''
  local kv = redis.call('HGETALL', KEYS[1])
  for i = 1, #kv, 2 do
    if string.sub(kv[i], 1, 8) == 'receipt:' then
      if kv[i + 1] == ARGV[3] then return {'received', '', ''} end
      pending, value = kv[i], kv[i + 1]
    end
  end
  if pending ~= '' then return {'pending', pending, value} end
  if ARGV[4] == '0' then return {'done', '', ''} end
  redis.call('HSET', KEYS[1], 'unconfirmed', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return {'unconfirmed', '', ''}`)

// finishPendingReceipt handles again a status callback that began and
// failed (field "receipt:<sid>:<status>"), as the callback would have: its
// effects are idempotent. An error leaves the check due, to run again.
func (d *Deliverer) finishPendingReceipt(ctx context.Context, q queued, field, value string, l logrus.FieldLogger) (finished, error) {
	sid, status, ok := strings.Cut(strings.TrimPrefix(field, "receipt:"), ":")
	if !ok || sid == "" || status == "" {
		return finished{}, fmt.Errorf("sms receipt check: unreadable receipt field %q", field)
	}
	_, code, _ := strings.Cut(value, ":") // "pending:<error code>"
	l.WithField("status", status).Warn("sms receipt check: a status callback was not fully recorded; handling it now")
	if _, err := d.receiptFor(ctx, q.job.Intent, sms.StatusCallback{MessageSid: sid, MessageStatus: status, ErrorCode: code}); err != nil {
		return finished{}, fmt.Errorf("sms receipt check: finish the %s receipt: %w", status, err)
	}
	return finished{done: []queued{q}}, nil
}

// checkReceipt runs a due receipt check (see above).
func (d *Deliverer) checkReceipt(ctx context.Context, q queued) (finished, error) {
	in, sid := q.job.Intent, q.job.SID
	// A status parked early whose callback then failed (answered 500,
	// not retried by Twilio) after the send path looked: applied now,
	// before the verdict.
	if err := d.applyEarly(ctx, in, Result{Channel: sms.Name, ProviderID: sid}); err != nil {
		return finished{}, fmt.Errorf("sms receipt check: %w", err)
	}
	owner := "unconfirmed:" + sid
	reply, err := unconfirmedScript.Run(ctx, d.state.rdb, []string{intentKey(in.CaseRef, in.ID)},
		owner, strconv.FormatInt(d.state.ttl.Milliseconds(), 10), receiptDone, d.cfg.ReceiptTimeout > 0).StringSlice()
	if err == nil && len(reply) != 3 {
		err = fmt.Errorf("unexpected reply %q", reply)
	}
	if err != nil {
		return finished{}, fmt.Errorf("sms receipt check: %w", err)
	}
	verdict := reply[0]
	l := d.log.WithFields(logrus.Fields{"sid": sid, "intent_id": in.ID, "alert_id": in.AlertID, "case_ref": in.CaseRef,
		"contact_id": in.ContactID, "channel": sms.Name})
	if verdict == "pending" {
		return d.finishPendingReceipt(ctx, q, reply[1], reply[2], l)
	}
	if verdict != "unconfirmed" {
		l.WithField("verdict", verdict).Debug("sms receipt check: nothing to do")
		return finished{done: []queued{q}}, nil
	}
	now := d.now()
	r := resultFor(in, sms.Name, 0, OutcomeUnconfirmed, now)
	r.ProviderID, r.Error = sid, "no final delivery receipt within "+d.cfg.ReceiptTimeout.String()
	d.metrics.outcome(r)
	results := []Result{r}
	if !in.Critical || in.Kind == KindNotice {
		l.Warn("sms unconfirmed: no delivery receipt in time (not critical: marked only)")
		return finished{results: results, done: []queued{q}}, nil
	}
	more, err := d.fallBackUnconfirmed(ctx, in, owner, l)
	if err != nil {
		return finished{}, err
	}
	return finished{results: append(results, more...), done: []queued{q}}, nil
}

// noticeIfUnreached tells the coordinating center about a critical intent
// whose SMS is unconfirmed and has no fallback channel left to queue, when
// no channel of its plan got through (every other one failed, or is
// itself this unconfirmed SMS): what afterFailure does when a channel
// fails last, so the order of the two does not decide whether the center
// is told. claimStep makes it once per intent whichever path comes first.
func (d *Deliverer) noticeIfUnreached(ctx context.Context, in Intent, states map[string]string, owner string, l logrus.FieldLogger) ([]Result, error) {
	if !unreached(states, in) || !unreachedOn(states, in, in.Fallback) {
		l.Warn("sms unconfirmed: no delivery receipt in time, and no fallback channel left")
		return nil, nil
	}
	ok, err := d.state.claimStep(ctx, in, "notice", owner)
	if err != nil || !ok {
		return nil, err
	}
	l.Warn("sms unconfirmed and no other channel got through: telling the coordinating center")
	return d.notice(ctx, in)
}

// fallBackUnconfirmed queues the fallback channels of a critical intent
// whose SMS is unconfirmed, like an undelivered receipt does: queued
// before the step is claimed, so a failure between the two repeats at
// most an audit record, never loses the follow-up.
func (d *Deliverer) fallBackUnconfirmed(ctx context.Context, in Intent, owner string, l logrus.FieldLogger) ([]Result, error) {
	states, err := d.state.states(ctx, in)
	if err != nil {
		return nil, err
	}
	var jobs []retryJob
	for _, ch := range in.Fallback {
		if ch != sms.Name && states[ch] != stateFailed {
			jobs = append(jobs, retryJob{Intent: in, Channel: ch, Attempt: 1})
		}
	}
	if len(jobs) == 0 {
		return d.noticeIfUnreached(ctx, in, states, owner, l)
	}
	if err := d.queueFollowUps(ctx, jobs, d.now()); err != nil {
		return nil, err
	}
	ok, err := d.state.claimStep(ctx, in, "fallback", owner)
	if err != nil || !ok {
		return nil, err // fallen back already (send path or receipt): same jobs, queued once
	}
	l.WithField("fallback", in.Fallback).Warn("sms unconfirmed: no delivery receipt in time, falling back")
	return []Result{resultFor(in, "", 0, OutcomeFallback, d.now())}, nil
}
