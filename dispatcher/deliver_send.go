package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/channels"
	"github.com/viogen-alerts/dispatcher/rules"
)

// errNotConfigured is a permanent failure: the channel has no provider.
var errNotConfigured = errors.New("channel not configured")

// errInFlight says another worker is sending the same intent and channel
// right now: this attempt stands down, the other one records the outcome.
var errInFlight = errors.New("already being sent")

// deliver makes one attempt on one channel of one intent. It returns the
// audit records; an error means Redis or Kafka failed (retry the batch).
func (d *Deliverer) deliver(ctx context.Context, j retryJob) ([]Result, error) {
	in, ch := j.Intent, j.Channel
	prev, err := d.state.sent(ctx, in, ch)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		return []Result{*prev}, nil // sent before a crash or a redelivery: never twice
	}
	states, err := d.state.states(ctx, in)
	if err != nil {
		return nil, err
	}
	if states[ch] == stateFailed {
		// Final already; what follows a failure is re-run in case it failed
		// half-way the first time (it is claim-protected and idempotent).
		return d.afterFailure(ctx, in, states)
	}
	release, receipt, sendErr := d.send(ctx, in, ch)
	if errors.Is(sendErr, errInFlight) {
		return nil, nil
	}
	defer release() // only after the outcome below is recorded
	now := d.now()
	r := resultFor(in, ch, j.Attempt, OutcomeSent, now)
	if sendErr == nil {
		r.ProviderID = receipt.ProviderID
		if !in.OccurredAt.IsZero() {
			r.LatencyMS = now.Sub(in.OccurredAt).Milliseconds()
		}
		if err := d.state.markSent(ctx, in, r); err != nil {
			return nil, err
		}
		d.logResult(r, nil)
		return []Result{r}, nil
	}
	return d.failed(ctx, j, r, sendErr)
}

// send renders and sends, waiting for the provider's rate limit, while
// holding the in-flight claim of the intent and channel; release gives
// the claim back and must run after the outcome is recorded.
func (d *Deliverer) send(ctx context.Context, in Intent, ch string) (release func(), _ channels.Receipt, _ error) {
	release = func() {}
	c, ok := d.chans[ch]
	if !ok {
		return release, channels.Receipt{}, channels.NewPermanent(ch, "unconfigured", errNotConfigured)
	}
	to, err := d.dir.Address(in.ContactID, ch)
	if err != nil {
		return release, channels.Receipt{}, channels.NewPermanent(ch, "no_address", err)
	}
	msg, err := Render(d.tmpl, in, ch, d.rcfg.Location())
	if err != nil {
		return release, channels.Receipt{}, channels.NewPermanent(ch, "template", err)
	}
	var secret []byte
	if ch == "webhook" {
		if secret, err = d.dir.SigningSecret(in.ContactID); err != nil {
			return release, channels.Receipt{}, channels.NewPermanent(ch, "no_secret", err)
		}
	}
	if err := d.limits[ch].Wait(ctx, in.Critical); err != nil {
		return release, channels.Receipt{}, channels.NewRetryable(ch, "canceled", 0, err)
	}
	got, err := d.state.claimSend(ctx, in, ch, d.cfg.SendTimeout+time.Minute)
	if err != nil {
		return release, channels.Receipt{}, channels.NewRetryable(ch, "state", 0, err)
	}
	if !got {
		return release, channels.Receipt{}, errInFlight
	}
	release = func() { d.state.releaseSend(context.WithoutCancel(ctx), in, ch) }
	sctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
	defer cancel()
	receipt, err := c.Send(sctx, channels.Message{
		ID: in.ID, AlertID: in.AlertID, CaseRef: in.CaseRef, ContactID: in.ContactID,
		Severity: pagerSeverity(in.Severity), Critical: in.Critical, To: to,
		Subject: msg.Subject, Body: msg.Body, Action: in.PagerAction, Source: "viogen-dispatcher", Secret: secret,
	})
	return release, receipt, err
}

// failed schedules a retry for a retryable failure within the budget, or
// records the channel as failed and moves on to fallback or notice.
func (d *Deliverer) failed(ctx context.Context, j retryJob, r Result, sendErr error) ([]Result, error) {
	// The audit trail keeps the class and the provider code only: channel
	// error texts may carry a masked address, which has no place in it.
	r.ErrorCode = channels.Code(sendErr)
	r.ErrorClass = "retryable"
	if channels.IsPermanent(sendErr) {
		r.ErrorClass = "permanent"
	}
	age := d.now().Sub(j.Intent.DecidedAt)
	if channels.IsRetryable(sendErr) && j.Attempt < d.cfg.MaxAttempts && age < d.cfg.MaxAge {
		delay := max(d.cfg.Retry.Delay(j.Attempt-1), channels.RetryAfter(sendErr))
		next := retryJob{Intent: j.Intent, Channel: j.Channel, Attempt: j.Attempt + 1}
		if err := d.retries.add(ctx, next, d.now().Add(delay)); err != nil {
			return nil, err
		}
		r.Outcome = OutcomeRetry
		d.logResult(r, sendErr)
		return []Result{r}, nil
	}
	r.Outcome = OutcomeFailed
	d.logResult(r, sendErr)
	states, err := d.state.markFailed(ctx, j.Intent, j.Channel)
	if err != nil {
		return nil, err
	}
	more, err := d.afterFailure(ctx, j.Intent, states)
	return append([]Result{r}, more...), err
}

// afterFailure applies the plan: when every planned channel failed, the
// fallback channels not tried yet are tried; when those failed too, or
// there are none, the coordinating center is told. Both steps are claimed
// by the intent (a receipt-triggered fallback cannot double them) and may
// run again on a replay, so a step that failed half-way is completed:
// sends are guarded by sent-markers and notices have deterministic ids.
func (d *Deliverer) afterFailure(ctx context.Context, in Intent, states map[string]string) ([]Result, error) {
	if !allFailed(states, in.Channels) {
		return nil, nil
	}
	owner := "send:" + in.ID
	if len(in.Fallback) > 0 && !allFailed(states, in.Fallback) {
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
	ok, err := d.state.claimStep(ctx, in, "notice", owner)
	if err != nil || !ok {
		return nil, err
	}
	return d.notice(ctx, in)
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

func (d *Deliverer) fallback(ctx context.Context, in Intent, chans []string) ([]Result, error) {
	out := []Result{resultFor(in, "", 0, OutcomeFallback, d.now())}
	for _, ch := range chans {
		rs, err := d.deliver(ctx, retryJob{Intent: in, Channel: ch, Attempt: 1})
		if err != nil {
			return out, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// notice tells the fallback coordinating center that a target could not
// be reached, as intents of their own (a notice never triggers a notice).
func (d *Deliverer) notice(ctx context.Context, in Intent) ([]Result, error) {
	r := resultFor(in, "", 0, OutcomeNotice, d.now())
	if in.Kind == KindNotice {
		d.log.WithFields(logrus.Fields{"intent_id": in.ID, "contact_id": in.ContactID}).Error("coordinating center unreachable on every channel")
		return []Result{r}, nil
	}
	step := rules.PolicyStep{Notify: []rules.TargetSpec{{Agency: d.rcfg.FallbackAgency, Via: []string{"sms", "email"}}}}
	targets, _ := d.rcfg.Resolve(step, rules.RouteContext{})
	now := d.now()
	for _, t := range targets {
		n := in
		n.ID = IntentID("notice:"+in.ID, in.Step, in.Round, t.ContactID)
		n.Kind, n.Template, n.Unrouted, n.Critical = KindNotice, "unrouted", true, true
		n.AgencyID, n.AgencyName, n.ContactID, n.Locale = t.AgencyID, t.AgencyName, t.ContactID, t.Locale
		n.Channels, n.Fallback, n.DecidedAt, n.OtherAgency = t.Channels, nil, now, in.AgencyName
		b, err := n.Encode()
		if err != nil {
			return nil, err
		}
		if err := d.writer.WriteMessages(ctx, kafkaMsg(d.cfg.IntentsTopic, n.CaseRef, b)); err != nil {
			return nil, fmt.Errorf("write notice intent: %w", err)
		}
	}
	return []Result{r}, nil
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
	l := d.log.WithFields(logrus.Fields{"intent_id": r.IntentID, "alert_id": r.AlertID, "case_ref": r.CaseRef, "rule": r.Rule,
		"channel": r.Channel, "contact_id": r.ContactID, "attempt": r.Attempt, "outcome": r.Outcome})
	if err != nil {
		l.WithError(err).Warn("notification not accepted")
		return
	}
	l.WithField("latency_ms", r.LatencyMS).Info("notification sent")
}

// runRetries claims due retries and runs them until ctx ends.
func (d *Deliverer) runRetries(ctx context.Context) error {
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := d.retryDue(ctx); err != nil && ctx.Err() == nil {
			d.log.WithError(err).Warn("retry round failed; jobs stay queued")
		}
	}
}

// retryDue runs one round of due jobs; a job leaves the queue only after
// its outcome and audit records are durable.
func (d *Deliverer) retryDue(ctx context.Context) error {
	jobs, raws, err := d.retries.claim(ctx, d.now(), 50, d.cfg.Lease)
	if err != nil || len(jobs) == 0 {
		return err
	}
	results, err := d.runJobs(ctx, jobs)
	if err != nil {
		return err
	}
	if err := d.publish(ctx, results); err != nil {
		return err
	}
	for _, raw := range raws {
		if err := d.retries.done(ctx, raw); err != nil {
			return err
		}
	}
	return nil
}
