package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/channels/sms"
)

// receiptTimeout bounds the Redis and Kafka work of one status callback;
// Twilio gives up on a webhook after about 15 s.
const receiptTimeout = 10 * time.Second

// StatusHandler serves Twilio's SMS status callbacks (POST
// /v1/twilio/status). The X-Twilio-Signature is checked against publicURL,
// the exact callback URL configured at Twilio (never r.URL: behind a proxy
// the two differ); an unsigned or mis-signed request gets 403.
//
// Only final statuses are recorded, once per message sid and status:
//   - delivered: a Result with OutcomeDelivered.
//   - undelivered, failed (and canceled): a Result with OutcomeUndeliv and
//     Twilio's ErrorCode; the SMS channel of the intent is marked failed;
//     then, when the intent is critical or every planned channel has now
//     failed (the send path's rule), the plan's fallback channels are
//     queued as retry jobs due now, sent by the retrier, once per intent
//     (the send path's "fallback" step, so the two never both fire). An
//     intent without fallback channels left tells the coordinating center
//     (the "notice" step, once).
//
// A final status recorded here (its receipt:<sid>:<status> field in the
// intent's state) also answers the SMS's pending receipt check
// (receipt_check.go): the check then does nothing. One arriving after the
// check marked the SMS unconfirmed is recorded all the same.
//
// Intermediate statuses (queued, sending, sent, ...) and "read" get 204
// and nothing is recorded. A final status for an unknown sid gets 200
// (Twilio must not retry it forever) and is kept for an hour: Twilio can
// call back before it answers the send, and the send path applies it once
// it has recorded the sid (receipt_early.go). A Redis or Kafka failure
// gets 500, so Twilio may retry; a retried callback redoes only what did
// not finish.
//
// Twilio's form carries To and From: neither is logged nor echoed.
func (d *Deliverer) StatusHandler(authToken, publicURL string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		form, err := sms.ValidateRequest(authToken, publicURL, w, r)
		if errors.Is(err, sms.ErrBadSignature) {
			d.log.WithField("remote", r.RemoteAddr).Warn("twilio status callback with a bad or missing signature refused")
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		if err != nil {
			// The error may quote part of the body: not logged.
			d.log.WithField("remote", r.RemoteAddr).Warn("unreadable twilio status callback refused")
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		cb, err := sms.ParseStatusCallback(form)
		if err != nil {
			d.log.Warn("signed twilio status callback without sid or status ignored")
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), receiptTimeout)
		defer cancel()
		code, err := d.receipt(ctx, cb)
		if err != nil {
			d.metrics.receiptFailures.Inc()
			d.log.WithError(err).WithFields(logrus.Fields{"sid": cb.MessageSid, "status": cb.MessageStatus}).
				Error("twilio status callback not recorded; answering 500 so Twilio retries")
			http.Error(w, "temporary failure", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(code)
	})
}

// receipt records one validated status callback and returns the HTTP
// status to answer; an error means Redis or Kafka failed.
func (d *Deliverer) receipt(ctx context.Context, cb sms.StatusCallback) (int, error) {
	if !cb.Final() || cb.MessageStatus == "read" {
		// "read" only follows "delivered" (WhatsApp): nothing new to record.
		d.log.WithFields(logrus.Fields{"sid": cb.MessageSid, "status": cb.MessageStatus}).Debug("sms status")
		return http.StatusNoContent, nil
	}
	in, err := d.state.intentBySID(ctx, cb.MessageSid)
	if err != nil {
		return 0, err
	}
	if in == nil {
		// Not recorded yet (receipt_early.go), not ours, or older than the
		// sid mapping's TTL.
		if in, err = d.parkEarly(ctx, cb); err != nil || in == nil {
			return http.StatusOK, err
		}
	}
	return d.receiptFor(ctx, *in, cb)
}

// receiptFor records a final status of the SMS sent for in.
func (d *Deliverer) receiptFor(ctx context.Context, in Intent, cb sms.StatusCallback) (int, error) {
	l := d.log.WithFields(logrus.Fields{"sid": cb.MessageSid, "intent_id": in.ID, "alert_id": in.AlertID,
		"case_ref": in.CaseRef, "contact_id": in.ContactID, "status": cb.MessageStatus})
	owner := "receipt:" + cb.MessageSid + ":" + cb.MessageStatus
	fresh, err := d.state.beginReceipt(ctx, in, owner, cb.ErrorCode)
	if err != nil {
		return 0, err
	}
	if !fresh {
		l.Info("duplicate sms status callback ignored")
		return http.StatusNoContent, nil
	}

	now := d.now()
	var results []Result
	if cb.Failed() {
		r := resultFor(in, sms.Name, 0, OutcomeUndeliv, now)
		r.ProviderID, r.ErrorCode, r.ErrorClass = cb.MessageSid, cb.ErrorCode, "permanent"
		r.Error = "sms " + cb.MessageStatus + " (twilio status callback)"
		results = append(results, r)
		l = l.WithField("error_code", cb.ErrorCode)
		l.Warn("sms not delivered to the handset")
		states, err := d.state.markFailed(ctx, in, sms.Name)
		if err != nil {
			return 0, err
		}
		more, err := d.afterUndelivered(ctx, in, states, owner, l)
		if err != nil {
			return 0, err
		}
		results = append(results, more...)
	} else {
		r := resultFor(in, sms.Name, 0, OutcomeDelivered, now)
		r.ProviderID, r.LatencyMS = cb.MessageSid, latencyOf(in, r.At)
		results = append(results, r)
		l.Info("sms delivered to the handset")
	}
	if err := d.publish(ctx, results); err != nil {
		return 0, err
	}
	if err := d.state.finishReceipt(ctx, in, owner); err != nil {
		return 0, err
	}
	return http.StatusNoContent, nil
}

// afterUndelivered applies the plan to an SMS that did not reach the
// handset (its channel already marked failed in states). Like the send
// path's afterFailure, but a critical intent does not wait for its other
// channels, and fallback channels are queued rather than sent here. The
// jobs are queued before the step is claimed: a Redis blip between the two
// can repeat an audit record, never lose the follow-up.
func (d *Deliverer) afterUndelivered(ctx context.Context, in Intent, states map[string]string, owner string, l logrus.FieldLogger) ([]Result, error) {
	if in.Kind == KindNotice {
		// The last resort: never a notice about a notice, but sent again.
		if !allFailed(states, in.Channels) {
			return nil, nil // another channel of the notice may get through
		}
		return d.resendNotice(ctx, in, owner, l)
	}
	if !in.Critical && !allFailed(states, in.Channels) {
		return nil, nil // another planned channel may still get through
	}
	if len(in.Fallback) > 0 && !allFailed(states, in.Fallback) {
		var jobs []retryJob
		for _, ch := range in.Fallback {
			if states[ch] != stateFailed && ch != sms.Name {
				jobs = append(jobs, retryJob{Intent: in, Channel: ch, Attempt: 1})
			}
		}
		if len(jobs) > 0 {
			if err := d.queueFollowUps(ctx, jobs, d.now()); err != nil {
				return nil, err
			}
			ok, err := d.state.claimStep(ctx, in, "fallback", owner)
			if err != nil || !ok {
				return nil, err // the send path fell back already: same jobs, queued once
			}
			l.WithField("fallback", in.Fallback).Warn("sms undelivered: falling back")
			return []Result{resultFor(in, "", 0, OutcomeFallback, d.now())}, nil
		}
	}
	ok, err := d.state.claimStep(ctx, in, "notice", owner)
	if err != nil || !ok {
		return nil, err
	}
	l.Warn("sms undelivered and no fallback channel left: telling the coordinating center")
	return d.notice(ctx, in)
}

// resendNotice sends a notice that reached nobody again, as a new intent
// (the undelivered one is marked sent), until NoticeHorizon has passed
// since it was decided; then it is declared undeliverable, loudly.
func (d *Deliverer) resendNotice(ctx context.Context, in Intent, owner string, l logrus.FieldLogger) ([]Result, error) {
	now := d.now()
	if now.Sub(in.DecidedAt) >= d.cfg.NoticeHorizon {
		d.metrics.undeliverable.Inc()
		l.Error("UNDELIVERABLE: coordinating-center notice not delivered past its horizon")
		r := resultFor(in, sms.Name, 0, OutcomeFailed, now)
		r.ErrorClass, r.ErrorCode = "permanent", "undeliverable"
		return []Result{r}, nil
	}
	again := in
	again.ID = IntentID("resend:"+in.ID, 0, 0, owner)
	jobs := make([]retryJob, len(in.Channels))
	for i, ch := range in.Channels {
		jobs[i] = retryJob{Intent: again, Channel: ch, Attempt: 1}
	}
	if err := d.queueFollowUps(ctx, jobs, now.Add(d.cfg.Retry.Delay(0))); err != nil {
		return nil, err
	}
	l.WithField("resend_id", again.ID).Warn("coordinating-center notice undelivered: sending it again")
	r := resultFor(in, sms.Name, 0, OutcomeRetry, now)
	r.ErrorClass = "retryable"
	return []Result{r}, nil
}

// queueFollowUps queues jobs due at due, riding out a short Redis blip.
func (d *Deliverer) queueFollowUps(ctx context.Context, jobs []retryJob, due time.Time) error {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var last error
	if !d.retryInfra(qctx, "queue", func() error {
		for _, j := range jobs {
			if last = d.queue.add(qctx, j, due); last != nil {
				return last
			}
		}
		return nil
	}) {
		return fmt.Errorf("queue follow-up jobs: %w", last)
	}
	for _, j := range jobs {
		d.laneOf(j.Channel).pending()
	}
	return nil
}

// claimStepScript is once with an owner: the field is claimed for ARGV[2]
// unless someone else holds it. A claim never leaves the hash without its
// expiry (ARGV[3]): it may be the hash's first field, now that a channel
// sent is no longer written there.
var claimStepScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return 1 end
return 0`)

// claimStep returns true the first time step is claimed for the intent,
// and again when the same owner asks (a retried callback redoing its own
// unfinished work); false when another owner (the send path's once
// writes "1") holds it.
func (s *deliveryState) claimStep(ctx context.Context, in Intent, step, owner string) (bool, error) {
	n, err := claimStepScript.Run(ctx, s.rdb, []string{intentKey(in.CaseRef, in.ID)}, step, owner, s.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("record %s: %w", step, err)
	}
	return n == 1, nil
}

const (
	receiptPending = "pending"
	receiptDone    = "done"
)

// beginReceiptScript marks a receipt pending unless it is done. The hash
// gets the markers' TTL again: with a MarkerTTL under the sid mapping's 7
// days it may have expired, and must not come back without one.
var beginReceiptScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`)

// beginReceipt returns false when this receipt (sid and status) was
// already recorded. A receipt left pending by a failed earlier attempt, or
// being handled right now, is begun again: its effects are idempotent
// (claimStep, addNew, sent-markers), at worst an audit record repeats.
// The pending value keeps the callback's error code ("pending:30003"), so
// the receipt check can finish the receipt as the callback would have.
func (s *deliveryState) beginReceipt(ctx context.Context, in Intent, receipt, errorCode string) (bool, error) {
	pending := receiptPending
	if errorCode != "" {
		pending += ":" + errorCode
	}
	n, err := beginReceiptScript.Run(ctx, s.rdb, []string{intentKey(in.CaseRef, in.ID)},
		receipt, pending, receiptDone, strconv.FormatInt(s.ttl.Milliseconds(), 10)).Int()
	if err != nil {
		return false, fmt.Errorf("record receipt: %w", err)
	}
	return n == 1, nil
}

// finishReceipt marks a receipt recorded, so a duplicate callback is ignored.
func (s *deliveryState) finishReceipt(ctx context.Context, in Intent, receipt string) error {
	if err := s.rdb.HSet(ctx, intentKey(in.CaseRef, in.ID), receipt, receiptDone).Err(); err != nil {
		return fmt.Errorf("record receipt: %w", err)
	}
	return nil
}
