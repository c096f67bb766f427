package sms_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/channels/sms"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
)

func TestValidateSignature(t *testing.T) {
	const public = "https://dispatcher.example.org/twilio/status?tenant=a"
	form := url.Values{"MessageSid": {"SM0123"}, "MessageStatus": {"delivered"}, "To": {to}, "From": {from}}
	good := providertest.TwilioSignature(authToken, public, form)

	tampered := url.Values{"MessageSid": {"SM0123"}, "MessageStatus": {"failed"}, "To": {to}, "From": {from}}
	cases := []struct {
		name  string
		token string
		url   string
		form  url.Values
		sig   string
		want  bool
	}{
		{"good", authToken, public, form, good, true},
		{"good, explicit default port", authToken, "https://dispatcher.example.org:443/twilio/status?tenant=a", form, good, true},
		{"tampered form", authToken, public, tampered, good, false},
		{"wrong URL", authToken, "https://dispatcher.example.org/twilio/status", form, good, false},
		{"internal URL instead of public", authToken, "http://127.0.0.1:8080/twilio/status?tenant=a", form, good, false},
		{"wrong token", "0000000000000000", public, form, good, false},
		{"empty signature", authToken, public, form, "", false},
		{"empty token", "", public, form, providertest.TwilioSignature("", public, form), false},
	}
	for _, c := range cases {
		if got := sms.ValidateSignature(c.token, c.url, c.form, c.sig); got != c.want {
			t.Errorf("%s: ValidateSignature = %v, want %v", c.name, got, c.want)
		}
	}
}

// callbackServer answers Twilio webhooks the way the dispatcher's HTTP
// layer would: validate against the configured public URL, then parse.
type callbackServer struct {
	*httptest.Server
	public   string
	statuses chan sms.StatusCallback
	inbound  chan sms.Inbound
}

func newCallbackServer(t *testing.T) *callbackServer {
	cs := &callbackServer{statuses: make(chan sms.StatusCallback, 4), inbound: make(chan sms.Inbound, 4)}
	mux := http.NewServeMux()
	mux.HandleFunc("/twilio/status", func(w http.ResponseWriter, r *http.Request) {
		form, err := sms.ValidateRequest(authToken, cs.public+"/twilio/status", w, r)
		if err != nil {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		s, err := sms.ParseStatusCallback(form)
		if err != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		cs.statuses <- s
	})
	mux.HandleFunc("/twilio/inbound", func(w http.ResponseWriter, r *http.Request) {
		form, err := sms.ValidateRequest(authToken, cs.public+"/twilio/inbound", w, r)
		if err != nil {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		in, err := sms.ParseInbound(form)
		if err != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		cs.inbound <- in
	})
	cs.Server = httptest.NewServer(mux)
	cs.public = cs.URL
	t.Cleanup(cs.Close)
	return cs
}

// receive waits for what the callback server got, failing the test after 5 s
// (the handler refused the request, or Twilio's fake never made it) instead
// of hanging until the package timeout.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("%s never reached the callback server (waited 5s)", what)
	}
	var zero T
	return zero
}

func TestStatusCallbackRoundTrip(t *testing.T) {
	fake := providertest.NewTwilio(t, accountSID, authToken)
	cs := newCallbackServer(t)
	ch := newChannel(t, fake, func(c *sms.Config) { c.StatusCallbackURL = cs.URL + "/twilio/status" })
	r, err := ch.Send(context.Background(), message(to))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if err := fake.SendStatus(ctx, r.ProviderID, "delivered", ""); err != nil {
		t.Fatalf("SendStatus: %v", err)
	}
	got := receive(t, cs.statuses, "the delivered status callback")
	if got != (sms.StatusCallback{MessageSid: r.ProviderID, MessageStatus: "delivered"}) || !got.Final() || got.Failed() {
		t.Errorf("callback = %+v", got)
	}

	if err := fake.SendStatus(ctx, r.ProviderID, "undelivered", "30003"); err != nil {
		t.Fatalf("SendStatus: %v", err)
	}
	if got := receive(t, cs.statuses, "the undelivered status callback"); got.ErrorCode != "30003" || !got.Failed() || !got.Final() {
		t.Errorf("callback = %+v", got)
	}

	// Validated against another public URL, Twilio's signature fails.
	cs.public = "https://elsewhere.example.org"
	if err := fake.SendStatus(ctx, r.ProviderID, "sent", ""); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("SendStatus against the wrong public URL: %v, want 403", err)
	}
}

func TestValidateRequestRejects(t *testing.T) {
	form := url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"sent"}}
	target := "https://dispatcher.example.org/twilio/status"
	cases := map[string]*http.Request{
		"unsigned": httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode())),
		"GET":      httptest.NewRequest(http.MethodGet, target+"?"+form.Encode(), nil),
		"too big":  httptest.NewRequest(http.MethodPost, target, strings.NewReader("Body="+strings.Repeat("x", 70<<10))),
	}
	for name, r := range cases {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set(sms.SignatureHeader, providertest.TwilioSignature(authToken, target, form))
		if name == "unsigned" {
			r.Header.Del(sms.SignatureHeader)
		}
		if _, err := sms.ValidateRequest(authToken, target, httptest.NewRecorder(), r); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := sms.ValidateRequest(authToken, target, httptest.NewRecorder(), r); !errors.Is(err, sms.ErrBadSignature) {
		t.Errorf("unsigned: %v, want ErrBadSignature", err)
	}
}

func TestInboundRoundTrip(t *testing.T) {
	fake := providertest.NewTwilio(t, accountSID, authToken)
	cs := newCallbackServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fake.SendInbound(ctx, cs.URL+"/twilio/inbound", to, from, "STOP"); err != nil {
		t.Fatalf("SendInbound: %v", err)
	}
	in := receive(t, cs.inbound, "the inbound SMS")
	if in.From != to || in.Body != "STOP" || !strings.HasPrefix(in.MessageSid, "SM") {
		t.Errorf("inbound = %+v", in)
	}
	for _, s := range []string{in.String(), fmt.Sprintf("%v", in), fmt.Sprintf("%#v", in), fmt.Sprint(in)} {
		if strings.Contains(s, to) || !strings.Contains(s, "+34*******01") {
			t.Errorf("printed inbound %q leaks or lacks the masked number", s)
		}
	}
}

func TestParseForms(t *testing.T) {
	if _, err := sms.ParseStatusCallback(url.Values{"MessageSid": {"SM1"}}); err == nil {
		t.Error("status without MessageStatus: want an error")
	}
	s, err := sms.ParseStatusCallback(url.Values{"SmsSid": {"SM1"}, "SmsStatus": {"sent"}})
	if err != nil || s.MessageSid != "SM1" || s.MessageStatus != "sent" || s.Final() {
		t.Errorf("legacy fields: %+v, %v", s, err)
	}
	if _, err := sms.ParseInbound(url.Values{"Body": {"hola"}}); err == nil {
		t.Error("inbound without From: want an error")
	}
}
