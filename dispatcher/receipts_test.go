package dispatcher

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/channels/sms"
	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// proxiedURL is the public callback URL of the handler mounted behind a
// (simulated) reverse proxy: requests reach it at a different r.URL.
const proxiedURL = "https://dispatcher.example.org/v1/twilio/status"

// receiptEnv is a running deliverer whose SMS carry a StatusCallback to a
// real HTTP server serving StatusHandler, so the Twilio fake's SendStatus
// posts signed callbacks to it over a socket.
type receiptEnv struct {
	*deliverEnv
	d       *Deliverer
	logs    *providertest.LogCapture
	local   string // the StatusCallback the SMS are sent with; the fake signs against it
	stop    func() // stops d
	proxied string // where the handler configured with proxiedURL is reached
}

func newReceiptEnv(t *testing.T) *receiptEnv {
	t.Helper()
	return newReceiptEnvWith(t, nil)
}

// newReceiptEnvWith is newReceiptEnv with opt applied to the deliverer
// before it runs.
func newReceiptEnvWith(t *testing.T, opt func(*Deliverer)) *receiptEnv {
	t.Helper()
	e := newDeliverEnv(t)
	srv := httptest.NewUnstartedServer(nil) // listening already: its URL is known
	base := "http://" + srv.Listener.Addr().String()
	r := &receiptEnv{deliverEnv: e, local: base + "/v1/twilio/status", proxied: base + "/internal/twilio/status"}
	smsCh, err := sms.New(sms.Config{AccountSID: testSID, AuthToken: testToken, From: "+34600000999",
		APIURL: e.prov.twilio.URL(), StatusCallbackURL: r.local, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.prov.chans["sms"] = smsCh
	r.d = newDeliverer(t, e.decideEnv, e.prov)
	r.logs = providertest.CaptureLog()
	r.d.log = r.logs.Logger.WithField("component", "deliver")
	mux := http.NewServeMux()
	mux.Handle("/v1/twilio/status", r.d.StatusHandler(testToken, r.local))
	mux.Handle("/internal/twilio/status", r.d.StatusHandler(testToken, proxiedURL))
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	if opt != nil {
		opt(r.d)
	}
	r.stop = runDeliverer(t, r.d)
	return r
}

// riskRise runs the risk-rise-to-extremo scenario in Herencia and returns
// the sid of the SMS sent to each contact, once their sends are recorded
// (so the sid → intent mapping exists).
func (r *receiptEnv) riskRise(t *testing.T, caseID string) map[string]string {
	t.Helper()
	r.run(t, ev(caseID+"-1", event.CaseOpened, caseID, 1, event.Medio), ev(caseID+"-2", event.RiskAssessed, caseID, 2, event.Extremo))
	rs := readResults(t, r.brokers, func(rs []Result) bool { return count(rs, OutcomeSent, "sms") >= 3 })
	sids := map[string]string{}
	for _, res := range rs {
		if res.Outcome == OutcomeSent && res.Channel == "sms" {
			sids[res.ContactID] = res.ProviderID
		}
	}
	for _, c := range []string{"gc-cr-guardia", "gc-cr-sala", "pl-herencia-guardia"} {
		if sids[c] == "" {
			t.Fatalf("no sms sid for %s: %v", c, sids)
		}
	}
	return sids
}

// statusForm is the form Twilio posts for message sid (To and From included).
func (r *receiptEnv) statusForm(t *testing.T, sid, status, errorCode string) url.Values {
	t.Helper()
	var to string
	for _, m := range r.prov.twilio.Messages() {
		if m.Sid == sid {
			to = m.To
		}
	}
	f := url.Values{"AccountSid": {testSID}, "MessageSid": {sid}, "SmsSid": {sid}, "MessageStatus": {status},
		"SmsStatus": {status}, "To": {to}, "From": {"+34600000999"}, "ApiVersion": {"2010-04-01"}}
	if errorCode != "" {
		f.Set("ErrorCode", errorCode)
	}
	return f
}

// post sends form to target with the given signature header ("" = none).
func post(t *testing.T, method, target string, form url.Values, signature string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if signature != "" {
		req.Header.Set(sms.SignatureHeader, signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func receiptsOf(rs []Result) []Result {
	var out []Result
	for _, r := range rs {
		if r.Outcome == OutcomeDelivered || r.Outcome == OutcomeUndeliv {
			out = append(out, r)
		}
	}
	return out
}

func emailsTo(p *providers, addr string) int {
	n := 0
	for _, m := range p.smtp.Messages() {
		if containsStr(m.To, addr) {
			n++
		}
	}
	return n
}

// waitRetriesDrained waits until the retry queue is empty.
func waitRetriesDrained(t *testing.T, d *Deliverer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := d.queue.depth(context.Background(), laneNames)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("retry queue still holds %d jobs", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Only a callback signed with our token for the configured public URL is
// accepted; anything else is 403, echoes nothing and records nothing.
func TestStatusCallbackSignature(t *testing.T) {
	r := newReceiptEnv(t)
	sids := r.riskRise(t, "C-R1")
	sid := sids["gc-cr-guardia"]
	undeliv := r.statusForm(t, sid, "undelivered", "30003")
	phone := undeliv.Get("To")
	if phone == "" {
		t.Fatal("no phone number for the sid")
	}
	tampered := r.statusForm(t, sid, "delivered", "")

	refused := []struct {
		name, target, sig string
	}{
		{"no signature", r.local, ""},
		{"wrong token", r.local, providertest.TwilioSignature("otherauthtoken000", r.local, undeliv)},
		{"signature valid for a different URL", r.local, providertest.TwilioSignature(testToken, proxiedURL, undeliv)},
		{"form changed after signing", r.local, providertest.TwilioSignature(testToken, r.local, tampered)},
		{"signed for r.URL, not the configured public URL", r.proxied, providertest.TwilioSignature(testToken, r.proxied, undeliv)},
		{"garbage", r.local, "bm90IGEgc2lnbmF0dXJl"},
	}
	for _, c := range refused {
		code, body := post(t, http.MethodPost, c.target, undeliv, c.sig)
		if code != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", c.name, code)
		}
		if strings.Contains(body, sid) || strings.Contains(body, phone) || len(body) > 20 {
			t.Errorf("%s: body %q echoes the request or says too much", c.name, body)
		}
	}
	if code, _ := post(t, http.MethodGet, r.proxied, nil, ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", code)
	}

	// The fake signs against the StatusCallback the SMS carried: accepted.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.prov.twilio.SendStatus(ctx, sid, "sent", ""); err != nil {
		t.Fatalf("intermediate status: %v", err)
	}
	if err := r.prov.twilio.SendStatus(ctx, sid, "delivered", ""); err != nil {
		t.Fatalf("delivered: %v", err)
	}
	// Behind the proxy: signed for the public URL, received at another one.
	sala := sids["gc-cr-sala"]
	f := r.statusForm(t, sala, "delivered", "")
	if code, _ := post(t, http.MethodPost, r.proxied, f, providertest.TwilioSignature(testToken, proxiedURL, f)); code/100 != 2 {
		t.Errorf("callback signed for the configured public URL: status %d, want 2xx", code)
	}

	rs := readResults(t, r.brokers, func(rs []Result) bool { return count(rs, OutcomeDelivered, "sms") >= 2 })
	got := receiptsOf(rs)
	if len(got) != 2 {
		t.Fatalf("want exactly the 2 delivered receipts, got %+v", got)
	}
	want := map[string]string{sid: "gc-cr-guardia", sala: "gc-cr-sala"}
	for _, res := range got {
		if res.Outcome != OutcomeDelivered || want[res.ProviderID] != res.ContactID || res.IntentID == "" || res.AlertID == "" || res.LatencyMS <= 0 {
			t.Errorf("delivered record: %+v", res)
		}
	}
	if n := emailsTo(r.prov, "guardia.gc-cr@example.org"); n != 0 {
		t.Errorf("a refused undelivered callback led to %d fallback emails", n)
	}
	if n, _ := r.d.queue.depth(ctx, laneNames); n != 0 {
		t.Errorf("a refused callback queued %d jobs", n)
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "bad or missing signature") || !strings.Contains(logs, sid) {
		t.Errorf("expected refusals and the receipt logged by sid:\n%s", logs)
	}
	r.logs.AssertNotContains(t, addresses(r.d.rcfg)...)
	r.logs.AssertNotContains(t, "+34600000999", "600000011", "600000012")
}

// An undelivered critical SMS falls back to the plan's email, once, even
// when Twilio posts the callback again; the pager and SMS are not resent.
func TestReceiptUndeliveredCriticalSMSFallsBackOnce(t *testing.T) {
	r := newReceiptEnv(t)
	sids := r.riskRise(t, "C-R2")
	sid := sids["gc-cr-guardia"]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.prov.twilio.SendStatus(ctx, sid, "undelivered", "30003"); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 2)
	for range 2 { // duplicates, concurrently
		go func() { errc <- r.prov.twilio.SendStatus(ctx, sid, "undelivered", "30003") }()
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Errorf("duplicate callback: %v", err)
		}
	}
	readResults(t, r.brokers, func(rs []Result) bool {
		for _, res := range rs {
			if res.Outcome == OutcomeSent && res.Channel == "email" && res.ContactID == "gc-cr-guardia" {
				return true
			}
		}
		return false
	})
	waitRetriesDrained(t, r.d)
	// A last receipt, to read every record written before it (one case
	// ref: one partition, in order).
	if err := r.prov.twilio.SendStatus(ctx, sids["gc-cr-sala"], "delivered", ""); err != nil {
		t.Fatal(err)
	}
	rs := readResults(t, r.brokers, func(rs []Result) bool { return count(rs, OutcomeDelivered, "") >= 1 })

	var undeliv []Result
	fallbacks, emails := 0, 0
	for _, res := range rs {
		if res.ContactID != "gc-cr-guardia" {
			continue
		}
		switch {
		case res.Outcome == OutcomeUndeliv:
			undeliv = append(undeliv, res)
		case res.Outcome == OutcomeFallback:
			fallbacks++
		case res.Outcome == OutcomeSent && res.Channel == "email":
			emails++
		}
	}
	if len(undeliv) != 1 {
		t.Fatalf("want one undelivered record, got %+v", undeliv)
	}
	if u := undeliv[0]; u.Channel != "sms" || u.ProviderID != sid || u.ErrorCode != "30003" || u.IntentID == "" {
		t.Errorf("undelivered record: %+v", u)
	}
	if fallbacks != 1 || emails != 1 {
		t.Errorf("want one fallback and one email record, got %d and %d", fallbacks, emails)
	}
	time.Sleep(200 * time.Millisecond)
	if n := emailsTo(r.prov, "guardia.gc-cr@example.org"); n != 1 {
		t.Errorf("fallback email sent %d times, want 1", n)
	}
	if n := len(r.prov.twilio.Messages()); n != 3 {
		t.Errorf("provider accepted %d SMS, want the original 3", n)
	}
	if n := len(r.prov.pd.Events()); n != 2 {
		t.Errorf("%d pages, want the original 2", n)
	}
	for _, m := range r.prov.smtp.Messages() {
		if containsStr(m.To, "guardia.gc-cr@example.org") {
			body, _ := m.Text()
			checkPIIFree(t, "fallback email", body)
			if !strings.Contains(body, "C-R2") {
				t.Errorf("fallback email does not name the case reference: %q", body)
			}
		}
	}
	r.logs.AssertNotContains(t, addresses(r.d.rcfg)...)
}

// A critical SMS undelivered to a contact without fallback channels
// (Policía Local on-call: pager and SMS) tells the coordinating center.
func TestReceiptUndeliveredWithoutFallbackTellsCoordinatingCenter(t *testing.T) {
	r := newReceiptEnv(t)
	sids := r.riskRise(t, "C-R3")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 2 {
		if err := r.prov.twilio.SendStatus(ctx, sids["pl-herencia-guardia"], "failed", "30008"); err != nil {
			t.Fatal(err)
		}
	}
	// The notice intents are written before the receipt's own records:
	// the notice's sends may be recorded first.
	readResults(t, r.brokers, func(rs []Result) bool {
		sent := false
		for _, res := range rs {
			sent = sent || res.Kind == KindNotice && res.Outcome == OutcomeSent && strings.HasPrefix(res.ContactID, "ses-viogen")
		}
		return sent && count(rs, OutcomeNotice, "") >= 1
	})
	// A last receipt, to read every record written before it (one case
	// ref: one partition, in order).
	if err := r.prov.twilio.SendStatus(ctx, sids["gc-cr-sala"], "delivered", ""); err != nil {
		t.Fatal(err)
	}
	rs := readResults(t, r.brokers, func(rs []Result) bool { return count(rs, OutcomeDelivered, "") >= 1 })
	notices := 0
	for _, res := range rs {
		if res.Outcome == OutcomeNotice && res.ContactID == "pl-herencia-guardia" {
			notices++
		}
		if res.Outcome == OutcomeFallback {
			t.Errorf("unexpected fallback: %+v", res)
		}
	}
	if notices != 1 || count(rs, OutcomeUndeliv, "sms") != 1 {
		t.Errorf("want one undelivered and one notice record: %d, %d", count(rs, OutcomeUndeliv, "sms"), notices)
	}
}

// A callback for a sid we never sent is answered 200 (Twilio must not
// retry it) and changes nothing.
func TestReceiptUnknownSID(t *testing.T) {
	r := newReceiptEnv(t)
	const sid = "SM00000000000000000000000000000000"
	f := url.Values{"AccountSid": {testSID}, "MessageSid": {sid}, "MessageStatus": {"undelivered"},
		"ErrorCode": {"30003"}, "To": {"+34600000011"}, "From": {"+34600000999"}}
	code, _ := post(t, http.MethodPost, r.local, f, providertest.TwilioSignature(testToken, r.local, f))
	if code != http.StatusOK {
		t.Fatalf("status %d, want 200", code)
	}
	time.Sleep(100 * time.Millisecond)
	if n, _ := r.d.queue.depth(context.Background(), laneNames); n != 0 {
		t.Errorf("%d jobs queued", n)
	}
	if a := r.prov.twilio.Attempts() + len(r.prov.smtp.Messages()) + len(r.prov.pd.Events()); a != 0 {
		t.Errorf("%d provider requests for an unknown sid", a)
	}
	keys, err := r.store.rdb.Keys(context.Background(), "case:*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("state written for an unknown sid: %v %v", keys, err)
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "unknown sms sid") || !strings.Contains(logs, sid) {
		t.Errorf("unknown sid not logged:\n%s", logs)
	}
	r.logs.AssertNotContains(t, "+34600000011", "+34600000999")
}

// The state helpers behind receipt idempotency: a step claimed by the send
// path is not taken, a receipt redoes only its own unfinished work, and a
// queued (or leased) fallback job is never re-scored.
func TestReceiptStateHelpers(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	s := &deliveryState{rdb: rdb, ttl: time.Hour}
	in := Intent{ID: "i1", CaseRef: "C-S1", ContactID: "c1", Channels: []string{"sms"}, Template: "x"}

	if ok, err := s.claimStep(ctx, in, "fallback", "send:"+in.ID); err != nil || !ok {
		t.Fatalf("send path claim: %v %v", ok, err)
	}
	if ok, err := s.claimStep(ctx, in, "fallback", "send:"+in.ID); err != nil || !ok {
		t.Fatalf("the send path re-runs its own step on a replay: %v %v", ok, err)
	}
	if ok, _ := s.claimStep(ctx, in, "fallback", "receipt:SM1:undelivered"); ok {
		t.Error("a receipt took the fallback the send path already did")
	}
	for i, want := range []bool{true, true} {
		if ok, err := s.claimStep(ctx, in, "notice", "receipt:SM1:undelivered"); err != nil || ok != want {
			t.Errorf("claim %d by the owner: %v %v", i, ok, err)
		}
	}
	if ok, _ := s.claimStep(ctx, in, "notice", "receipt:SM1:failed"); ok {
		t.Error("another receipt took a claimed notice")
	}

	const rc = "receipt:SM1:undelivered"
	for i, want := range []bool{true, true} { // pending (a failed attempt) is begun again
		if fresh, err := s.beginReceipt(ctx, in, rc, ""); err != nil || fresh != want {
			t.Errorf("begin %d: %v %v", i, fresh, err)
		}
	}
	if err := s.finishReceipt(ctx, in, rc); err != nil {
		t.Fatal(err)
	}
	if fresh, _ := s.beginReceipt(ctx, in, rc, ""); fresh {
		t.Error("a finished receipt was begun again")
	}
	if ttl := rdb.TTL(ctx, intentKey(in.CaseRef, in.ID)).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("intent hash TTL %v", ttl)
	}

	q := &jobQueue{rdb: rdb, prefix: "deliver:queue:"}
	j := retryJob{Intent: in, Channel: "email", Attempt: 1}
	now := time.Now()
	if err := q.add(ctx, j, now); err != nil {
		t.Fatal(err)
	}
	jobs, err := q.claim(ctx, "email", now, 10, time.Minute)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v %v", jobs, err)
	}
	if err := q.add(ctx, j, now); err != nil { // a redone receipt while the job is being sent
		t.Fatal(err)
	}
	if again, _ := q.claim(ctx, "email", now, 10, time.Minute); len(again) != 0 {
		t.Error("a leased job was made due again: it could be sent twice")
	}
}

// Redis unreachable: 500, so Twilio retries the callback later.
func TestReceiptStoreDownAnswers500(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	d := NewDeliverer(DeliverConfig{}, DeliverDeps{Redis: rdb, Log: quietLog()})
	srv := httptest.NewServer(d.StatusHandler(testToken, proxiedURL))
	t.Cleanup(srv.Close)
	f := url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"undelivered"}, "To": {"+34600000011"}}
	code, body := post(t, http.MethodPost, srv.URL, f, providertest.TwilioSignature(testToken, proxiedURL, f))
	if code != http.StatusInternalServerError || strings.Contains(body, "+34600000011") {
		t.Errorf("status %d %q, want 500", code, body)
	}
	if n := counterValue(t, d.metrics.receiptFailures); n != 1 {
		t.Errorf("dispatcher_sms_receipt_failures_total = %v after a 500, want 1", n)
	}
	// An intermediate status needs no store.
	f.Set("MessageStatus", "sent")
	if code, _ := post(t, http.MethodPost, srv.URL, f, providertest.TwilioSignature(testToken, proxiedURL, f)); code != http.StatusNoContent {
		t.Errorf("intermediate status: %d, want 204", code)
	}
}

// receiptCheckEnv is a receiptEnv whose deliverer checks receipts after
// 5 minutes on a clock the test moves.
func receiptCheckEnv(t *testing.T) (*receiptEnv, *fakeNow) {
	t.Helper()
	clock := newFakeNow(time.Now())
	r := newReceiptEnvWith(t, func(d *Deliverer) {
		d.cfg.ReceiptTimeout = 5 * time.Minute
		d.now = clock.Now
	})
	return r, clock
}

// waitQueued waits until the delivery queue holds exactly the receipt
// checks of n SMS and nothing else (every send done).
func waitQueued(t *testing.T, d *Deliverer, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	waitFor(t, ctx, func() bool {
		got, err := d.queue.depth(ctx, laneNames)
		if err != nil || got != int64(n) {
			return false
		}
		checks := 0
		for _, k := range d.queue.set("sms").keys() {
			ms, err := d.queue.rdb.ZRange(ctx, k, 0, -1).Result()
			if err != nil {
				return false
			}
			for _, m := range ms {
				if strings.Contains(m, `"check":"receipt"`) {
					checks++
				}
			}
		}
		return checks == n
	})
}

// An accepted SMS with no final receipt within the timeout is marked
// unconfirmed (intent state and an audit record); a critical one falls
// back to its plan's email exactly once; one without fallback channels is
// only marked; one delivered before the deadline gets nothing, checked
// after its check job has run (the queue is empty). A receipt arriving
// after the deadline is still recorded.
func TestReceiptMissingPastTimeoutMarksUnconfirmedAndFallsBack(t *testing.T) {
	r, clock := receiptCheckEnv(t)
	sids := r.riskRise(t, "C-RU1")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	// Before the deadline: sala's SMS is delivered, which cancels its check.
	if err := r.prov.twilio.SendStatus(ctx, sids["gc-cr-sala"], "delivered", ""); err != nil {
		t.Fatal(err)
	}
	// Every send is done; three checks wait in Redis, not in memory.
	waitQueued(t, r.d, 3)
	if n := emailsTo(r.prov, "guardia.gc-cr@example.org"); n != 0 {
		t.Fatalf("%d fallback emails before the deadline", n)
	}

	clock.Add(5*time.Minute + time.Second)
	waitRetriesDrained(t, r.d) // every check has run, and the fallback it queued
	if n := emailsTo(r.prov, "guardia.gc-cr@example.org"); n != 1 {
		t.Errorf("fallback email sent %d times, want 1", n)
	}
	if n := emailsTo(r.prov, "sala.gc-cr@example.org"); n != 0 {
		t.Errorf("a delivered SMS fell back (%d emails)", n)
	}
	if n := len(r.prov.twilio.Messages()); n != 3 {
		t.Errorf("provider accepted %d SMS, want the original 3", n)
	}

	// A late receipt is still recorded; it also marks the end of what
	// was published for the case (one partition, in order).
	if err := r.prov.twilio.SendStatus(ctx, sids["pl-herencia-guardia"], "delivered", ""); err != nil {
		t.Fatal(err)
	}
	rs := readResults(t, r.brokers, func(rs []Result) bool { return count(rs, OutcomeDelivered, "sms") >= 2 })
	unconfirmed := map[string]int{}
	fallbacks := map[string]int{}
	for _, res := range rs {
		switch res.Outcome {
		case OutcomeUnconfirmed:
			unconfirmed[res.ContactID]++
			if res.Channel != "sms" || res.ProviderID != sids[res.ContactID] || res.IntentID == "" || res.AlertID == "" {
				t.Errorf("unconfirmed record: %+v", res)
			}
		case OutcomeFallback:
			fallbacks[res.ContactID]++
		}
	}
	if unconfirmed["gc-cr-guardia"] != 1 || unconfirmed["pl-herencia-guardia"] != 1 || len(unconfirmed) != 2 {
		t.Errorf("unconfirmed records by contact: %v, want gc-cr-guardia and pl-herencia-guardia once each", unconfirmed)
	}
	if fallbacks["gc-cr-guardia"] != 1 || len(fallbacks) != 1 {
		t.Errorf("fallback records by contact: %v, want gc-cr-guardia once", fallbacks)
	}
	// The mark is durable in the intent's delivery state.
	for contact, res := range map[string]bool{"gc-cr-guardia": true, "pl-herencia-guardia": true, "gc-cr-sala": false} {
		in, err := r.d.state.intentBySID(ctx, sids[contact])
		if err != nil || in == nil {
			t.Fatalf("%s: %v", contact, err)
		}
		st, err := r.d.state.states(ctx, *in)
		if err != nil {
			t.Fatal(err)
		}
		if _, marked := st["unconfirmed"]; marked != res {
			t.Errorf("%s: unconfirmed in the intent state = %v, want %v (%v)", contact, marked, res, st)
		}
	}
	r.logs.AssertNotContains(t, addresses(r.d.rcfg)...)
}

// A critical SMS left unconfirmed falls back; when its fallback channel
// then fails too, the coordinating center is told, once, as for an
// undelivered SMS (it used to tell nobody). The duty room (gc-cr-sala) is
// reached by SMS only, with email as its fallback; the two guards have a
// pager as well, so an unconfirmed SMS of theirs needs no notice.
func TestReceiptUnconfirmedWhoseFallbackFailsTellsCoordinatingCenter(t *testing.T) {
	r, clock := receiptCheckEnv(t)
	r.prov.smtp.FailFor("sala.gc-cr@example.org", providertest.Rejected)
	sids := r.riskRise(t, "C-RU4")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for _, c := range []string{"gc-cr-guardia", "pl-herencia-guardia"} {
		if err := r.prov.twilio.SendStatus(ctx, sids[c], "delivered", ""); err != nil {
			t.Fatal(err)
		}
	}
	waitQueued(t, r.d, 3) // every send done: the three receipt checks wait in Redis
	clock.Add(5*time.Minute + time.Second)
	rs := readResults(t, r.brokers, func(rs []Result) bool {
		told := false
		for _, res := range rs {
			told = told || res.Kind == KindNotice && res.Outcome == OutcomeSent && strings.HasPrefix(res.ContactID, "ses-viogen")
		}
		return told && count(rs, OutcomeNotice, "") >= 1
	})
	// A late receipt, to read every record written before it (one case
	// ref: one partition, in order).
	if err := r.prov.twilio.SendStatus(ctx, sids["gc-cr-sala"], "delivered", ""); err != nil {
		t.Fatal(err)
	}
	rs = readResults(t, r.brokers, func(rs []Result) bool { return count(rs, OutcomeDelivered, "sms") >= 3 })
	notices := map[string]int{}
	for _, res := range rs {
		if res.Outcome == OutcomeNotice {
			notices[res.ContactID]++
		}
	}
	if notices["gc-cr-sala"] != 1 || len(notices) != 1 || count(rs, OutcomeUnconfirmed, "sms") != 1 || count(rs, OutcomeFallback, "") != 1 {
		t.Errorf("notice records by contact %v (want gc-cr-sala once), unconfirmed %d, fallback %d (want 1 each)",
			notices, count(rs, OutcomeUnconfirmed, "sms"), count(rs, OutcomeFallback, ""))
	}
	if n := emailsTo(r.prov, "sala.gc-cr@example.org"); n != 0 {
		t.Errorf("the rejected fallback email was accepted %d times", n)
	}
	r.logs.AssertNotContains(t, addresses(r.d.rcfg)...)
}

// Which channel states leave an intent unreached (its fallback and notice
// follow): a failed channel, and for a critical intent an SMS marked
// unconfirmed with no receipt saying it was delivered.
func TestUnreachedCountsAnUnconfirmedCriticalSMS(t *testing.T) {
	smsOnly := Intent{Critical: true, Channels: []string{"sms"}}
	for _, tc := range []struct {
		name   string
		in     Intent
		states map[string]string
		want   bool
	}{
		{"failed", smsOnly, map[string]string{"sms": stateFailed}, true},
		{"sent", smsOnly, map[string]string{"sms": stateSent}, false},
		{"sent, unconfirmed", smsOnly, map[string]string{"sms": stateSent, "unconfirmed": "unconfirmed:SM1"}, true},
		{"unconfirmed, not critical", Intent{Channels: []string{"sms"}}, map[string]string{"sms": stateSent, "unconfirmed": "unconfirmed:SM1"}, false},
		{"unconfirmed, then delivered late", smsOnly, map[string]string{"sms": stateSent, "unconfirmed": "unconfirmed:SM1", "receipt:SM1:delivered": receiptDone}, false},
		{"unconfirmed, an undelivered receipt pending", smsOnly, map[string]string{"sms": stateSent, "unconfirmed": "unconfirmed:SM1", "receipt:SM1:undelivered": "pending:30003"}, true},
		{"unconfirmed sms, the pager sent", Intent{Critical: true, Channels: []string{"sms", "pager"}}, map[string]string{"sms": stateSent, "pager": stateSent, "unconfirmed": "unconfirmed:SM1"}, false},
		{"unconfirmed, the email failed", Intent{Critical: true, Channels: []string{"sms", "email"}}, map[string]string{"sms": stateSent, "email": stateFailed, "unconfirmed": "unconfirmed:SM1"}, true},
	} {
		if got := unreached(tc.states, tc.in); got != tc.want {
			t.Errorf("%s: unreached %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A non-critical SMS without a receipt is only marked unconfirmed: no
// fallback. The checks live in Redis: a deliverer stopped before they
// are due and a new one started in its place runs them.
func TestReceiptMissingNonCriticalOnlyMarkedAcrossRestart(t *testing.T) {
	r, clock := receiptCheckEnv(t)
	r.run(t, ev("C-RU2-1", event.CaseOpened, "C-RU2", 1, event.Medio), ev("C-RU2-2", event.RiskAssessed, "C-RU2", 2, event.Alto))
	rs := readResults(t, r.brokers, func(rs []Result) bool { return count(rs, OutcomeSent, "sms") >= 2 })
	sids := map[string]string{}
	for _, res := range rs {
		if res.Outcome == OutcomeSent && res.Channel == "sms" {
			sids[res.ContactID] = res.ProviderID
		}
	}
	if sids["gc-cr-guardia"] == "" || len(sids) != 2 {
		t.Fatalf("sms sent: %v", sids)
	}
	waitQueued(t, r.d, 2)
	r.stop()
	emailsBefore := len(r.prov.smtp.Messages())

	d2 := newDeliverer(t, r.decideEnv, r.prov)
	d2.cfg.ReceiptTimeout, d2.now, d2.log = 5*time.Minute, clock.Now, r.logs.Logger.WithField("component", "deliver")
	runDeliverer(t, d2)
	clock.Add(5*time.Minute + time.Second)
	waitRetriesDrained(t, d2)
	if n := len(r.prov.smtp.Messages()); n != emailsBefore {
		t.Errorf("%d emails after the checks, %d before: a non-critical SMS fell back", n, emailsBefore)
	}

	// A late receipt marks the end of what was published for the case.
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	mux := http.NewServeMux()
	mux.Handle("/v1/twilio/status", d2.StatusHandler(testToken, r.local))
	f := r.statusForm(t, sids["gc-cr-guardia"], "delivered", "")
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/twilio/status", strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(sms.SignatureHeader, providertest.TwilioSignature(testToken, r.local, f))
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	if w.Code/100 != 2 {
		t.Fatalf("late receipt: %d", w.Code)
	}
	rs = readResults(t, r.brokers, func(rs []Result) bool { return count(rs, OutcomeDelivered, "sms") >= 1 })
	unconfirmed := map[string]int{}
	for _, res := range rs {
		switch res.Outcome {
		case OutcomeUnconfirmed:
			unconfirmed[res.ContactID]++
		case OutcomeFallback, OutcomeNotice:
			t.Errorf("a non-critical unconfirmed SMS led to %s: %+v", res.Outcome, res)
		}
	}
	if unconfirmed["gc-cr-guardia"] != 1 || unconfirmed["pl-herencia-guardia"] != 1 {
		t.Errorf("unconfirmed records by contact: %v, want one each", unconfirmed)
	}
}

// A status callback whose handling failed after it began (Redis or Kafka
// failed; the handler answered 500, which Twilio does not retry by
// default) left its receipt pending. The receipt check counted any
// receipt field as received and did nothing, so a critical SMS reported
// undelivered never fell back. The check now handles the pending receipt
// itself: the undelivered record and the fallback e-mail, once.
func TestReceiptCheckFinishesAFailedCallback(t *testing.T) {
	r, clock := receiptCheckEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	sids, in := failedCallbackChecked(t, ctx, r, clock, "C-RP1")
	sid := sids["gc-cr-guardia"]
	// A last receipt, to read every record written before it (one case
	// ref: one partition, in order).
	if err := r.prov.twilio.SendStatus(ctx, sids["gc-cr-sala"], "delivered", ""); err != nil {
		t.Fatal(err)
	}
	rs := readResults(t, r.brokers, func(rs []Result) bool { return count(rs, OutcomeDelivered, "sms") >= 1 })
	got := map[string]int{}
	for _, res := range rs {
		if res.ContactID == "gc-cr-guardia" {
			got[res.Outcome]++
			if res.Outcome == OutcomeUndeliv && res.ErrorCode != "30003" {
				t.Errorf("undelivered record without the callback's error code: %+v", res)
			}
		}
	}
	if got[OutcomeUndeliv] != 1 || got[OutcomeFallback] != 1 || got[OutcomeUnconfirmed] != 0 {
		t.Errorf("records of the undelivered SMS by outcome: %v, want one undelivered and one fallback, none unconfirmed", got)
	}
	st, err := r.d.state.states(ctx, *in)
	if err != nil {
		t.Fatal(err)
	}
	if st["receipt:"+sid+":undelivered"] != receiptDone {
		t.Errorf("receipt field after the check: %q, want %q", st["receipt:"+sid+":undelivered"], receiptDone)
	}
}

// Twilio can post a final status before it answers the send (a carrier
// refusing a number at once): the callback names a sid not recorded yet.
// It is kept and applied once the send is recorded, so the critical SMS
// falls back to e-mail at once, not only after the receipt check (off
// here), and a non-critical one is not left looking sent.
func TestReceiptBeforeTheSendIsRecordedIsApplied(t *testing.T) {
	r := newReceiptEnv(t)
	phone, err := r.d.dir.Address("gc-cr-guardia", "sms")
	if err != nil {
		t.Fatal(err)
	}
	r.prov.twilio.StatusBeforeAnswer(phone, "undelivered", "30003")
	r.run(t, ev("C-R9-1", event.CaseOpened, "C-R9", 1, event.Medio), ev("C-R9-2", event.RiskAssessed, "C-R9", 2, event.Extremo))
	// The undelivered record and the fallback e-mail's are written by two
	// goroutines: either may come first.
	rs := readResults(t, r.brokers, func(rs []Result) bool {
		email := false
		for _, res := range rs {
			email = email || res.Outcome == OutcomeSent && res.Channel == "email" && res.ContactID == "gc-cr-guardia"
		}
		return email && count(rs, OutcomeUndeliv, "sms") >= 1
	})
	var undeliv []Result
	for _, res := range rs {
		if res.Outcome == OutcomeUndeliv && res.ContactID == "gc-cr-guardia" {
			undeliv = append(undeliv, res)
		}
	}
	if len(undeliv) != 1 || undeliv[0].ErrorCode != "30003" || undeliv[0].ProviderID == "" {
		t.Fatalf("undelivered records %+v, want the early callback's one", undeliv)
	}
	sid := undeliv[0].ProviderID
	ctx := context.Background()
	if n := r.store.rdb.Exists(ctx, earlyReceiptKey(sid)).Val(); n != 0 {
		t.Error("the early status is still kept after it was applied")
	}
	if !strings.Contains(r.logs.String(), "unknown sms sid") {
		t.Error("the early callback was not logged")
	}
	r.logs.AssertNotContains(t, addresses(r.d.rcfg)...)
}

// An early status whose first application failed (the job then runs
// again) is applied by the re-run, which finds the send's marker; also
// when the sid mapping, written beside the marker as a command of its own,
// is what failed (the re-run writes it again).
func TestEarlyReceiptAppliedOnReplay(t *testing.T) {
	r := newReceiptEnv(t)
	sid := r.riskRise(t, "C-R10")["gc-cr-guardia"]
	ctx := context.Background()
	in, err := r.d.state.intentBySID(ctx, sid)
	if err != nil || in == nil {
		t.Fatalf("intent of %s: %v %v", sid, in, err)
	}
	if err := r.store.rdb.Del(ctx, smsKey(sid)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.d.state.parkEarlyReceipt(ctx, sms.StatusCallback{MessageSid: sid, MessageStatus: "failed", ErrorCode: "30008"}); err != nil {
		t.Fatal(err)
	}
	q, err := newQueued(retryJob{Intent: *in, Channel: "sms", Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.d.attempt(ctx, q)
	if err != nil || len(f.results) != 1 || f.results[0].Outcome != OutcomeSent {
		t.Fatalf("re-run: %+v %v, want the earlier send's record", f, err)
	}
	// The undelivered record and the fallback e-mail's are written by two
	// goroutines: either may come first.
	rs := readResults(t, r.brokers, func(rs []Result) bool {
		email := false
		for _, res := range rs {
			email = email || res.Outcome == OutcomeSent && res.Channel == "email" && res.ContactID == "gc-cr-guardia"
		}
		return email && count(rs, OutcomeUndeliv, "sms") >= 1
	})
	if n := count(rs, OutcomeUndeliv, "sms"); n != 1 {
		t.Errorf("%d undelivered records, want 1", n)
	}
	if n := len(r.prov.twilio.Messages()); n != 3 {
		t.Errorf("provider accepted %d SMS, want the original 3", n)
	}
	if got, err := r.d.state.intentBySID(ctx, sid); err != nil || got == nil || got.ID != in.ID {
		t.Errorf("sid mapping after the re-run: %v %v", got, err)
	}
}

// With SMS_RECEIPT_TIMEOUT=0 and status callbacks on, a callback that
// failed half-way (answered 500, not retried by Twilio) is still finished
// by a check after ReceiptSweep: the critical SMS's fallback e-mail goes,
// once. Nothing is marked unconfirmed: that check is off.
func TestReceiptSweepFinishesAFailedCallbackWithTheTimeoutOff(t *testing.T) {
	r, clock := receiptSweepEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	sids, _ := failedCallbackChecked(t, ctx, r, clock, "C-RS1")
	if err := r.prov.twilio.SendStatus(ctx, sids["gc-cr-sala"], "delivered", ""); err != nil {
		t.Fatal(err)
	}
	rs := readResults(t, r.brokers, func(rs []Result) bool { return count(rs, OutcomeDelivered, "sms") >= 1 })
	if n := count(rs, OutcomeUnconfirmed, ""); n != 0 {
		t.Errorf("%d unconfirmed records with the receipt timeout off", n)
	}
	if n := count(rs, OutcomeUndeliv, "sms"); n != 1 {
		t.Errorf("%d undelivered records, want the finished callback's", n)
	}
	other, err := r.d.state.intentBySID(ctx, sids["pl-herencia-guardia"])
	if err != nil || other == nil {
		t.Fatalf("intent of the other sms: %v", err)
	}
	if st, _ := r.d.state.states(ctx, *other); st["unconfirmed"] != "" {
		t.Errorf("an SMS without receipt was marked unconfirmed: %v", st)
	}
}

// A status parked early whose callback then failed (answered 500, not
// retried by Twilio) after the send path had looked is applied by the
// receipt check, here the sweep with the timeout off (from the third
// independent review): the critical SMS falls back, once.
func TestReceiptCheckAppliesAParkedStatus(t *testing.T) {
	r, clock := receiptSweepEnv(t)
	sids := r.riskRise(t, "C-RV3")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	sid := sids["gc-cr-guardia"]
	if err := r.d.state.parkEarlyReceipt(ctx, sms.StatusCallback{MessageSid: sid, MessageStatus: "undelivered", ErrorCode: "30003"}); err != nil {
		t.Fatal(err)
	}
	waitQueued(t, r.d, 3)
	clock.Add(5*time.Minute + time.Second)
	waitRetriesDrained(t, r.d)
	if n := emailsTo(r.prov, "guardia.gc-cr@example.org"); n != 1 {
		t.Errorf("fallback email sent %d times after the check, want 1", n)
	}
	if n := r.store.rdb.Exists(ctx, earlyReceiptKey(sid)).Val(); n != 0 {
		t.Error("the parked status is still kept after the check")
	}
}

// receiptSweepEnv is receiptCheckEnv with SMS_RECEIPT_TIMEOUT=0 and status
// callbacks on: the check only finishes failed callbacks.
func receiptSweepEnv(t *testing.T) (*receiptEnv, *fakeNow) {
	t.Helper()
	clock := newFakeNow(time.Now())
	r := newReceiptEnvWith(t, func(d *Deliverer) {
		d.cfg.ReceiptTimeout, d.cfg.ReceiptSweep = 0, 5*time.Minute
		d.now = clock.Now
	})
	return r, clock
}

// failedCallbackChecked runs the risk-rise scenario, leaves gc-cr-guardia's
// SMS with an undelivered callback begun and failed (its receipt begun,
// nothing else), runs the checks and expects the fallback e-mail once. It
// returns the sids and that SMS's intent.
func failedCallbackChecked(t *testing.T, ctx context.Context, r *receiptEnv, clock *fakeNow, caseID string) (map[string]string, *Intent) {
	t.Helper()
	sids := r.riskRise(t, caseID)
	sid := sids["gc-cr-guardia"]
	in, err := r.d.state.intentBySID(ctx, sid)
	if err != nil || in == nil {
		t.Fatalf("intent of %s: %v", sid, err)
	}
	if fresh, err := r.d.state.beginReceipt(ctx, *in, "receipt:"+sid+":undelivered", "30003"); err != nil || !fresh {
		t.Fatalf("begin receipt: %v %v", fresh, err)
	}
	waitQueued(t, r.d, 3)
	clock.Add(5*time.Minute + time.Second)
	waitRetriesDrained(t, r.d)
	if n := emailsTo(r.prov, "guardia.gc-cr@example.org"); n != 1 {
		t.Errorf("fallback email sent %d times after the check, want 1", n)
	}
	return sids, in
}
