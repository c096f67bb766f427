package providertest_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/twilio/twilio-go/client"

	"github.com/viogen-alerts/dispatcher/channels/webhook"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
)

const (
	sid   = "AC0123456789abcdef0123456789abcdef"
	token = "f00dfeedf00dfeedf00dfeedf00dfeed"
)

func TestScriptOrder(t *testing.T) {
	f := providertest.NewPagerDuty(t)
	f.FailNext(1, providertest.ServerError)
	f.FailNext(1, providertest.RateLimited)
	f.FailFor("special", providertest.Rejected)
	want := []int{500, 400, 429, 202, 400, 202}
	keys := []string{"k", "special", "k", "k", "special", "k"}
	for i, k := range keys {
		if i == 5 {
			f.FailFor("special", providertest.None)
		}
		if got := postPD(t, f, k); got != want[i] && !(i == 5 && got == 202) {
			t.Errorf("request %d (%s): %d, want %d", i, k, got, want[i])
		}
	}
	f.FailNext(3, providertest.ServerError)
	f.ClearFaults()
	if got := postPD(t, f, "k"); got != 202 {
		t.Errorf("after ClearFaults: %d", got)
	}
	if f.Attempts() != 7 || len(f.Events()) != 3 {
		t.Errorf("attempts %d events %d", f.Attempts(), len(f.Events()))
	}
	f.Reset()
	if f.Attempts() != 0 || len(f.Events()) != 0 {
		t.Error("Reset kept records")
	}
}

func postPD(t *testing.T, f *providertest.PagerDuty, key string) int {
	t.Helper()
	body := `{"routing_key":"` + key + `","event_action":"trigger","payload":{"summary":"s","source":"x","severity":"info"}}`
	return post(t, f.URL()+"/v2/enqueue", "application/json", body, nil)
}

func post(t *testing.T, target, ctype, body string, hdr http.Header) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestPagerDutyValidates(t *testing.T) {
	f := providertest.NewPagerDuty(t)
	cases := map[string]int{
		`not json`: 400,
		`{"event_action":"trigger","payload":{"summary":"s","source":"x","severity":"info"}}`:                       400,
		`{"routing_key":"k","event_action":"page","payload":{"summary":"s","source":"x","severity":"info"}}`:        400,
		`{"routing_key":"k","event_action":"trigger"}`:                                                              400,
		`{"routing_key":"k","event_action":"trigger","payload":{"summary":"s","source":"x","severity":"extremo"}}`:  400,
		`{"routing_key":"k","event_action":"resolve"}`:                                                              400,
		`{"routing_key":"k","event_action":"resolve","dedup_key":"a-1"}`:                                            202,
		`{"routing_key":"k","event_action":"trigger","payload":{"summary":"s","source":"x","severity":"critical"}}`: 202,
	}
	for body, want := range cases {
		if got := post(t, f.URL()+"/v2/enqueue", "application/json", body, nil); got != want {
			t.Errorf("%s: %d, want %d", body, got, want)
		}
	}
	evs := f.Events()
	if len(evs) != 2 {
		t.Fatalf("events %+v", evs)
	}
	for _, ev := range evs {
		if ev.EventAction == "trigger" && len(ev.DedupKey) != 32 {
			t.Errorf("generated dedup_key %q", ev.DedupKey)
		}
	}
}

func TestTwilioChecksRequests(t *testing.T) {
	f := providertest.NewTwilio(t, sid, token)
	path := f.URL() + "/2010-04-01/Accounts/" + sid + "/Messages.json"
	form := url.Values{"To": {"+34600000001"}, "From": {"+34600000900"}, "Body": {"hola"}}
	cases := []struct {
		name       string
		target     string
		user, pass string
		form       url.Values
		status     int
		code       int
	}{
		{"no auth", path, "", "", form, 401, 20003},
		{"wrong token", path, sid, "nope", form, 401, 20003},
		{"other account", strings.Replace(path, sid, "AC"+strings.Repeat("0", 32), 1), sid, token, form, 404, 20404},
		{"no To", path, sid, token, url.Values{"From": {"+34600000900"}, "Body": {"x"}}, 400, 21604},
		{"no From", path, sid, token, url.Values{"To": {"+34600000001"}, "Body": {"x"}}, 400, 21603},
		{"no Body", path, sid, token, url.Values{"To": {"+34600000001"}, "From": {"+34600000900"}}, 400, 21602},
		{"bad To", path, sid, token, url.Values{"To": {"600000001"}, "From": {"+34600000900"}, "Body": {"x"}}, 400, 21211},
		{"good", path, sid, token, form, 201, 0},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodPost, c.target, strings.NewReader(c.form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if c.user != "" {
			req.SetBasicAuth(c.user, c.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Code   int    `json:"code"`
			Sid    string `json:"sid"`
			Status any    `json:"status"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != c.status || body.Code != c.code {
			t.Errorf("%s: %d/%d, want %d/%d", c.name, resp.StatusCode, body.Code, c.status, c.code)
		}
		if c.status == 201 && (len(body.Sid) != 34 || body.Status != "queued") {
			t.Errorf("%s: body %+v", c.name, body)
		}
	}
	if len(f.Messages()) != 1 || f.Attempts() != len(cases) {
		t.Errorf("messages %d attempts %d", len(f.Messages()), f.Attempts())
	}
}

func TestTwilioSignatureMatchesSDK(t *testing.T) {
	form := url.Values{
		"MessageSid": {"SM" + strings.Repeat("a", 32)}, "MessageStatus": {"delivered"},
		"To": {"+34600000001"}, "From": {"+34600000900"}, "AccountSid": {sid},
	}
	for _, u := range []string{
		"https://dispatcher.example.org/twilio/status",
		"https://dispatcher.example.org/twilio/status?tenant=a&x=1",
		"http://127.0.0.1:8080/cb",
	} {
		sig := providertest.TwilioSignature(token, u, form)
		params := map[string]string{}
		for k, v := range form {
			params[k] = v[0]
		}
		v := client.NewRequestValidator(token)
		if !v.Validate(u, params, sig) {
			t.Errorf("twilio-go rejects our signature for %s", u)
		}
		if v.Validate(u+"x", params, sig) {
			t.Errorf("twilio-go accepts our signature for another URL")
		}
	}
}

func TestWebhookReceiver(t *testing.T) {
	secret := []byte("receiver-secret-123456")
	f := providertest.NewWebhook(t, secret)
	body := `{"id":"i-1","alert_id":"a-1","case_ref":"c-1","severity":"info","critical":false,"subject":"s","body":"b","sent_at":"2026-03-01T12:00:00Z"}`
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	good := http.Header{
		"X-Dispatcher-Timestamp": {ts},
		"X-Dispatcher-Signature": {webhook.Sign(secret, ts, []byte(body))},
		"Idempotency-Key":        {"i-1"},
	}
	if got := post(t, f.URL()+"/x", "application/json", body, good); got != 200 {
		t.Errorf("good delivery: %d", got)
	}
	bad := good.Clone()
	bad.Set("X-Dispatcher-Signature", webhook.Sign([]byte("other-secret-000000000"), ts, []byte(body)))
	if got := post(t, f.URL()+"/x", "application/json", body, bad); got != 401 {
		t.Errorf("bad signature: %d", got)
	}
	noKey := good.Clone()
	noKey.Del("Idempotency-Key")
	if got := post(t, f.URL()+"/x", "application/json", body, noKey); got != 400 {
		t.Errorf("no Idempotency-Key: %d", got)
	}
	old := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
	stale := good.Clone()
	stale.Set("X-Dispatcher-Timestamp", old)
	stale.Set("X-Dispatcher-Signature", webhook.Sign(secret, old, []byte(body)))
	if got := post(t, f.URL()+"/x", "application/json", body, stale); got != 401 {
		t.Errorf("stale: %d", got)
	}
	f.SetTolerance(2 * time.Hour)
	if got := post(t, f.URL()+"/x", "application/json", body, stale); got != 200 {
		t.Errorf("stale within tolerance: %d", got)
	}
	d := f.Deliveries()
	if len(d) != 2 || d[0].Payload.CaseRef != "c-1" || d[0].IdempotencyKey != "i-1" || d[0].Path != "/x" {
		t.Errorf("deliveries %+v", d)
	}
}

func TestSMTPRequiresAuth(t *testing.T) {
	f := providertest.NewSMTP(t, "u", "p")
	c, err := smtp.Dial(f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("alertas@example.org", nil); err == nil {
		t.Error("MAIL without AUTH accepted")
	}
}

func TestSMTPWithoutAuth(t *testing.T) {
	f := providertest.NewSMTP(t, "", "")
	if strings.Contains(f.URL(), "@") {
		t.Errorf("URL %q has credentials", f.URL())
	}
	c, err := smtp.Dial(f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := "Subject: =?utf-8?q?Alerta_n=C3=BAmero_1?=\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nnivel extremo =C3=A9\r\n"
	if err := c.SendMail("alertas@example.org", []string{"a@example.org"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	m := f.Messages()[0]
	if m.Header("Subject") != "Alerta número 1" || m.User != "" || m.From != "alertas@example.org" {
		t.Errorf("mail %+v subject %q", m, m.Header("Subject"))
	}
	if text, err := m.Text(); err != nil || strings.TrimSpace(text) != "nivel extremo é" {
		t.Errorf("Text = %q, %v", text, err)
	}
}

func TestWaitAndClose(t *testing.T) {
	var base string
	t.Run("inner", func(t *testing.T) {
		f := providertest.NewPagerDuty(t)
		base = f.URL()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := f.Wait(ctx, 1); err == nil {
			t.Error("Wait with nothing recorded returned")
		}
		go func() {
			time.Sleep(20 * time.Millisecond)
			postPD(t, f, "k")
		}()
		ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel2()
		evs, err := f.Wait(ctx2, 1)
		if err != nil || len(evs) != 1 {
			t.Errorf("Wait = %v, %v", evs, err)
		}
		// A hanging request must not keep cleanup waiting.
		f.FailNext(1, providertest.Hang)
		go func() {
			resp, err := http.Post(f.URL()+"/v2/enqueue", "application/json", strings.NewReader(`{}`))
			if err == nil {
				resp.Body.Close()
			}
		}()
		time.Sleep(50 * time.Millisecond)
	})
	host := strings.TrimPrefix(base, "http://")
	if conn, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		conn.Close()
		t.Error("fake still listening after cleanup")
	}
}
