package dispatcher

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/channels"
	"github.com/viogen-alerts/dispatcher/channels/sms"
	"github.com/viogen-alerts/dispatcher/rules"
)

// AckAPI is the acknowledgement entry points of the admin HTTP server. It
// only checks who is acknowledging what and publishes the acknowledgement
// through Acks (an escalation.acknowledged event on the internal topic,
// keyed by case); the decide stage applies it in order with the case's
// other events, so an acknowledgement never races a timeout.
//
// Routes (Register):
//
//	POST /v1/escalations/{id}/ack   bearer token of an agency
//	GET  /v1/escalations?state=open bearer token of an agency
//	POST /v1/twilio/inbound         Twilio-signed inbound SMS "ACK <code>"
//	POST /v1/pagerduty/webhook      PagerDuty-signed v3 webhook (incident.acknowledged)
//
// {id} is the escalation id, which is the alert id; "case|alert" (the
// escalation's reference, '|' escaped as %7C) is accepted too. An alert id
// is resolved by EscalationStore.ByID (its ack code key while open, the id
// index once finished), in one round trip nearly always; an escalation
// that did not notify the caller's agency answers exactly as an unknown id.
//
// Tokens are compared hashed (rules.Config.AgencyByToken) and never
// logged. Phone numbers are logged masked only, next to the contact id.
type AckAPI struct {
	Rules *rules.Config
	Store *EscalationStore
	Acks  *Acknowledger
	Log   logrus.FieldLogger
	// TwilioToken and InboundURL validate POST /v1/twilio/inbound: the
	// signature is checked against InboundURL, the exact public URL
	// configured at Twilio (never r.URL). Either "" leaves the route off.
	TwilioToken, InboundURL string
	// PagerDutySecret, when set, serves POST /v1/pagerduty/webhook: a
	// PagerDuty v3 webhook signed with it acknowledges our escalation from
	// PagerDuty. "" leaves the route off.
	PagerDutySecret string
	// Live, when set, supplies the configuration in use instead of Rules.
	Live *Live
}

func (a *AckAPI) rules() *rules.Config {
	if a.Live != nil {
		return a.Live.Load().Config
	}
	return a.Rules
}

const (
	// ackTimeout bounds the Redis and Kafka work of one request; Twilio
	// gives up on a webhook after about 15 s.
	ackTimeout = 10 * time.Second
	// ackOpenLimit caps the open escalations read by a listing: far above
	// the ~1,000 alto/extremo cases that escalate.
	ackOpenLimit = 10000
	// ackMaxToken bounds the bearer token hashed.
	ackMaxToken = 512
	// Ack channels recorded in the event (event.Ack.Via).
	ackViaAPI = "api"
	ackViaSMS = "sms"
	ackViaPD  = "pagerduty"
)

var (
	ackIDRe  = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	ackSMSRe = regexp.MustCompile(`(?i)^\s*ACK\s+([A-Za-z0-9]{4,8})\s*$`)
)

// SMS replies: plain GSM-7 text, no accents, nothing but the opaque case
// reference. The refusal is the same whether the code is unknown or the
// sender's agency was not notified, so it tells nothing about the code.
const (
	smsReplyFormat  = "Para confirmar una alerta responda: ACK y el codigo del SMS (ej. ACK K7Q2M)."
	smsReplyRefused = "No se puede confirmar: codigo no valido para este numero."
	smsReplyAcked   = "La alerta del exp %s ya estaba confirmada."
	smsReplyClosed  = "La alerta del exp %s ya esta cerrada; no admite confirmacion."
	smsReplyOK      = "Confirmada la alerta del exp %s. Gracias."
	smsReplyRetry   = "No se pudo registrar la confirmacion. Reintente en unos minutos."
)

// Register adds the routes to mux. The inbound SMS route is added only
// when both TwilioToken and InboundURL are set, the PagerDuty webhook only
// when PagerDutySecret is.
func (a *AckAPI) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/escalations/{id}/ack", a.handleAck)
	mux.HandleFunc("GET /v1/escalations", a.handleList)
	if a.TwilioToken != "" && a.InboundURL != "" {
		mux.HandleFunc("POST /v1/twilio/inbound", a.handleInbound)
	}
	if a.PagerDutySecret != "" {
		mux.HandleFunc("POST /v1/pagerduty/webhook", a.handlePagerDuty)
	}
}

// ackDiscardLog stands in for a nil AckAPI.Log.
var ackDiscardLog = &logrus.Logger{Out: io.Discard, Formatter: new(logrus.TextFormatter), Hooks: make(logrus.LevelHooks), Level: logrus.PanicLevel}

func (a *AckAPI) log() logrus.FieldLogger {
	if a.Log == nil {
		return ackDiscardLog
	}
	return a.Log
}

// authenticate returns the agency of the request's bearer token, or
// answers 401 itself.
func (a *AckAPI) authenticate(w http.ResponseWriter, r *http.Request) (*rules.Agency, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(strings.TrimSpace(h), " ")
	token = strings.TrimSpace(token)
	if h == "" || !strings.EqualFold(scheme, "Bearer") || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="viogen-dispatcher"`)
		ackJSON(w, http.StatusUnauthorized, map[string]string{"error": "bearer token required"})
		return nil, false
	}
	var agency *rules.Agency
	ok := false
	if len(token) <= ackMaxToken {
		agency, ok = a.rules().AgencyByToken(token)
	}
	if !ok {
		a.log().WithFields(logrus.Fields{"remote": r.RemoteAddr, "path": r.URL.Path}).
			Warn("acknowledgement API: unknown bearer token refused")
		w.Header().Set("WWW-Authenticate", `Bearer realm="viogen-dispatcher", error="invalid_token"`)
		ackJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid token"})
		return nil, false
	}
	return agency, true
}

// find resolves an escalation id ("alert" or "case|alert"), finished ones
// included, in O(1): "case|alert" names its key, an alert id is found by
// EscalationStore.ByID.
func (a *AckAPI) find(ctx context.Context, id string) (*Escalation, error) {
	if c, al, ok := ParseEscRef(id); ok {
		if !ackIDRe.MatchString(c) || !ackIDRe.MatchString(al) {
			return nil, ErrNoEscalation
		}
		return a.Store.Get(ctx, c, al)
	}
	if !ackIDRe.MatchString(id) {
		return nil, ErrNoEscalation
	}
	return a.Store.ByID(ctx, id)
}

// handleAck serves POST /v1/escalations/{id}/ack: 401 without a valid
// token, 404 for an unknown escalation and for one that did not notify the
// token's agency (the same answer: another agency's ids are not revealed),
// 409 when it is no longer open, 503 when Redis or Kafka fails, else 202:
// the acknowledgement is queued for the decide stage.
func (a *AckAPI) handleAck(w http.ResponseWriter, r *http.Request) {
	agency, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ackTimeout)
	defer cancel()
	l := a.log().WithFields(logrus.Fields{"agency": agency.ID, "via": ackViaAPI})
	e, err := a.find(ctx, r.PathValue("id"))
	if errors.Is(err, ErrNoEscalation) {
		ackJSON(w, http.StatusNotFound, map[string]string{"error": "no such escalation"})
		return
	}
	if err != nil {
		l.WithError(err).Error("acknowledgement API: escalation lookup failed")
		ackJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily unavailable, retry"})
		return
	}
	l = l.WithFields(logrus.Fields{"escalation_id": e.ID, "case_ref": e.CaseRef})
	if !e.NotifiedAgency(agency.ID) {
		l.Warn("acknowledgement API: agency not notified of the escalation, refused as unknown")
		ackJSON(w, http.StatusNotFound, map[string]string{"error": "no such escalation"})
		return
	}
	if e.State != EscOpen {
		ackJSON(w, http.StatusConflict, map[string]string{"error": "escalation is no longer open", "state": e.State})
		return
	}
	if err := a.Acks.Acknowledge(ctx, e, agency.ID, ackViaAPI); err != nil {
		l.WithError(err).Error("acknowledgement API: publishing the acknowledgement failed")
		ackJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily unavailable, retry"})
		return
	}
	l.Info("acknowledgement accepted")
	ackJSON(w, http.StatusAccepted, map[string]string{"escalation_id": e.ID, "state": "acknowledging"})
}

// openEscalationView is one row of GET /v1/escalations. The ack code is
// left out: it is the credential of an SMS acknowledgement.
type openEscalationView struct {
	ID       string    `json:"id"`
	CaseRef  string    `json:"case_ref"`
	Rule     string    `json:"rule"`
	Severity string    `json:"severity"`
	Step     int       `json:"step"`
	Round    int       `json:"round"`
	DueAt    time.Time `json:"due_at,omitzero"`
	OpenedAt time.Time `json:"opened_at"`
}

// handleList serves GET /v1/escalations?state=open (state may be left
// out; any other value is 400): the open escalations, oldest first, that
// notified the token's agency, as a JSON array (at most ackOpenLimit are
// read).
func (a *AckAPI) handleList(w http.ResponseWriter, r *http.Request) {
	agency, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	if st := r.URL.Query().Get("state"); st != "" && st != EscOpen {
		ackJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("unsupported state %q: only state=open", st)})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ackTimeout)
	defer cancel()
	all, err := a.Store.Open(ctx, ackOpenLimit)
	if err != nil {
		a.log().WithError(err).WithField("agency", agency.ID).Error("acknowledgement API: listing open escalations failed")
		ackJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily unavailable, retry"})
		return
	}
	out := []openEscalationView{}
	for _, e := range all {
		if e.State != EscOpen || !e.NotifiedAgency(agency.ID) {
			continue
		}
		out = append(out, openEscalationView{ID: e.ID, CaseRef: e.CaseRef, Rule: e.Alert.Rule, Severity: e.Alert.Severity,
			Step: e.Step, Round: e.Round, DueAt: e.DueAt, OpenedAt: e.OpenedAt})
	}
	// A disclosure of case references: recorded (who, when, how many).
	a.log().WithFields(logrus.Fields{"agency": agency.ID, "count": len(out)}).Info("open escalations listed")
	ackJSON(w, http.StatusOK, out)
}

// handleInbound serves POST /v1/twilio/inbound, an SMS sent to our number.
// A request not signed by Twilio for InboundURL gets 403, an unreadable
// one 400; every other answer is 200 with TwiML (text/xml):
//   - a number that is no contact of any agency gets an empty response:
//     no reply SMS, nothing revealed;
//   - a body other than "ACK <code>" gets the expected format;
//   - an unknown code, or one of an escalation that notified none of the
//     agencies the number belongs to, gets the same refusal;
//   - an escalation no longer open is said so;
//   - otherwise the acknowledgement is published (via "sms") and confirmed
//     with the case reference only. A Kafka failure asks to retry (Twilio
//     does not retry inbound webhooks, so a 5xx would leave the officer
//     without an answer).
func (a *AckAPI) handleInbound(w http.ResponseWriter, r *http.Request) {
	form, err := sms.ValidateRequest(a.TwilioToken, a.InboundURL, w, r)
	if errors.Is(err, sms.ErrBadSignature) {
		a.log().WithField("remote", r.RemoteAddr).Warn("inbound sms with a bad or missing signature refused")
		twiml(w, http.StatusForbidden, "")
		return
	}
	if err != nil {
		// The error may quote part of the body: not logged.
		a.log().WithField("remote", r.RemoteAddr).Warn("unreadable inbound sms refused")
		twiml(w, http.StatusBadRequest, "")
		return
	}
	in, err := sms.ParseInbound(form)
	if err != nil {
		a.log().Warn("signed inbound sms without sender or sid ignored")
		twiml(w, http.StatusBadRequest, "")
		return
	}
	// Neither the number nor the body is logged: the body is free text.
	l := a.log().WithFields(logrus.Fields{"sid": in.MessageSid, "from": channels.Mask(in.From), "via": ackViaSMS})
	senders := a.rules().ContactsByPhone(in.From)
	if len(senders) == 0 {
		l.Warn("inbound sms from a number of no contact ignored")
		twiml(w, http.StatusOK, "")
		return
	}
	ids := make([]string, len(senders))
	for i, s := range senders {
		ids[i] = s.Contact.ID
	}
	l = l.WithField("contact_id", strings.Join(ids, ","))
	m := ackSMSRe.FindStringSubmatch(in.Body)
	if m == nil {
		l.Info("inbound sms is not an acknowledgement: format sent back")
		twiml(w, http.StatusOK, smsReplyFormat)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ackTimeout)
	defer cancel()
	e, err := a.Store.ByCode(ctx, m[1])
	if errors.Is(err, ErrNoEscalation) {
		l.Warn("sms acknowledgement with an unknown code refused")
		twiml(w, http.StatusOK, smsReplyRefused)
		return
	}
	if err != nil {
		l.WithError(err).Error("sms acknowledgement: escalation lookup failed")
		twiml(w, http.StatusOK, smsReplyRetry)
		return
	}
	var sender *rules.PhoneContact
	for i := range senders {
		if e.NotifiedAgency(senders[i].Agency.ID) {
			sender = &senders[i]
			break
		}
	}
	l = l.WithFields(logrus.Fields{"escalation_id": e.ID, "case_ref": e.CaseRef})
	if sender == nil {
		l.Warn("sms acknowledgement from an agency not notified of the escalation refused")
		twiml(w, http.StatusOK, smsReplyRefused)
		return
	}
	l = l.WithFields(logrus.Fields{"agency": sender.Agency.ID, "contact_id": sender.Contact.ID})
	switch e.State {
	case EscOpen:
	case EscAcked:
		l.Info("sms acknowledgement of an escalation already acknowledged")
		twiml(w, http.StatusOK, fmt.Sprintf(smsReplyAcked, e.CaseRef))
		return
	default:
		l.WithField("state", e.State).Info("sms acknowledgement of an escalation no longer open")
		twiml(w, http.StatusOK, fmt.Sprintf(smsReplyClosed, e.CaseRef))
		return
	}
	if err := a.Acks.Acknowledge(ctx, e, sender.Agency.ID, ackViaSMS); err != nil {
		l.WithError(err).Error("sms acknowledgement: publishing the acknowledgement failed")
		twiml(w, http.StatusOK, smsReplyRetry)
		return
	}
	l.Info("acknowledgement accepted")
	twiml(w, http.StatusOK, fmt.Sprintf(smsReplyOK, e.CaseRef))
}

func ackJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// twiml answers a Twilio webhook: a reply SMS with msg, or none when msg
// is empty.
func twiml(w http.ResponseWriter, status int, msg string) {
	var b strings.Builder
	b.WriteString(xml.Header)
	if msg == "" {
		b.WriteString("<Response></Response>")
	} else {
		b.WriteString("<Response><Message>")
		_ = xml.EscapeText(&b, []byte(msg))
		b.WriteString("</Message></Response>")
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, b.String())
}
