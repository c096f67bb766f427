package providertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TwilioMessage is one message the Twilio fake accepted.
type TwilioMessage struct {
	Sid                 string
	AccountSID          string
	To                  string
	From                string
	MessagingServiceSID string
	Body                string
	StatusCallback      string
	Received            time.Time
}

// Twilio fakes the Messages resource of Twilio's REST API 2010-04-01.
type Twilio struct {
	Script
	http  *httpFake
	sid   string
	token string
	rec   recorder[TwilioMessage]
	early sync.Map // To -> earlyStatus (see StatusBeforeAnswer)
}

type earlyStatus struct{ status, errorCode string }

// StatusBeforeAnswer makes the fake post the status callback (status,
// errorCode) of a message to `to` before it answers the request that
// created it, as real Twilio can when a carrier rejects a message at once:
// the callback then names a sid its sender has not seen yet.
func (f *Twilio) StatusBeforeAnswer(to, status, errorCode string) {
	f.early.Store(to, earlyStatus{status, errorCode})
}

var twilioE164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// NewTwilio starts a fake accepting basic auth accountSID:authToken at
// POST /2010-04-01/Accounts/{accountSID}/Messages.json.
func NewTwilio(t testing.TB, accountSID, authToken string) *Twilio {
	t.Helper()
	f := &Twilio{sid: accountSID, token: authToken}
	f.http = startHTTP(t, http.HandlerFunc(f.serve))
	return f
}

// URL is the fake's base URL, to use as the SMS channel's APIURL.
func (f *Twilio) URL() string { return f.http.srv.URL }

// Messages returns the accepted messages, oldest first.
func (f *Twilio) Messages() []TwilioMessage { return f.rec.all() }

// Wait returns the accepted messages once there are at least n.
func (f *Twilio) Wait(ctx context.Context, n int) ([]TwilioMessage, error) { return f.rec.wait(ctx, n) }

// Attempts counts every request, accepted or not.
func (f *Twilio) Attempts() int { return int(f.rec.attempts.Load()) }

// Reset forgets messages, attempts and faults.
func (f *Twilio) Reset() { f.rec.reset(); f.ClearFaults() }

func (f *Twilio) serve(w http.ResponseWriter, r *http.Request) {
	f.rec.attempts.Add(1)
	path := "/2010-04-01/Accounts/" + f.sid + "/Messages.json"
	if user, pass, ok := r.BasicAuth(); !ok || user != f.sid || pass != f.token {
		twilioError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if r.URL.Path != path {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	if r.Method != http.MethodPost {
		twilioError(w, http.StatusMethodNotAllowed, 20004, "Method not allowed")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		twilioError(w, http.StatusBadRequest, 20001, "Unable to parse request")
		return
	}
	if f.applyFault(w, r) {
		return
	}
	f.create(w, r)
}

// applyFault answers with the scripted fault, if any, and says so.
func (f *Twilio) applyFault(w http.ResponseWriter, r *http.Request) bool {
	to := r.PostForm.Get("To")
	switch f.fault(to) {
	case RateLimited:
		if v := f.retryAfterValue(); v != "" {
			w.Header().Set("Retry-After", v)
		}
		twilioError(w, http.StatusTooManyRequests, 20429, "Too Many Requests")
	case Rejected:
		// Real Twilio quotes the number: the channel must not repeat it.
		twilioError(w, http.StatusBadRequest, 21211, "The 'To' number "+to+" is not a valid phone number.")
	case Unsubscribed:
		twilioError(w, http.StatusBadRequest, 21610, "Attempt to send to unsubscribed recipient")
	case ServerError:
		writeServerError(w)
	case Hang:
		f.http.hang(r)
		writeServerError(w)
	default:
		return false
	}
	return true
}

func (f *Twilio) create(w http.ResponseWriter, r *http.Request) {
	form := r.PostForm
	m := TwilioMessage{
		Sid: "SM" + randomHex(16), AccountSID: f.sid, To: form.Get("To"), From: form.Get("From"),
		MessagingServiceSID: form.Get("MessagingServiceSid"), Body: form.Get("Body"),
		StatusCallback: form.Get("StatusCallback"), Received: time.Now(),
	}
	switch {
	case m.To == "":
		twilioError(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.")
	case m.From == "" && m.MessagingServiceSID == "":
		twilioError(w, http.StatusBadRequest, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message")
	case m.Body == "" && form.Get("MediaUrl") == "" && form.Get("ContentSid") == "":
		twilioError(w, http.StatusBadRequest, 21602, "Message body is required.")
	case !twilioE164.MatchString(m.To):
		twilioError(w, http.StatusBadRequest, 21211, "The 'To' number "+m.To+" is not a valid phone number.")
	default:
		f.rec.add(m)
		if e, ok := f.early.Load(m.To); ok && m.StatusCallback != "" {
			es := e.(earlyStatus)
			if err := f.post(r.Context(), m.StatusCallback, statusForm(m, es.status, es.errorCode)); err != nil {
				writeServerError(w) // the test sees a failed send, not a silent skip
				return
			}
		}
		writeJSON(w, http.StatusCreated, twilioResource(m))
	}
}

func twilioResource(m TwilioMessage) map[string]any {
	now := m.Received.UTC().Format(time.RFC1123Z)
	res := map[string]any{
		"sid": m.Sid, "account_sid": m.AccountSID, "to": m.To, "from": m.From, "body": m.Body,
		"status": "queued", "direction": "outbound-api", "api_version": "2010-04-01",
		"num_segments": "1", "num_media": "0", "date_created": now, "date_updated": now,
		"uri": "/2010-04-01/Accounts/" + m.AccountSID + "/Messages/" + m.Sid + ".json",
	}
	if m.MessagingServiceSID != "" {
		res["messaging_service_sid"] = m.MessagingServiceSID
	}
	return res
}

func twilioError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{
		"code": code, "message": msg, "status": status,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// message finds an accepted message by sid.
func (f *Twilio) message(sid string) (TwilioMessage, bool) {
	for _, m := range f.rec.all() {
		if m.Sid == sid {
			return m, true
		}
	}
	return TwilioMessage{}, false
}

// SendStatus posts a signed delivery status callback for message sid to the
// StatusCallback URL it was sent with, as Twilio does. errorCode is "" unless
// the status is failed or undelivered.
func (f *Twilio) SendStatus(ctx context.Context, sid, status, errorCode string) error {
	m, ok := f.message(sid)
	if !ok || m.StatusCallback == "" {
		return fmt.Errorf("providertest: no message %s with a StatusCallback", sid)
	}
	return f.post(ctx, m.StatusCallback, statusForm(m, status, errorCode))
}

// statusForm is the form of a status callback about m.
func statusForm(m TwilioMessage, status, errorCode string) url.Values {
	form := url.Values{
		"AccountSid": {m.AccountSID}, "MessageSid": {m.Sid}, "SmsSid": {m.Sid},
		"MessageStatus": {status}, "SmsStatus": {status}, "To": {m.To}, "ApiVersion": {"2010-04-01"},
	}
	if m.From != "" {
		form.Set("From", m.From)
	}
	if errorCode != "" {
		form.Set("ErrorCode", errorCode)
	}
	return form
}

// SendInbound posts a signed inbound SMS from a handset to webhookURL, as
// Twilio does for a message to our number.
func (f *Twilio) SendInbound(ctx context.Context, webhookURL, from, to, body string) error {
	sid := "SM" + randomHex(16)
	form := url.Values{
		"AccountSid": {f.sid}, "MessageSid": {sid}, "SmsSid": {sid}, "SmsMessageSid": {sid},
		"From": {from}, "To": {to}, "Body": {body}, "NumMedia": {"0"}, "ApiVersion": {"2010-04-01"},
	}
	return f.post(ctx, webhookURL, form)
}

func (f *Twilio) post(ctx context.Context, target string, form url.Values) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("providertest: callback request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", TwilioSignature(f.token, target, form))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("providertest: callback: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("providertest: callback answered %d", resp.StatusCode)
	}
	return nil
}
