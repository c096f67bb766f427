package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/channels"
	"github.com/viogen-alerts/dispatcher/channels/sms"
	"github.com/viogen-alerts/dispatcher/internal/logjson"
	"github.com/viogen-alerts/dispatcher/rules"
)

// errNotConfigured is a permanent failure: the channel has no provider.
var errNotConfigured = errors.New("channel not configured")

// run makes one attempt at a held job and hands its outcome on. An
// infrastructure failure (Redis, Kafka) leaves the job queued: it is made
// due again shortly, or its lease runs out; either way it runs again.
func (d *Deliverer) run(ctx context.Context, q queued) {
	f, err := d.attempt(ctx, q)
	if err != nil {
		d.log.WithError(err).WithFields(logrus.Fields{"intent_id": q.job.Intent.ID, "channel": q.job.Channel}).
			Warn("delivery attempt failed on our side; the job runs again")
		d.health.set("attempt", err)
		d.giveBack(ctx, q, d.now().Add(d.cfg.Batch.Delay(0)))
		if len(f.results) > 0 {
			// What did happen (a final failure) is audited now; the job
			// runs again for what did not (the fallback or notice).
			d.complete(ctx, finished{results: f.results})
		}
		return
	}
	d.health.set("attempt", nil)
	d.complete(ctx, f)
}

// giveBack leaves a held job to the queue, due at due.
func (d *Deliverer) giveBack(ctx context.Context, q queued, due time.Time) {
	_ = d.queue.setScore(context.WithoutCancel(ctx), []queued{q}, due)
	d.holds.drop(q)
	d.laneOf(q.job.Channel).pending()
}

// attempt runs one job. The check for an earlier send and the in-flight
// claim are one atomic step (begin), so no two attempts ever both send.
func (d *Deliverer) attempt(ctx context.Context, q queued) (finished, error) {
	if q.job.Check == checkReceipt {
		return d.checkReceipt(ctx, q)
	}
	in, ch := q.job.Intent, q.job.Channel
	owner, state, prev, left, err := d.begin(ctx, q)
	if err != nil {
		return finished{}, err
	}
	switch state {
	case beganSent: // sent before a crash or a redelivery: never twice, audited again
		// The receipt check may not have been queued before the crash.
		if err := d.queueReceiptCheck(ctx, in, *prev); err != nil {
			return finished{}, err
		}
		// The sid mapping may be what failed to be written before.
		if err := d.state.mapSID(ctx, in, *prev); err != nil {
			return finished{}, err
		}
		if err := d.applyEarly(ctx, in, *prev); err != nil {
			return finished{}, err
		}
		return finished{results: []Result{*prev}, done: []queued{q}}, nil
	case beganFailed: // final already; re-run what follows (claimed, idempotent)
		states, err := d.state.states(ctx, in)
		if err != nil {
			return finished{}, err
		}
		rs, err := d.afterFailure(ctx, in, states)
		return finished{results: rs, done: []queued{q}}, err
	case beganBusy:
		// Another attempt is sending it now; look again when its claim
		// would run out (it is renewed while its holder lives).
		d.giveBack(ctx, q, d.now().Add(left+time.Second))
		return finished{}, nil
	}
	claim := heldClaim{caseRef: in.CaseRef, intentID: in.ID, channel: ch, owner: owner}
	d.holds.claim(claim)
	defer d.holds.unclaim(claim)
	receipt, sendErr := d.send(ctx, in, ch)
	if wait, ok := isThrottled(sendErr); ok {
		d.state.release(context.WithoutCancel(ctx), in, ch, owner)
		d.giveBack(ctx, q, d.now().Add(wait))
		return finished{}, nil
	}
	now := d.now()
	r := resultFor(in, ch, q.job.Attempt, OutcomeSent, now)
	if sendErr == nil {
		r.ProviderID, r.LatencyMS = receipt.ProviderID, latencyOf(in, r.At)
		if err := d.recordSent(ctx, in, r, owner); err != nil {
			return finished{}, err
		}
		// Counted and logged once, now: a re-run after a failure below
		// finds the marker (beganSent) and does neither.
		d.metrics.sent(r, in)
		d.logResult(r, nil)
		// After the sent-marker: if this fails the job runs again, finds the
		// marker (beganSent) and queues the check there.
		if err := d.queueReceiptCheck(ctx, in, r); err != nil {
			return finished{}, err
		}
		if err := d.applyEarly(ctx, in, r); err != nil {
			return finished{}, err
		}
		return finished{results: []Result{r}, done: []queued{q}}, nil
	}
	defer d.state.release(context.WithoutCancel(ctx), in, ch, owner)
	if ctx.Err() != nil {
		// Shutdown cut the send short: not the provider's failure.
		d.giveBack(ctx, q, now)
		return finished{}, nil
	}
	return d.failed(ctx, q, r, sendErr)
}

// recordSent writes the sent-marker of an accepted send, retrying a
// Redis blip for up to a lease while the claim is still held and renewed:
// giving up at once would let the claim run out and the message go again.
func (d *Deliverer) recordSent(ctx context.Context, in Intent, r Result, owner string) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Lease)
	defer cancel()
	var last error
	ok := d.retryInfra(rctx, "marker", func() error {
		last = d.state.markSent(rctx, in, r, owner)
		return last
	})
	if !ok {
		return fmt.Errorf("record accepted send (it may go out again): %w", last)
	}
	return nil
}

// send renders and sends, unless the destination's rate limit holds the
// message back (a throttled error: the job comes back when it has room).
func (d *Deliverer) send(ctx context.Context, in Intent, ch string) (channels.Receipt, error) {
	c, ok := d.chans[ch]
	if !ok {
		return channels.Receipt{}, channels.NewPermanent(ch, "unconfigured", errNotConfigured)
	}
	to, err := d.dir.Address(in.ContactID, ch)
	if err != nil {
		return channels.Receipt{}, channels.NewPermanent(ch, "no_address", err)
	}
	m := channels.Message{
		ID: in.ID, AlertID: in.AlertID, CaseRef: in.CaseRef, ContactID: in.ContactID,
		Severity: pagerSeverity(in.Severity), Critical: in.Critical, To: to,
		Action: in.PagerAction, Source: "viogen-dispatcher",
	}
	// The token first: a throttled backlog asks again and again, and its
	// destination depends on the address only, not on the text.
	if err := d.throttle(ctx, in, ch, c, m); err != nil {
		return channels.Receipt{}, err
	}
	rcfg, tmpl := d.config()
	msg, err := Render(tmpl, in, ch, rcfg.Location())
	if err != nil {
		return channels.Receipt{}, channels.NewPermanent(ch, "template", err)
	}
	m.Subject, m.Body = msg.Subject, msg.Body
	if ch == "webhook" {
		if m.Secret, err = d.dir.SigningSecret(in.ContactID); err != nil {
			return channels.Receipt{}, channels.NewPermanent(ch, "no_secret", err)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
	defer cancel()
	return c.Send(sctx, m)
}

// failed schedules the next attempt while the budget lasts, or records
// the channel as failed and moves on to fallback or notice. A notice to
// the coordinating center is the last resort: it is retried on every
// failure, permanent ones included, until NoticeHorizon has passed.
func (d *Deliverer) failed(ctx context.Context, q queued, r Result, sendErr error) (finished, error) {
	// The audit trail keeps the class and the provider code only: channel
	// error texts may carry a masked address, which has no place in it.
	r.ErrorCode = channels.Code(sendErr)
	r.ErrorClass = "retryable"
	if channels.IsPermanent(sendErr) {
		r.ErrorClass = "permanent"
	}
	j := q.job
	if d.retryable(j, sendErr) {
		delay := max(d.cfg.Retry.Delay(j.Attempt-1), channels.RetryAfter(sendErr))
		next := retryJob{Intent: j.Intent, Channel: j.Channel, Attempt: j.Attempt + 1}
		if err := d.queue.replace(ctx, q, next, d.now().Add(delay)); err != nil {
			return finished{}, err
		}
		d.holds.drop(q)
		r.Outcome = OutcomeRetry
		d.metrics.outcome(r)
		d.logResult(r, sendErr)
		return finished{results: []Result{r}}, nil
	}
	r.Outcome = OutcomeFailed
	d.metrics.outcome(r)
	d.logResult(r, sendErr)
	if j.Intent.Kind == KindNotice {
		d.metrics.undeliverable.Inc()
		d.log.WithFields(logrus.Fields{"intent_id": j.Intent.ID, "alert_id": j.Intent.AlertID, "case_ref": j.Intent.CaseRef,
			"contact_id": j.Intent.ContactID, "channel": j.Channel}).Error("UNDELIVERABLE: coordinating-center notice failed past its horizon")
	}
	states, err := d.state.markFailed(ctx, j.Intent, j.Channel)
	if err != nil {
		return finished{}, err
	}
	more, err := d.afterFailure(ctx, j.Intent, states)
	return finished{results: append([]Result{r}, more...), done: []queued{q}}, err
}

// retryable says whether a failed attempt gets another one.
func (d *Deliverer) retryable(j retryJob, sendErr error) bool {
	age := d.now().Sub(j.Intent.DecidedAt)
	if j.Intent.Kind == KindNotice {
		return age < d.cfg.NoticeHorizon
	}
	return channels.IsRetryable(sendErr) && j.Attempt < d.cfg.MaxAttempts && age < d.cfg.MaxAge
}

// afterFailure applies the plan: when every planned channel failed, the
// fallback channels not tried yet are queued; when those failed too, or
// there are none, the coordinating center is told. Both steps are claimed
// by the intent (a receipt-triggered fallback cannot double them) and may
// run again on a replay, so a step that failed half-way is completed:
// queued jobs and notices have deterministic identities.
func (d *Deliverer) afterFailure(ctx context.Context, in Intent, states map[string]string) ([]Result, error) {
	if !unreached(states, in) {
		return nil, nil
	}
	owner := "send:" + in.ID
	if len(in.Fallback) > 0 && !unreachedOn(states, in, in.Fallback) {
		untried := untried(states, in.Fallback)
		if len(untried) == 0 {
			return nil, nil // fallback under way
		}
		ok, err := d.state.claimStep(ctx, in, "fallback", owner)
		if err != nil || !ok {
			return nil, err
		}
		return d.fallback(ctx, in, untried)
	}
	if in.Kind == KindNotice {
		return nil, nil // a notice never triggers a notice; it was retried to its horizon
	}
	ok, err := d.state.claimStep(ctx, in, "notice", owner)
	if err != nil || !ok {
		return nil, err
	}
	return d.notice(ctx, in)
}

// unreached reports whether every planned channel of in failed (see
// unreachedOn).
func unreached(states map[string]string, in Intent) bool { return unreachedOn(states, in, in.Channels) }

// unreachedOn reports whether every channel of chans failed. For a
// critical intent an SMS left unconfirmed (no delivery receipt in time)
// counts as failed unless a receipt says it was delivered: the receipt
// check falls back from it as from an undelivered one, so when nothing
// else gets through the coordinating center is told, not nobody.
func unreachedOn(states map[string]string, in Intent, chans []string) bool {
	for _, c := range chans {
		if states[c] == stateFailed {
			continue
		}
		if c == sms.Name && in.Critical && states["unconfirmed"] != "" && !receiptDelivered(states) {
			continue
		}
		return false
	}
	return true
}

// receiptDelivered reports whether a status callback recorded in states
// ("receipt:<sid>:<status>") says the SMS reached the handset.
func receiptDelivered(states map[string]string) bool {
	for f := range states {
		if r, ok := strings.CutPrefix(f, "receipt:"); ok {
			if i := strings.LastIndex(r, ":"); i >= 0 && !(sms.StatusCallback{MessageStatus: r[i+1:]}).Failed() {
				return true
			}
		}
	}
	return false
}

func allFailed(states map[string]string, chans []string) bool {
	for _, c := range chans {
		if states[c] != stateFailed {
			return false
		}
	}
	return true
}

// untried lists the channels with no recorded outcome.
func untried(states map[string]string, chans []string) []string {
	var out []string
	for _, c := range chans {
		if states[c] == "" {
			out = append(out, c)
		}
	}
	return out
}

// fallback queues the fallback channels, due now.
func (d *Deliverer) fallback(ctx context.Context, in Intent, chans []string) ([]Result, error) {
	for _, ch := range chans {
		if err := d.queue.add(ctx, retryJob{Intent: in, Channel: ch, Attempt: 1}, d.now()); err != nil {
			return nil, err
		}
		d.laneOf(ch).pending()
	}
	return []Result{resultFor(in, "", 0, OutcomeFallback, d.now())}, nil
}

// NoticeID names the notice about one alert to one contact of the
// coordinating center: however many of the alert's targets fail, the
// center gets one notice per alert (and contact), not one per failure.
func NoticeID(alertID, contactID string) string { return IntentID("notice:"+alertID, 0, 0, contactID) }

// notice tells the fallback coordinating center that a target could not
// be reached, as intents of their own written to the intents topic.
func (d *Deliverer) notice(ctx context.Context, in Intent) ([]Result, error) {
	rcfg, _ := d.config()
	step := rules.PolicyStep{Notify: []rules.TargetSpec{{Agency: rcfg.FallbackAgency, Via: []string{"sms", "email"}}}}
	targets, _ := rcfg.Resolve(step, rules.RouteContext{})
	now := d.now()
	for _, t := range targets {
		n := in
		n.ID = NoticeID(in.AlertID, t.ContactID)
		n.Kind, n.Template, n.Unrouted, n.Critical = KindNotice, "unrouted", true, true
		n.AgencyID, n.AgencyName, n.ContactID, n.Locale = t.AgencyID, t.AgencyName, t.ContactID, t.Locale
		// The decision time of the unreachable intent: the notice's horizon
		// counts from it, and a re-run writes the very same notice.
		n.Channels, n.Fallback, n.DecidedAt, n.OtherAgency = t.Channels, nil, in.DecidedAt, in.AgencyName
		b, err := n.Encode()
		if err != nil {
			return nil, err
		}
		if err := d.writer.WriteMessages(ctx, kafkaMsg(d.cfg.IntentsTopic, n.CaseRef, b)); err != nil {
			return nil, fmt.Errorf("write notice intent: %w", err)
		}
	}
	d.metrics.notices.Inc()
	d.log.WithFields(logrus.Fields{"intent_id": in.ID, "alert_id": in.AlertID, "case_ref": in.CaseRef, "contact_id": in.ContactID}).
		Warn("target unreachable on every channel: coordinating center notified")
	return []Result{resultFor(in, "", 0, OutcomeNotice, now)}, nil
}

// pagerSeverity maps our severities onto PagerDuty's vocabulary.
func pagerSeverity(s string) string {
	switch s {
	case "critical", "error", "warning", "info":
		return s
	}
	return "warning"
}

func (d *Deliverer) logResult(r Result, err error) {
	if err != nil {
		d.log.WithFields(logrus.Fields{"intent_id": r.IntentID, "alert_id": r.AlertID, "case_ref": r.CaseRef, "rule": r.Rule,
			"channel": r.Channel, "contact_id": r.ContactID, "attempt": r.Attempt, "outcome": r.Outcome}).WithError(err).Warn("notification not accepted")
		return
	}
	// logjson.Log: the line logrus would write, without its maps.
	logjson.Log(d.log, logrus.InfoLevel, "notification sent", logjson.String("intent_id", r.IntentID), logjson.String("alert_id", r.AlertID),
		logjson.String("case_ref", r.CaseRef), logjson.String("rule", r.Rule), logjson.String("channel", r.Channel),
		logjson.String("contact_id", r.ContactID), logjson.Int("attempt", r.Attempt), logjson.String("outcome", r.Outcome),
		logjson.Int64("latency_ms", r.LatencyMS))
}
