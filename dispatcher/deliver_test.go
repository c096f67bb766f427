package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/channels"
	"github.com/viogen-alerts/dispatcher/channels/email"
	"github.com/viogen-alerts/dispatcher/channels/pager"
	"github.com/viogen-alerts/dispatcher/channels/sms"
	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
	"github.com/viogen-alerts/dispatcher/rules"
	"github.com/viogen-alerts/dispatcher/templates"
)

const (
	testSID   = "AC0123456789abcdef0123456789abcdef"
	testToken = "testauthtoken0000"
	testKey   = "R0UT1NGKEY0000000000000000000000" // synthetic pager routing key
)

// providers are the fake SMS, email and pager services of one test.
type providers struct {
	twilio *providertest.Twilio
	smtp   *providertest.SMTP
	pd     *providertest.PagerDuty
	chans  map[string]channels.Channel
}

func startProviders(t *testing.T) *providers { return startProvidersTB(t) }

func startProvidersTB(t testing.TB) *providers {
	t.Helper()
	p := &providers{
		twilio: providertest.NewTwilio(t, testSID, testToken),
		smtp:   providertest.NewSMTP(t, "relay", "relay-pass"),
		pd:     providertest.NewPagerDuty(t),
	}
	smsCh, err := sms.New(sms.Config{AccountSID: testSID, AuthToken: testToken, From: "+34600000999", APIURL: p.twilio.URL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mailCh, err := email.New(email.Config{URL: "smtp://relay:relay-pass@" + p.smtp.Addr(), From: "alertas@example.org", TLS: email.TLSNone, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pdCh, err := pager.New(pager.Config{URL: p.pd.URL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.chans = map[string]channels.Channel{"sms": smsCh, "email": mailCh, "pager": pdCh}
	return p
}

type deliverEnv struct {
	*decideEnv
	prov *providers
}

func newDeliverer(t *testing.T, e *decideEnv, p *providers) *Deliverer {
	return newDelivererTB(t, e, p)
}

func newDelivererTB(t testing.TB, e *decideEnv, p *providers) *Deliverer {
	t.Helper()
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	return NewDeliverer(DeliverConfig{Brokers: e.brokers, Retry: Backoff{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond},
		Poll: 20 * time.Millisecond, Lease: 2 * time.Second}, DeliverDeps{
		Rules: e.d.Engine.Config(), Templates: tmpl, Channels: p.chans,
		Directory: ConfigDirectory{Cfg: e.d.Engine.Config(), Secret: func(string) string { return testKey }},
		Redis:     e.store.rdb, Writer: e.d.Writer, Log: quietLog(),
	})
}

// runDeliverer runs d until the test ends (or stop is called).
func runDeliverer(t *testing.T, d *Deliverer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("deliverer: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newDeliverEnv(t *testing.T) *deliverEnv {
	t.Helper()
	_, brokers := testenv.StartKafka(t, 2, TopicIntents, TopicResults)
	e := newDecideEnvOn(t, brokers)
	return &deliverEnv{decideEnv: e, prov: startProviders(t)}
}

// readResults reads the results topic until cond holds.
func readResults(t *testing.T, brokers []string, cond func([]Result) bool) []Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, GroupTopics: []string{TopicResults}, GroupID: fmt.Sprintf("results-%d", time.Now().UnixNano()),
		MaxWait: 100 * time.Millisecond, StartOffset: kafka.FirstOffset})
	defer r.Close()
	var out []Result
	for !cond(out) {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			dumpGoroutines(t, "read results")
			t.Fatalf("read results (have %d): %v", len(out), err)
		}
		var res Result
		if err := json.Unmarshal(m.Value, &res); err != nil {
			t.Fatal(err)
		}
		out = append(out, res)
	}
	return out
}

// readAllResults reads the results topic to its current end.
func readAllResults(t *testing.T, brokers []string) []Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	n := topicSize(ctx, t, brokers, TopicResults)
	return readResults(t, brokers, func(rs []Result) bool { return int64(len(rs)) >= n })
}

func count(rs []Result, outcome, channel string) int {
	n := 0
	for _, r := range rs {
		if r.Outcome == outcome && (channel == "" || r.Channel == channel) {
			n++
		}
	}
	return n
}

var piiPattern = regexp.MustCompile(`\+?\d{9,}|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]{2,}|(?i)violencia de g[eé]nero|v[ií]ctima|agresor`)

func checkPIIFree(t *testing.T, what, text string) {
	t.Helper()
	if m := piiPattern.FindString(text); m != "" {
		t.Errorf("%s carries personal-looking data %q: %q", what, m, text)
	}
}

func sortedTo(ms []providertest.TwilioMessage) []string {
	var to []string
	for _, m := range ms {
		to = append(to, m.To)
	}
	sort.Strings(to)
	return to
}

// Events into Kafka → decide → intents → deliver → the right SMS, email
// and pager requests with PII-free bodies, and an audit record each.
func TestDeliverRiskRiseEndToEnd(t *testing.T) {
	e := newDeliverEnv(t)
	runDeliverer(t, newDeliverer(t, e.decideEnv, e.prov))
	e.run(t, ev("x1", event.CaseOpened, "C-E1", 1, event.Medio), ev("x2", event.RiskAssessed, "C-E1", 2, event.Extremo))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	smsMsgs, err := e.prov.twilio.Wait(ctx, 3)
	if err != nil {
		t.Fatalf("sms: %v", err)
	}
	if got, want := strings.Join(sortedTo(smsMsgs), ","), "+34600000011,+34600000012,+34600000021"; got != want {
		t.Errorf("sms to %s, want %s", got, want)
	}
	for _, m := range smsMsgs {
		checkPIIFree(t, "sms body", m.Body)
		if !strings.Contains(m.Body, "C-E1") || m.From != "+34600000999" {
			t.Errorf("sms: %+v", m)
		}
	}
	pages, err := e.prov.pd.Wait(ctx, 2)
	if err != nil {
		t.Fatalf("pager: %v", err)
	}
	for _, p := range pages {
		if p.EventAction != "trigger" || p.RoutingKey != testKey || p.Payload.Severity != "critical" || len(p.DedupKey) != 16 {
			t.Errorf("page: %+v", p)
		}
		checkPIIFree(t, "pager summary", p.Payload.Summary)
	}
	mails, err := e.prov.smtp.Wait(ctx, 1)
	if err != nil {
		t.Fatalf("email: %v", err)
	}
	if len(mails[0].To) != 1 || mails[0].To[0] != "coordinacion.imcm@example.org" {
		t.Errorf("email to %v", mails[0].To)
	}
	body, _ := mails[0].Text()
	checkPIIFree(t, "email body", strings.ReplaceAll(body, "coordinacion.imcm@example.org", ""))
	rs := readResults(t, e.brokers, func(rs []Result) bool { return count(rs, OutcomeSent, "") >= 6 })
	addrs := addresses(e.d.Engine.Config())
	for _, r := range rs {
		if r.ContactID == "" || r.AlertID == "" || r.ProviderID == "" || r.LatencyMS <= 0 {
			t.Errorf("result: %+v", r)
		}
		b, _ := json.Marshal(r)
		for _, a := range addrs {
			if strings.Contains(string(b), a) {
				t.Errorf("audit record names an address: %s", b)
			}
		}
	}
}

// A 429 with Retry-After and a 500 are retried later without blocking;
// the message is sent once it goes through.
func TestDeliverRetriesTransientFailures(t *testing.T) {
	e := newDeliverEnv(t)
	e.prov.twilio.FailFor("+34600000012", providertest.RateLimited)
	e.prov.pd.FailNext(1, providertest.ServerError)
	runDeliverer(t, newDeliverer(t, e.decideEnv, e.prov))
	e.run(t, ev("y1", event.CaseOpened, "C-E2", 1, event.Medio), ev("y2", event.RiskAssessed, "C-E2", 2, event.Extremo))
	// The other notifications are not held up by the one being retried.
	readResults(t, e.brokers, func(rs []Result) bool {
		return count(rs, OutcomeRetry, "sms") >= 1 && count(rs, OutcomeSent, "sms") >= 2
	})
	e.prov.twilio.FailFor("+34600000012", providertest.None) // the provider recovers
	rs := readResults(t, e.brokers, func(rs []Result) bool {
		return count(rs, OutcomeSent, "sms") >= 3 && count(rs, OutcomeSent, "pager") >= 2
	})
	if count(rs, OutcomeRetry, "sms") == 0 || count(rs, OutcomeRetry, "pager") != 1 {
		t.Errorf("want retries recorded: sms %d pager %d", count(rs, OutcomeRetry, "sms"), count(rs, OutcomeRetry, "pager"))
	}
	for _, r := range rs {
		if r.Outcome == OutcomeRetry && r.Channel == "sms" && (r.ErrorCode != "20429" || r.ErrorClass != "retryable") {
			t.Errorf("retry record: %+v", r)
		}
	}
	per := map[string]int{}
	sids := map[string]string{}
	for _, m := range e.prov.twilio.Messages() {
		per[m.To]++
		sids[m.Sid] = m.To
	}
	for to, n := range per {
		if n != 1 {
			t.Errorf("%s... got %d accepted SMS, want 1", to[:6], n)
		}
	}
	if per["+34600000012"] != 1 {
		t.Fatal("the number that got the 429 never had its SMS accepted")
	}
	// Its audit record is the provider's acceptance, after the retries.
	var audited bool
	for _, r := range rs {
		if r.Outcome == OutcomeSent && r.Channel == "sms" && r.ContactID == "gc-cr-sala" {
			audited = sids[r.ProviderID] == "+34600000012" && r.Attempt > 1
		}
	}
	if !audited {
		t.Error("no sent record carrying the accepted message's sid after a retried attempt")
	}
}

// An invalid number (Twilio 21211) is permanent: the plan's fallback
// channel (email) is used for that contact.
func TestDeliverPermanentFailureFallsBack(t *testing.T) {
	e := newDeliverEnv(t)
	e.prov.twilio.FailFor("+34600000012", providertest.Rejected)
	runDeliverer(t, newDeliverer(t, e.decideEnv, e.prov))
	e.run(t, ev("z1", event.CaseOpened, "C-E3", 1, event.Medio), ev("z2", event.RiskAssessed, "C-E3", 2, event.Extremo))
	rs := readResults(t, e.brokers, func(rs []Result) bool {
		return count(rs, OutcomeFallback, "") >= 1 && count(rs, OutcomeSent, "email") >= 2
	})
	var failed *Result
	for i, r := range rs {
		if r.Outcome == OutcomeFailed {
			failed = &rs[i]
		}
	}
	if failed == nil || failed.ContactID != "gc-cr-sala" || failed.ErrorCode != "21211" || failed.ErrorClass != "permanent" {
		t.Fatalf("failed record: %+v", failed)
	}
	var to []string
	for _, m := range e.prov.smtp.Messages() {
		to = append(to, m.To...)
	}
	if !containsStr(to, "sala.gc-cr@example.org") {
		t.Errorf("fallback email not sent to the duty room: %v", to)
	}
}

// Every channel of a target failing permanently tells the coordinating
// center (the configured fallback agency).
func TestDeliverUnreachableTargetNotifiesCoordinatingCenter(t *testing.T) {
	e := newDeliverEnv(t)
	e.prov.twilio.FailFor("+34600000012", providertest.Rejected)
	e.prov.smtp.FailFor("sala.gc-cr@example.org", providertest.Rejected)
	d := newDeliverer(t, e.decideEnv, e.prov)
	runDeliverer(t, d)
	e.run(t, ev("w1", event.CaseOpened, "C-E4", 1, event.Medio), ev("w2", event.RiskAssessed, "C-E4", 2, event.Extremo))
	readResults(t, e.brokers, func(rs []Result) bool {
		for _, r := range rs {
			if r.Kind == KindNotice && r.Outcome == OutcomeSent && strings.HasPrefix(r.ContactID, "ses-viogen") {
				return count(rs, OutcomeNotice, "") >= 1
			}
		}
		return false
	})
	// Count only once everything decided has been done: a second notice
	// would have shown by now.
	settled(t, d, e.brokers)
	rs := readAllResults(t, e.brokers)
	if count(rs, OutcomeNotice, "") != 1 {
		t.Errorf("want one notice, got %d", count(rs, OutcomeNotice, ""))
	}
}

// addresses lists every phone number and email of the configuration.
func addresses(cfg *rules.Config) []string {
	var out []string
	for _, a := range cfg.Agencies {
		for _, c := range a.Contacts {
			for _, x := range []string{c.SMS, c.Email, c.WebhookURL} {
				if x != "" {
					out = append(out, x)
				}
			}
		}
	}
	return out
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
