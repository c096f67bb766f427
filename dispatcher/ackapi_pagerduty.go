package dispatcher

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/channels/pager"
)

// handlePagerDuty serves POST /v1/pagerduty/webhook, a PagerDuty Webhooks
// v3 event. The X-PagerDuty-Signature is checked over the raw body with
// PagerDutySecret: a request without a matching signature gets 401 and
// changes nothing; a body over pager.MaxWebhookBytes 413, a signed body
// that is not a v3 event 400.
//
// An incident.acknowledged whose incident key (the dedup_key we triggered
// it with: the alert id) names an open escalation acknowledges it through
// the same path as the ack API (an escalation.acknowledged event, via
// "pagerduty", by the agencies whose pager contacts were paged): the
// ladder stops. Everything else (other event types, incidents that are
// not ours, escalations no longer open, among them the echo of our own
// "acknowledge") gets 204 and is ignored. A Redis or Kafka failure gets
// 503, so PagerDuty delivers the event again.
//
// Only opaque ids are logged (PagerDuty's event id, the escalation and
// case references), never the agent's or assignees' names or e-mails.
func (a *AckAPI) handlePagerDuty(w http.ResponseWriter, r *http.Request) {
	l := a.log().WithFields(logrus.Fields{"remote": r.RemoteAddr, "via": ackViaPD})
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, pager.MaxWebhookBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			l.Warn("pagerduty webhook over the size limit refused")
			ackJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body too large"})
			return
		}
		l.Warn("unreadable pagerduty webhook refused")
		ackJSON(w, http.StatusBadRequest, map[string]string{"error": "unreadable body"})
		return
	}
	if err := pager.VerifyWebhook(a.PagerDutySecret, r.Header.Get(pager.SignatureHeader), body); err != nil {
		l.Warn("pagerduty webhook with a bad or missing signature refused")
		ackJSON(w, http.StatusUnauthorized, map[string]string{"error": "bad signature"})
		return
	}
	ev, err := pager.ParseWebhook(body)
	if err != nil {
		// The error may quote part of the body: not logged.
		l.Warn("signed pagerduty webhook that is not a v3 event refused")
		ackJSON(w, http.StatusBadRequest, map[string]string{"error": "not a v3 webhook event"})
		return
	}
	l = l.WithFields(logrus.Fields{"pd_event_id": ev.ID, "pd_event_type": ev.EventType, "pd_incident_id": ev.IncidentID})
	if ev.EventType != pager.EventIncidentAcknowledged {
		l.Debug("pagerduty webhook event ignored")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ackTimeout)
	defer cancel()
	e, err := a.find(ctx, ev.IncidentKey)
	if errors.Is(err, ErrNoEscalation) {
		l.Info("pagerduty acknowledgement of an incident that is no escalation of ours ignored")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err != nil {
		l.WithError(err).Error("pagerduty acknowledgement: escalation lookup failed; answering 503 so PagerDuty retries")
		ackJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily unavailable, retry"})
		return
	}
	l = l.WithFields(logrus.Fields{"escalation_id": e.ID, "case_ref": e.CaseRef})
	if e.State != EscOpen {
		l.WithField("state", e.State).Info("pagerduty acknowledgement of an escalation no longer open ignored")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	agency := a.pagedAgencies(e)
	l = l.WithField("agency", agency)
	if err := a.Acks.Acknowledge(ctx, e, agency, ackViaPD); err != nil {
		l.WithError(err).Error("pagerduty acknowledgement: publishing the acknowledgement failed; answering 503 so PagerDuty retries")
		ackJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily unavailable, retry"})
		return
	}
	l.Info("acknowledgement accepted")
	ackJSON(w, http.StatusAccepted, map[string]string{"escalation_id": e.ID, "state": "acknowledging"})
}

// pagedAgencies names who acknowledged from PagerDuty: the agencies whose
// pager contacts the escalation paged so far (comma-separated, sorted),
// since the webhook says which PagerDuty user acted but not for which of
// our agencies. "pagerduty" when none resolves any more (contacts removed
// by a reload).
func (a *AckAPI) pagedAgencies(e *Escalation) string {
	seen := map[string]bool{}
	for step := 0; step <= e.Step && step < len(e.Alert.Policy.Steps); step++ {
		for _, in := range StepIntents(a.rules(), e.Alert, step, 0, e.AckCode, e.OpenedAt) {
			if contains(in.Channels, "pager") {
				seen[in.AgencyID] = true
			}
		}
	}
	if len(seen) == 0 {
		return ackViaPD
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
