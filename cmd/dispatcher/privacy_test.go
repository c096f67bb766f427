package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// Synthetic provider credentials and the service's own sender addresses.
// The sender number and address are the organisation's, not personal data:
// they are the only addresses the scan allows.
const (
	pvTwilioSID     = "AC0123456789abcdef0123456789abcdef"
	pvTwilioToken   = "privacytokenprivacytokenprivacy1"
	pvTwilioFrom    = "+34600000099"
	pvSMTPFrom      = "alertas@dispatcher.example.net"
	pvWebhookSecret = "webhook-secret-synthetic-0123456789"
)

// allTopicNames are the topics the dispatcher reads and writes.
var allTopicNames = []string{dispatcher.TopicCaseEvents, dispatcher.TopicInternal, dispatcher.TopicDLQ,
	dispatcher.TopicIntents, dispatcher.TopicResults}

// pvStack is a broker, a real redis-server, the four provider fakes and a
// test copy of the example configuration whose webhook contact points at
// the local https receiver.
type pvStack struct {
	brokers []string
	redis   *testenv.Redis
	twilio  *providertest.Twilio
	smtp    *providertest.SMTP
	pd      *providertest.PagerDuty
	hook    *providertest.Webhook
	pool    *x509.CertPool
	config  string
	hookURL string
	env     map[string]string
}

// newPVStack starts everything; httpAddr is the admin address the service
// will listen on ("127.0.0.1:0" when no callback needs to know it).
func newPVStack(t *testing.T, httpAddr string) *pvStack {
	t.Helper()
	s := &pvStack{}
	_, s.brokers = testenv.StartKafka(t, 2, allTopicNames...)
	s.redis = testenv.StartRedis(t)
	s.twilio = providertest.NewTwilio(t, pvTwilioSID, pvTwilioToken)
	s.smtp = providertest.NewSMTP(t, "alertas", "smtp-password-synthetic")
	s.pd = providertest.NewPagerDuty(t)
	s.hook, s.pool = providertest.NewTLSWebhook(t, []byte(pvWebhookSecret))
	s.hookURL = s.hook.URL() + "/hooks/viogen"
	s.config = writeTestConfig(t, s.hookURL)
	s.env = map[string]string{
		"KAFKA_BROKERS":     strings.Join(s.brokers, ","),
		"REDIS_URL":         s.redis.URL(),
		"DISPATCHER_CONFIG": s.config,
		"HTTP_ADDR":         httpAddr,
		"LOG_LEVEL":         "debug",
		"LOG_FORMAT":        "json",

		"TWILIO_ACCOUNT_SID": pvTwilioSID,
		"TWILIO_AUTH_TOKEN":  pvTwilioToken,
		"TWILIO_FROM":        pvTwilioFrom,
		"TWILIO_API_URL":     s.twilio.URL(),
		"SMTP_URL":           s.smtp.URL(),
		"SMTP_TLS":           "none",
		"SMTP_FROM":          pvSMTPFrom,

		"PAGERDUTY_EVENTS_URL":    s.pd.URL(),
		"WEBHOOK_SECRET":          pvWebhookSecret,
		"WEBHOOK_SECRET_PL_PALMA": pvWebhookSecret,

		"DELIVER_LEASE":        "5s",
		"DELIVER_SEND_TIMEOUT": "5s",
		"SHUTDOWN_GRACE":       "3s",
		"RATE_LIMIT_SMS":       "0",
		"RATE_LIMIT_EMAIL":     "0",
		"RATE_LIMIT_PAGER":     "0",
		"RATE_LIMIT_WEBHOOK":   "0",
	}
	if !strings.HasSuffix(httpAddr, ":0") {
		s.env["TWILIO_STATUS_CALLBACK_URL"] = "http://" + httpAddr + "/v1/twilio/status"
		s.env["TWILIO_INBOUND_URL"] = "http://" + httpAddr + "/v1/twilio/inbound"
	}
	// Every routing key the configuration names, each a synthetic value.
	raw, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`pager_key_env:\s*(\w+)`).FindAllStringSubmatch(string(raw), -1) {
		s.env[m[1]] = "routing-key-" + strings.ToLower(m[1])
	}
	return s
}

func (s *pvStack) getenv() env { return envMap(s.env) }

// writeTestConfig copies the example configuration with two changes: the
// webhook contact's URL is the local receiver's (the example's host is not
// reachable here), and the local police's integration contact is added to
// the policies that page the local police on call (risk-extremo and
// device-alarm) as a fixed target, since no policy of the example reaches
// a webhook.
func writeTestConfig(t *testing.T, hookURL string) string {
	t.Helper()
	raw, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	const exampleHook = `webhook_url: "https://pl-palma.example.org/hooks/viogen"`
	const onCall = "          - {agency: local_police, role: on_call, via: [pager, sms], optional: true}\n"
	if strings.Count(cfg, exampleHook) != 1 || strings.Count(cfg, onCall) != 2 {
		t.Fatalf("%s changed: update writeTestConfig (webhook contact, local police on-call targets)", exampleConfig)
	}
	cfg = strings.Replace(cfg, exampleHook, `webhook_url: "`+hookURL+`"`, 1)
	cfg = strings.ReplaceAll(cfg, onCall, onCall+"          - {agency: pl-palma, role: integration, via: [webhook]}\n")
	path := filepath.Join(t.TempDir(), "viogen-test.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// trustWebhookCert makes the channels the service is about to build trust
// the local receiver: they clone http.DefaultTransport when built. The
// original is put back by the returned function, which must run after the
// service has stopped. Tests of this package do not run in parallel.
func trustWebhookCert(pool *x509.CertPool) (restore func()) {
	tr := http.DefaultTransport.(*http.Transport)
	old := tr.TLSClientConfig
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return func() { tr.TLSClientConfig = old }
}

// runSettings parses flags and environment as `dispatcher run` does.
func runSettings(t *testing.T, getenv env, args ...string) settings {
	t.Helper()
	fs := newFlagSet("run", "", io.Discard)
	var s settings
	s.register(fs, getenv, settings{httpAddr: ":8080", logFormat: "json"})
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return s
}

// served is one in-process dispatcher started with serve.
type served struct {
	svc    *dispatcher.Service
	cancel context.CancelFunc
	done   chan error
}

// startServe runs serve as `run` does, with log, until stop.
func startServe(t *testing.T, s settings, getenv env, logger *providertest.LogCapture) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sv := &served{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan *dispatcher.Service, 1)
	go func() {
		sv.done <- serve(ctx, s, getenv, logger.Logger, false, func(svc *dispatcher.Service) { ready <- svc })
	}()
	select {
	case sv.svc = <-ready:
	case err := <-sv.done:
		cancel()
		t.Fatalf("serve stopped before it was ready: %v\n%s", err, tail(logger.String()))
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatalf("serve not ready after 20s\n%s", tail(logger.String()))
	}
	// Ready when /readyz says so (Redis, ingest, deliver).
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + sv.svc.HTTPAddr() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			sv.stop(t)
			t.Fatalf("/readyz not 200 after 20s: %v %v", resp, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return sv
}

// stop cancels the service and waits for serve to return.
func (sv *served) stop(t *testing.T) {
	t.Helper()
	sv.cancel()
	select {
	case err := <-sv.done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("serve did not return within 30s of cancel")
	}
}

// ---------------------------------------------------------------------------
// Topics

// readAll reads every record of topic, from the first offset to the end
// offset as it is when called, partition by partition.
func readAll(t *testing.T, brokers []string, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	parts, ends := topicEnds(ctx, t, brokers, topic)
	var out []kafka.Message
	for _, p := range parts {
		first, last := ends[p][0], ends[p][1]
		if first >= last {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(first); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("read %s/%d at %d of %d: %v", topic, p, len(out), last, err)
			}
			out = append(out, m)
			if m.Offset >= last-1 {
				break
			}
		}
		r.Close()
	}
	return out
}

// topicEnds returns the partitions of topic and each one's first and end offsets.
func topicEnds(ctx context.Context, t *testing.T, brokers []string, topic string) ([]int, map[int][2]int64) {
	t.Helper()
	c, closeClient := dispatcher.KafkaSecurity{}.Client(brokers, 0)
	defer closeClient()
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %v %+v", topic, err, md)
	}
	var parts []int
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		parts = append(parts, p.ID)
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	sort.Ints(parts)
	resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("list offsets of %s: %v", topic, err)
	}
	ends := map[int][2]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("offsets of %s/%d: %v", topic, po.Partition, po.Error)
		}
		ends[po.Partition] = [2]int64{po.FirstOffset, po.LastOffset}
	}
	return parts, ends
}

// endSum is the sum of the end offsets of topic: it grows with every record.
func endSum(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, ends := topicEnds(ctx, t, brokers, topic)
	var n int64
	for _, e := range ends {
		n += e[1]
	}
	return n
}

// consumed reports whether group has committed the end offset of every
// partition of every topic: every record there has been processed (the
// decide stage commits only after its intents are written).
func consumed(t *testing.T, brokers []string, group string, topics ...string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, closeClient := dispatcher.KafkaSecurity{}.Client(brokers, 0)
	defer closeClient()
	for _, topic := range topics {
		parts, ends := topicEnds(ctx, t, brokers, topic)
		resp, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
		if err != nil || resp.Error != nil {
			return false
		}
		committed := map[int]int64{}
		for _, p := range resp.Topics[topic] {
			committed[p.Partition] = p.CommittedOffset
		}
		for _, p := range parts {
			if end := ends[p][1]; end > 0 && committed[p] < end {
				return false
			}
		}
	}
	return true
}

// waitFor polls cond every 100 ms until it holds, failing after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// publishLines publishes the example scenario with `dispatcher publish`.
func publishScenario(t *testing.T, brokers []string) int {
	t.Helper()
	code, out, errOut := run(t, "", envMap(nil), "publish", "--brokers", strings.Join(brokers, ","), exampleEvents)
	m := regexp.MustCompile(`published (\d+) events`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("publish: exit %d: %s %s", code, out, errOut)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// ---------------------------------------------------------------------------
// What the deliver stage must have done

// intentsOn decodes every intent on the notifications topic.
func intentsOn(t *testing.T, brokers []string) []dispatcher.Intent {
	t.Helper()
	var out []dispatcher.Intent
	for _, m := range readAll(t, brokers, dispatcher.TopicIntents) {
		in, err := dispatcher.DecodeIntent(m.Value)
		if err != nil {
			t.Fatalf("intent at %d/%d: %v", m.Partition, m.Offset, err)
		}
		out = append(out, in)
	}
	return out
}

// resultsOn decodes every audit record on the results topic.
func resultsOn(t *testing.T, brokers []string) []dispatcher.Result {
	t.Helper()
	var out []dispatcher.Result
	for _, m := range readAll(t, brokers, dispatcher.TopicResults) {
		var r dispatcher.Result
		if err := json.Unmarshal(m.Value, &r); err != nil {
			t.Fatalf("result at %d/%d: %v", m.Partition, m.Offset, err)
		}
		out = append(out, r)
	}
	return out
}

// unsettled lists the (intent, channel) pairs of intents that have no
// sent or failed result yet; sends counts the sent ones per channel.
func unsettled(intents []dispatcher.Intent, results []dispatcher.Result) (missing []string, sends map[string]int) {
	done := map[string]string{}
	sends = map[string]int{}
	for _, r := range results {
		if r.Outcome == dispatcher.OutcomeSent || r.Outcome == dispatcher.OutcomeFailed {
			k := r.IntentID + "/" + r.Channel
			if _, seen := done[k]; !seen && r.Outcome == dispatcher.OutcomeSent {
				sends[r.Channel]++
			}
			done[k] = r.Outcome
		}
	}
	for _, in := range intents {
		for _, ch := range in.Channels {
			if _, ok := done[in.ID+"/"+ch]; !ok {
				missing = append(missing, in.ID+"/"+ch)
			}
		}
	}
	return missing, sends
}

// providerCounts is what each fake accepted.
func (s *pvStack) providerCounts() map[string]int {
	return map[string]int{"sms": len(s.twilio.Messages()), "email": len(s.smtp.Messages()),
		"pager": len(s.pd.Events()), "webhook": len(s.hook.Deliveries())}
}

func (s *pvStack) providerAttempts() int {
	return s.twilio.Attempts() + s.smtp.Attempts() + s.pd.Attempts() + s.hook.Attempts()
}

// routeTestSends is how many provider messages route-test predicts for
// the first step of every alert of the scenario: a lower bound of what the
// service sends (route-test ignores timers, which only add alerts).
func routeTestSends(t *testing.T, config string) int {
	t.Helper()
	code, out, errOut := run(t, "", envMap(nil), "route-test", "--config", config, "--event", exampleEvents, "--output", "json")
	if code != 0 {
		t.Fatalf("route-test: exit %d: %s", code, errOut)
	}
	var rt struct {
		Events []struct {
			Alerts []struct {
				Steps []struct {
					Targets []struct {
						Channels []string `json:"channels"`
					} `json:"targets"`
				} `json:"steps"`
			} `json:"alerts"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &rt); err != nil {
		t.Fatalf("route-test output: %v", err)
	}
	n := 0
	for _, e := range rt.Events {
		for _, a := range e.Alerts {
			if len(a.Steps) > 0 {
				for _, tg := range a.Steps[0].Targets {
					n += len(tg.Channels)
				}
			}
		}
	}
	return n
}

// ---------------------------------------------------------------------------
// The scan

// malformedEvent is an upstream record that must be dead-lettered, with
// personal-looking data in its key and value.
type malformedEvent struct{ key, value string }

// Personal data the malformed events carry (synthetic).
const (
	pvName    = "Ana García López"
	pvEmail   = "ana.garcia@example.org"
	pvDNI     = "12345678Z"
	pvNIE     = "X1234567L"
	pvStreet  = "Calle Mayor 12"
	pvPhone   = "+34600000001"
	pvMobile2 = "+34611222333"
)

var malformedEvents = []malformedEvent{
	// case_id with an email address: refused by the id pattern.
	{pvPhone, `{"id":"bad-pii-1","type":"case.opened","case_id":"` + pvEmail + `","occurred_at":"2026-03-12T10:00:00+01:00","source":"viogen","jurisdiction":{"municipality":"07040","province":"07","region":"IB"},"responsible_unit":"pn-illes-balears","version":1,"risk":{"level":"medio"}}`},
	// personal data as an unknown key, and as its value.
	{pvDNI, `{"id":"bad-pii-2","type":"case.opened","case_id":"C-PMI-0009","occurred_at":"2026-03-12T10:00:00+01:00","source":"viogen","jurisdiction":{"municipality":"07040","province":"07","region":"IB"},"responsible_unit":"pn-illes-balears","version":1,"risk":{"level":"medio"},"` + pvPhone + `":"` + pvEmail + `"}`},
	// nested unknown keys that are an ID number and an address.
	{pvEmail, `{"id":"bad-pii-3","type":"case.opened","case_id":"C-PMI-0010","occurred_at":"2026-03-12T10:00:00+01:00","source":"viogen","jurisdiction":{"municipality":"07040","province":"07","region":"IB","` + pvStreet + `, 3º B":"` + pvNIE + `"},"responsible_unit":"pn-illes-balears","version":1,"risk":{"level":"medio"}}`},
	// a bad level, a bad municipality code and an unknown type quoting data.
	{"C-PMI-0011", `{"id":"bad-pii-4","type":"case.opened","case_id":"C-PMI-0011","occurred_at":"2026-03-12T10:00:00+01:00","source":"viogen","jurisdiction":{"municipality":"07040","province":"07","region":"IB"},"responsible_unit":"pn-illes-balears","version":1,"risk":{"level":"` + pvName + ` ` + pvDNI + `"}}`},
	{"C-PMI-0012", `{"id":"bad-pii-5","type":"case.opened","case_id":"C-PMI-0012","occurred_at":"2026-03-12T10:00:00+01:00","source":"viogen","jurisdiction":{"municipality":"` + pvStreet + `","province":"07","region":"IB"},"responsible_unit":"pn-illes-balears","version":1,"risk":{"level":"medio"}}`},
	{"C-PMI-0013", `{"id":"bad-pii-6","type":"violencia de género: ` + pvMobile2 + `","case_id":"C-PMI-0013","occurred_at":"2026-03-12T10:00:00+01:00","source":"viogen","jurisdiction":{"municipality":"07040","province":"07","region":"IB"},"responsible_unit":"pn-illes-balears","version":1}`},
	// a bad time quoting an address, and JSON cut short after a name.
	{pvMobile2, `{"id":"bad-pii-7","type":"case.opened","case_id":"C-PMI-0014","occurred_at":"` + pvStreet + `","source":"viogen","jurisdiction":{"municipality":"07040","province":"07","region":"IB"},"responsible_unit":"pn-illes-balears","version":1,"risk":{"level":"medio"}}`},
	{pvNIE, `{"id":"bad-pii-8","type":"case.opened","nombre":"` + pvName + `","dni":"` + pvDNI + `","telefono":"` + pvMobile2 + `","domicilio":"` + pvStreet + ``},
}

// piiScanner finds personal data: every literal it was given (the
// configuration's and the events' phone numbers, addresses and IDs) and
// anything shaped like a phone number, an e-mail address, a DNI/NIE or a
// street address, and the words "violencia de género".
type piiScanner struct {
	literals []string
	allowed  map[string]bool // the service's own sender number and address
	// ownDomain is the sender's mail domain: Message-IDs (the email
	// channel's provider ids in the audit trail) are hex@ownDomain.
	ownDomain string
}

// piiPatterns are shapes of personal data; where a pattern has a group,
// the group is the match.
var piiPatterns = []struct {
	name string
	re   *regexp.Regexp
}{
	{"phone number", regexp.MustCompile(`\+\d[\d ]{8,16}\d`)},
	{"phone number", regexp.MustCompile(`(?i)%2B\d{9,15}`)},
	// A national mobile number, not a JSON number (latency_ms can be
	// nine digits) nor a fraction of a second.
	{"phone number", regexp.MustCompile(`(?:^|[^\w:.])((?:0034|34)?[67]\d{8})\b`)},
	{"e-mail address", regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}`)},
	{"e-mail address", regexp.MustCompile(`(?i)[A-Za-z0-9._\-]+%40[A-Za-z0-9\-]+\.[A-Za-z]{2,}`)},
	// Not after a '.' or a digit: fractions of a second end in Z too.
	{"DNI", regexp.MustCompile(`(?:^|[^\w.])(\d{8}[A-HJ-NP-TV-Z])\b`)},
	{"NIE", regexp.MustCompile(`\b([XYZ]\d{7}[A-HJ-NP-TV-Z])\b`)},
	{"street address", regexp.MustCompile(`(?i)\b(?:calle|c/|avenida|avda\.|plaza|paseo|carrer|camino|carretera)\s+\p{L}+`)},
	{"forbidden words", regexp.MustCompile(`(?i)violencia\s+de\s+g(?:é|e|\\u00e9|\\u00c9|É)nero`)},
}

// newPIIScanner collects the literals: every phone number, e-mail address
// and webhook URL of the configuration's contacts (the example's and the
// test copy's), and the personal data of the malformed events.
func newPIIScanner(t *testing.T, configs ...string) *piiScanner {
	t.Helper()
	sc := &piiScanner{allowed: map[string]bool{pvTwilioFrom: true, pvSMTPFrom: true},
		ownDomain: pvSMTPFrom[strings.Index(pvSMTPFrom, "@")+1:]}
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			sc.literals = append(sc.literals, s)
		}
	}
	contactRe := regexp.MustCompile(`(?:sms|email|webhook_url):\s*"?([^",}\s]+)`)
	for _, path := range configs {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range contactRe.FindAllStringSubmatch(string(raw), -1) {
			add(m[1])
			if strings.HasPrefix(m[1], "+34") {
				add(m[1][1:]) // 346000000NN
				add(m[1][3:]) // the national number
				add("%2B" + m[1][1:])
			}
			if strings.Contains(m[1], "://") {
				add(strings.SplitN(m[1], "://", 2)[1]) // host and path without the scheme
			}
		}
	}
	if len(sc.literals) < 30 {
		t.Fatalf("found only %d contact addresses in %v: the scan would be blind", len(sc.literals), configs)
	}
	for _, s := range []string{pvName, pvEmail, pvDNI, pvNIE, pvStreet, pvPhone, pvMobile2, "García", "violencia de género"} {
		add(s)
	}
	return sc
}

// finding is one piece of personal data found somewhere.
type finding struct{ where, what, match, context string }

func (f finding) String() string {
	return fmt.Sprintf("%s: %s %q in …%s…", f.where, f.what, f.match, f.context)
}

// scan reports every piece of personal data in text.
func (sc *piiScanner) scan(where, text string) []finding {
	var out []finding
	ctx := func(i, j int) string {
		a, b := max(0, i-80), min(len(text), j+80)
		return strings.ReplaceAll(text[a:b], "\n", `\n`)
	}
	for _, lit := range sc.literals {
		if i := strings.Index(text, lit); i >= 0 {
			out = append(out, finding{where, "literal", lit, ctx(i, i+len(lit))})
		}
	}
	for _, p := range piiPatterns {
		for _, loc := range p.re.FindAllStringSubmatchIndex(text, -1) {
			if len(loc) >= 4 && loc[2] >= 0 {
				loc = loc[2:4]
			}
			m := text[loc[0]:loc[1]]
			if sc.allowed[m] || strings.HasSuffix(m, "@"+sc.ownDomain) {
				continue
			}
			out = append(out, finding{where, p.name, m, ctx(loc[0], loc[1])})
		}
	}
	return out
}

// dispatcherHeaders are the headers the dispatcher writes on a dead letter;
// any other header is a copy of the original record's.
var dispatcherHeaders = map[string]bool{
	dispatcher.HeaderReason: true, dispatcher.HeaderSourceTopic: true, dispatcher.HeaderSourcePartition: true,
	dispatcher.HeaderSourceOffset: true, dispatcher.HeaderOriginalSize: true, dispatcher.HeaderSHA256: true,
	dispatcher.HeaderTruncated: true, "key_truncated": true,
}

// scanTopic scans what the dispatcher wrote to topic: keys, values and
// headers, except, on the dead-letter topic, the original key, value and
// headers it carries by contract.
func (sc *piiScanner) scanTopic(topic string, msgs []kafka.Message) []finding {
	var out []finding
	for _, m := range msgs {
		where := fmt.Sprintf("topic %s partition %d offset %d", topic, m.Partition, m.Offset)
		if topic != dispatcher.TopicDLQ {
			out = append(out, sc.scan(where+" key", string(m.Key))...)
			out = append(out, sc.scan(where+" value", string(m.Value))...)
		}
		for _, h := range m.Headers {
			if topic == dispatcher.TopicDLQ && !dispatcherHeaders[h.Key] {
				continue
			}
			out = append(out, sc.scan(where+" header "+h.Key, h.Key+"="+string(h.Value))...)
		}
	}
	return out
}

// scanLines scans a log line by line, so a finding names its line.
func (sc *piiScanner) scanLines(where, text string) []finding {
	var out []finding
	for i, line := range strings.Split(text, "\n") {
		out = append(out, sc.scan(fmt.Sprintf("%s line %d", where, i+1), line)...)
	}
	return out
}

// lockedBuffer collects what the standard library logger writes (the
// admin HTTP server's ErrorLog, anything that logs without logrus).
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// captureStdLog sends the standard logger to a buffer until the test ends.
func captureStdLog(t *testing.T) *lockedBuffer {
	b := &lockedBuffer{}
	old, flags := log.Writer(), log.Flags()
	log.SetOutput(b)
	t.Cleanup(func() { log.SetOutput(old); log.SetFlags(flags) })
	return b
}

// redisLog is a go-redis logger writing to a buffer: go-redis logs pool
// and connection trouble with a logger of its own, not the service's.
type redisLog struct{ w io.Writer }

func (r redisLog) Printf(_ context.Context, format string, v ...any) {
	fmt.Fprintf(r.w, "redis: "+format+"\n", v...)
}

// captureRedisLog sends go-redis's log to b until the test ends, then to
// standard error as go-redis's default logger does.
func captureRedisLog(t *testing.T, b io.Writer) {
	redis.SetLogger(redisLog{b})
	t.Cleanup(func() { redis.SetLogger(redisLog{os.Stderr}) })
}

// ---------------------------------------------------------------------------

// TestWholeServiceOnRealRedisIsPIIFree runs the whole service as run wires
// it (decide and deliver, timers, schedules, ack API, admin HTTP) against a
// real redis-server, the Kafka-protocol broker and the provider fakes, on
// the example scenario plus malformed events carrying personal data. It
// then reads every log line (debug, every component), every record of
// every topic the service writes, the metrics, and every message body the
// providers received, and fails on any phone number, e-mail address, ID
// number, street address or "violencia de género" in them.
func TestWholeServiceOnRealRedisIsPIIFree(t *testing.T) {
	start := time.Now()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	st := newPVStack(t, addr)
	sc := newPIIScanner(t, exampleConfig, st.config)
	wantSends := routeTestSends(t, st.config)
	stdlog := captureStdLog(t) // the standard logger's and go-redis's output
	captureRedisLog(t, stdlog)
	logs := providertest.CaptureLog()

	restore := trustWebhookCert(st.pool)
	defer restore()
	sv := startServe(t, runSettings(t, st.getenv()), st.getenv(), logs)
	stopped := false
	defer func() {
		if !stopped {
			sv.stop(t)
		}
	}()
	admin := "http://" + sv.svc.HTTPAddr()
	if sv.svc.HTTPAddr() != addr {
		t.Fatalf("admin on %s, want %s", sv.svc.HTTPAddr(), addr)
	}

	// The scenario, as upstream publishes it, then the malformed events.
	nEvents := publishScenario(t, st.brokers)
	w := &kafka.Writer{Addr: kafka.TCP(st.brokers...), Topic: dispatcher.TopicCaseEvents, Balancer: &kafka.CRC32Balancer{},
		BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	var bad []kafka.Message
	for _, m := range malformedEvents {
		bad = append(bad, kafka.Message{Key: []byte(m.key), Value: []byte(m.value)})
	}
	if err := w.WriteMessages(context.Background(), bad...); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()

	// Every case event processed, the malformed ones dead-lettered with
	// their original key and bytes.
	waitFor(t, 30*time.Second, "the decide stage to commit every case event", func() bool {
		return consumed(t, st.brokers, "dispatcher", dispatcher.TopicCaseEvents)
	})
	dlq := readAll(t, st.brokers, dispatcher.TopicDLQ)
	if len(dlq) != len(malformedEvents) {
		t.Errorf("DLQ holds %d records, want the %d malformed events", len(dlq), len(malformedEvents))
	}
	byKey := map[string]kafka.Message{}
	for _, m := range dlq {
		byKey[string(m.Key)] = m
	}
	for _, m := range malformedEvents {
		d, ok := byKey[m.key]
		switch {
		case !ok:
			t.Errorf("no dead letter with the original key %q", m.key)
		case string(d.Value) != m.value:
			t.Errorf("dead letter of key %q: value changed", m.key)
		}
		if ok && len(header(d, dispatcher.HeaderReason)) == 0 {
			t.Errorf("dead letter of key %q has no reason", m.key)
		}
	}

	// The scenario's notifications reached the providers: at least what
	// route-test predicts, and every intent on the topic has a result for
	// each of its channels, stable for 2 s (timers add alerts for the
	// check-ins the scenario leaves overdue).
	if wantSends < 20 {
		t.Fatalf("route-test predicts %d sends: the scenario or its parsing changed", wantSends)
	}
	var lastSig string
	var stableSince time.Time
	waitFor(t, 40*time.Second, fmt.Sprintf("at least %d provider messages and every intent settled, stable for 2s", wantSends), func() bool {
		total := 0
		for _, n := range st.providerCounts() {
			total += n
		}
		if total < wantSends {
			return false
		}
		missing, _ := unsettled(intentsOn(t, st.brokers), resultsOn(t, st.brokers))
		sig := fmt.Sprint(total, len(missing), endSum(t, st.brokers, dispatcher.TopicIntents), endSum(t, st.brokers, dispatcher.TopicResults))
		if len(missing) > 0 || sig != lastSig {
			lastSig, stableSince = sig, time.Now()
			return false
		}
		return time.Since(stableSince) >= 2*time.Second
	})
	// Exactly one message per distinct intent and channel, each in the
	// audit trail (read together: a timer may still add an intent).
	counts := waitDelivered(t, st, 20*time.Second)
	t.Logf("%d events (+%d malformed); route-test predicts %d sends; providers got %v", nEvents, len(malformedEvents), wantSends, counts)
	for ch, n := range counts {
		if n == 0 {
			t.Errorf("%s: the provider got nothing: its bodies were not checked", ch)
		}
	}

	// The SMS paths that carry a phone number in: a delivery receipt and an
	// "ACK <code>" reply from a contact's handset.
	exerciseSMSCallbacks(t, st, admin)

	// Metric labels, while the service runs.
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "# TYPE") {
		t.Fatalf("/metrics: %s", metrics)
	}

	sv.stop(t)
	stopped = true
	restore()

	// --- the scan ---
	var found []finding
	logText := logs.String()
	if !strings.Contains(logText, `"level":"debug"`) || !strings.Contains(logText, `"component":"decide"`) {
		t.Fatalf("the captured log has no debug lines or no decide lines: the scan would be blind\n%s", tail(logText))
	}
	if path := os.Getenv("PRIVACY_TEST_DUMP"); path != "" {
		// What was scanned, for a person to read: set PRIVACY_TEST_DUMP=FILE.
		var dump strings.Builder
		dump.WriteString(logText + stdlog.String() + string(metrics))
		for _, m := range dlq {
			fmt.Fprintf(&dump, "dead letter %q reason %q\n", m.Key, header(m, dispatcher.HeaderReason))
		}
		if err := os.WriteFile(path, []byte(dump.String()), 0o600); err != nil {
			t.Error(err)
		}
	}
	found = append(found, sc.scanLines("log", logText)...)
	found = append(found, sc.scanLines("library log", stdlog.String())...)
	found = append(found, sc.scanLines("/metrics", string(metrics))...)
	for _, topic := range []string{dispatcher.TopicInternal, dispatcher.TopicDLQ, dispatcher.TopicIntents, dispatcher.TopicResults} {
		msgs := readAll(t, st.brokers, topic)
		if len(msgs) == 0 {
			t.Errorf("topic %s is empty: nothing to check there", topic)
		}
		found = append(found, sc.scanTopic(topic, msgs)...)
	}
	// Provider message bodies (not the envelopes: To, RCPT TO, the URL).
	for i, m := range st.twilio.Messages() {
		found = append(found, sc.scan(fmt.Sprintf("SMS %d body", i), m.Body)...)
	}
	for i, m := range st.smtp.Messages() {
		body, err := m.Text()
		if err != nil {
			t.Errorf("mail %d: %v", i, err)
		}
		found = append(found, sc.scan(fmt.Sprintf("mail %d subject", i), m.Header("Subject"))...)
		found = append(found, sc.scan(fmt.Sprintf("mail %d body", i), body)...)
	}
	for i, e := range st.pd.Events() {
		found = append(found, sc.scan(fmt.Sprintf("page %d", i), string(e.Raw))...)
	}
	for i, d := range st.hook.Deliveries() {
		found = append(found, sc.scan(fmt.Sprintf("webhook %d payload", i), string(d.Body))...)
	}
	for _, f := range found {
		t.Errorf("personal data: %s", f)
	}

	// The scanner itself sees personal data where it is: in the dead
	// letters' original bytes, which it skips by contract.
	var raw []finding
	for _, m := range dlq {
		raw = append(raw, sc.scan("dead letter value", string(m.Value)+" "+string(m.Key))...)
	}
	kinds := map[string]bool{}
	for _, f := range raw {
		kinds[f.what] = true
	}
	for _, k := range []string{"literal", "phone number", "e-mail address", "DNI", "NIE", "street address", "forbidden words"} {
		if !kinds[k] {
			t.Errorf("the scanner finds no %s in the malformed events that carry one: it is blind to them", k)
		}
	}
	t.Logf("scanned %d log bytes, %d metric bytes, %d SMS, %d mails, %d pages, %d webhooks in %s",
		len(logText), len(metrics), counts["sms"], counts["email"], counts["pager"], counts["webhook"], time.Since(start).Round(time.Millisecond))
}

func header(m kafka.Message, key string) []byte {
	for _, h := range m.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

var ackInSMS = regexp.MustCompile(`ACK ([A-Z0-9]{4,8})`)

// exerciseSMSCallbacks sends a signed delivery receipt for one SMS and an
// "ACK <code>" reply from the handset of one that printed a code, and
// waits for their records: a delivered result and an acknowledgement.
func exerciseSMSCallbacks(t *testing.T, st *pvStack, admin string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msgs := st.twilio.Messages()
	if len(msgs) == 0 {
		t.Fatal("no SMS to send callbacks for")
	}
	if err := st.twilio.SendStatus(ctx, msgs[0].Sid, "delivered", ""); err != nil {
		t.Fatalf("status callback: %v", err)
	}
	var ack *providertest.TwilioMessage
	for i := range msgs {
		if ackInSMS.MatchString(msgs[i].Body) {
			ack = &msgs[i]
			break
		}
	}
	if ack == nil {
		t.Fatal("no SMS prints an acknowledgement code")
	}
	code := ackInSMS.FindStringSubmatch(ack.Body)[1]
	if err := st.twilio.SendInbound(ctx, st.env["TWILIO_INBOUND_URL"], ack.To, pvTwilioFrom, "ACK "+code); err != nil {
		t.Fatalf("inbound ACK: %v", err)
	}
	// The list of open escalations, as an agency's console reads it.
	req, _ := http.NewRequest(http.MethodGet, admin+"/v1/escalations", nil)
	req.Header.Set("Authorization", "Bearer dev-token-pn-illes-balears")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/escalations: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	waitFor(t, 20*time.Second, "a delivered receipt and an acknowledgement on the results topic", func() bool {
		var delivered, acked bool
		for _, r := range resultsOn(t, st.brokers) {
			delivered = delivered || r.Outcome == dispatcher.OutcomeDelivered
			acked = acked || r.Outcome == dispatcher.OutcomeAcked
		}
		if !acked {
			// The acknowledgement may be recorded on the internal topic only.
			for _, m := range readAll(t, st.brokers, dispatcher.TopicInternal) {
				acked = acked || strings.Contains(string(m.Value), `"escalation.acknowledged"`)
			}
		}
		return delivered && acked
	})
}
