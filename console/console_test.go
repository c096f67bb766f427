package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"golang.org/x/crypto/bcrypt"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/rules"
)

// Synthetic fixtures only: agencies, contacts and cases are invented.
const testPassword = "synthetic-pass-1"

func testConfig(t *testing.T) *rules.Config {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), 10)
	if err != nil {
		t.Fatal(err)
	}
	src := `fallback_agency: center
locale: es
agencies:
  - id: center
    name: Centro de coordinación
    kind: coordinating_center
    locale: ca
    serves: {regions: [CM]}
    contacts:
      - {id: center-duty, role: duty, email: duty@example.org}
  - id: unit-a
    name: Unidad A
    kind: responsible_unit
    locale: en
    serves: {provinces: ["13"]}
    contacts:
      - {id: a-oncall, role: on_call, sms: "+34600000001"}
  - id: unit-b
    name: Unidad B
    kind: responsible_unit
    serves: {provinces: ["02"]}
    contacts:
      - {id: b-oncall, role: on_call, sms: "+34600000002"}
  - id: unit-c
    name: Unidad C
    kind: responsible_unit
    time_zone: Atlantic/Canary
    serves: {provinces: ["35"]}
    contacts:
      - {id: c-oncall, role: on_call, sms: "+34600000003"}
policies:
  - id: page
    steps:
      - notify: [{agency: responsible, role: on_call, via: [sms]}]
        ack_within: 10m
      - notify: [{agency: center, role: duty, via: [email]}]
rules:
  - {id: rise, when: 'event.type == "risk.assessed"', policy: page, template: risk_rise, severity: critical, critical: true}
  - {id: late, when: 'event.type == "checkin.missed"', policy: page, template: risk_rise, severity: warning}
operators:
  - {id: op-a, agency: unit-a, password_bcrypt: '` + string(h) + `'}
  - {id: op-b, agency: unit-b, password_bcrypt: '` + string(h) + `'}
  - {id: op-center, agency: center, watch: [unit-a], password_bcrypt: '` + string(h) + `'}
  - {id: view-a, agency: unit-a, role: viewer, password_bcrypt: '` + string(h) + `'}
  - {id: op-c, agency: unit-c, password_bcrypt: '` + string(h) + `'}
`
	cfg, err := rules.Parse([]byte(src), "console-test.yaml", rules.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// captureSink records what the Acknowledger publishes.
type captureSink struct {
	mu   sync.Mutex
	msgs []kafka.Message
}

func (s *captureSink) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, msgs...)
	return nil
}

func (s *captureSink) acks(t *testing.T) []event.Ack {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []event.Ack
	for _, m := range s.msgs {
		if m.Topic != dispatcher.TopicInternal {
			continue
		}
		var ev event.Event
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, *ev.Ack)
	}
	return out
}

// records are the audit records published on the results topic.
func (s *captureSink) records(t *testing.T) []dispatcher.Result {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []dispatcher.Result
	for _, m := range s.msgs {
		if m.Topic != dispatcher.TopicResults {
			continue
		}
		var r dispatcher.Result
		if err := json.Unmarshal(m.Value, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

type fixture struct {
	srv      *httptest.Server
	c        *Console
	store    *dispatcher.EscalationStore
	sink     *captureSink
	silences *dispatcher.SilenceStore
	mr       *miniredis.Miniredis
	now      time.Time
	mu       sync.Mutex
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func escalation(caseRef, id, severity string, critical bool, notified ...string) *dispatcher.Escalation {
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	return &dispatcher.Escalation{ID: id, CaseRef: caseRef, State: dispatcher.EscOpen, OpenedAt: now, DueAt: now.Add(10 * time.Minute),
		Notified: notified, AckCode: dispatcher.AckCode(id), // the first candidate, as allocated
		Alert: rules.Alert{ID: id, Rule: "rise", Severity: severity, Critical: critical, CaseID: caseRef, EventID: "ev-" + id,
			EventType: "risk.assessed", OccurredAt: now, Route: rules.RouteContext{ResponsibleUnit: notified[0]},
			Policy: rules.PolicySnapshot{ID: "page", Steps: []rules.PolicyStep{
				{Notify: []rules.TargetSpec{{Agency: "responsible", Role: "on_call", Via: []string{"sms"}}}, AckWithin: rules.Duration(10 * time.Minute)},
				{Notify: []rules.TargetSpec{{Agency: "center", Role: "duty", Via: []string{"email"}}}}}}}}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	cfg := testConfig(t)
	f := &fixture{store: dispatcher.NewEscalationStore(rdb, 24*time.Hour), sink: &captureSink{}, now: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	f.silences = dispatcher.NewSilenceStore(rdb)
	f.mr = mr
	f.c = &Console{Rules: func() *rules.Config { return cfg }, Store: f.store, Redis: rdb, Now: f.clock, Silences: f.silences,
		Acks: &dispatcher.Acknowledger{Store: f.store, Writer: f.sink, Now: f.clock}, Audit: &dispatcher.ConsoleAudit{Writer: f.sink}}
	mux := http.NewServeMux()
	f.c.Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	for _, e := range []*dispatcher.Escalation{
		escalation("EXP-A-0001", "alert-a-00001", "critical", true, "unit-a"),
		escalation("EXP-B-0001", "alert-b-00001", "warning", false, "unit-b"),
	} {
		if err := f.store.Save(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) client(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", page)
	}
	return m[1]
}

// login logs op in and returns the open page.
func (f *fixture) login(t *testing.T, c *http.Client, op, password string) (*http.Response, string) {
	t.Helper()
	_, page := get(t, c, f.srv.URL+"/console/login")
	return post(t, c, f.srv.URL+"/console/login", url.Values{"csrf": {csrfOf(t, page)}, "operator": {op}, "password": {password}})
}

func (f *fixture) loggedIn(t *testing.T, op string) (*http.Client, string) {
	t.Helper()
	c := f.client(t)
	resp, _ := f.login(t, c, op, testPassword)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login %s: %d", op, resp.StatusCode)
	}
	code, page := get(t, c, f.srv.URL+"/console/")
	if code != http.StatusOK {
		t.Fatalf("open page: %d", code)
	}
	return c, page
}

func TestLoginSessionCookieAndScope(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	if code, _ := get(t, c, f.srv.URL+"/console/"); code != http.StatusSeeOther {
		t.Fatalf("open page without a session: %d, want 303 to login", code)
	}
	if resp, body := f.login(t, c, "op-a", "wrong"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `data-testid="login-error"`) {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	resp, _ := f.login(t, c, "op-a", testPassword)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie && ck.Value != "" {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Secure || sess.Path != Prefix {
		t.Fatalf("session cookie %+v", sess)
	}
	_, page := get(t, c, f.srv.URL+"/console/")
	if !strings.Contains(page, "EXP-A-0001") || strings.Contains(page, "EXP-B-0001") {
		t.Fatalf("op-a's open page must list EXP-A-0001 only:\n%s", page)
	}
	if !strings.Contains(page, `lang="en"`) {
		t.Error("op-a's page is not in its agency's locale (en)")
	}
	if code, _ := get(t, c, f.srv.URL+"/console/escalations/alert-b-00001"); code != http.StatusNotFound {
		t.Fatalf("another agency's escalation: %d, want 404", code)
	}
	if code, _ := get(t, c, f.srv.URL+"/console/escalations/alert-x-00009"); code != http.StatusNotFound {
		t.Fatalf("unknown escalation: %d, want 404", code)
	}
	if code, page := get(t, c, f.srv.URL+"/console/escalations/alert-a-00001"); code != http.StatusOK || !strings.Contains(page, "a-oncall") && !strings.Contains(page, "on_call") {
		t.Fatalf("own escalation's timeline: %d", code)
	}
	// The coordinating center watches unit-a.
	_, page = f.loggedIn(t, "op-center")
	if !strings.Contains(page, "EXP-A-0001") || strings.Contains(page, "EXP-B-0001") || !strings.Contains(page, `lang="ca"`) {
		t.Fatalf("op-center's page:\n%s", page)
	}
}

func TestSecureCookieBehindTLS(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	_, page := get(t, c, f.srv.URL+"/console/login")
	req, _ := http.NewRequest("POST", f.srv.URL+"/console/login", strings.NewReader(url.Values{"csrf": {csrfOf(t, page)}, "operator": {"op-a"}, "password": {testPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie && !ck.Secure {
			t.Fatal("session cookie without Secure behind TLS")
		}
	}
}

func TestFormsWithoutCSRFRefused(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	get(t, c, f.srv.URL+"/console/login")
	if resp, _ := post(t, c, f.srv.URL+"/console/login", url.Values{"operator": {"op-a"}, "password": {testPassword}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login without csrf: %d, want 403", resp.StatusCode)
	}
	c, page := f.loggedIn(t, "op-a")
	for _, form := range []url.Values{{}, {"csrf": {"forged"}}} {
		if resp, body := post(t, c, f.srv.URL+"/console/escalations/alert-a-00001/ack", form); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `data-testid="message"`) {
			t.Fatalf("ack with csrf %q: %d, want 403", form.Get("csrf"), resp.StatusCode)
		}
		if resp, _ := post(t, c, f.srv.URL+"/console/logout", form); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("logout with csrf %q: %d, want 403", form.Get("csrf"), resp.StatusCode)
		}
	}
	if n := len(f.sink.acks(t)); n != 0 {
		t.Fatalf("%d acknowledgements published without a CSRF token", n)
	}
	if code, _ := get(t, c, f.srv.URL+"/console/"); code != http.StatusOK {
		t.Fatal("session lost")
	}
	_ = page
}

func TestAcknowledgeRecordsOperator(t *testing.T) {
	f := newFixture(t)
	c, page := f.loggedIn(t, "op-center")
	tok := csrfOf(t, page)
	// Outside the scope: 404, nothing published.
	if resp, _ := post(t, c, f.srv.URL+"/console/escalations/alert-b-00001/ack", url.Values{"csrf": {tok}}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("ack of another agency's escalation: %d, want 404", resp.StatusCode)
	}
	resp, _ := post(t, c, f.srv.URL+"/console/escalations/alert-a-00001/ack", url.Values{"csrf": {tok}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/escalations/alert-a-00001?flash=ack" {
		t.Fatalf("ack: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	acks := f.sink.acks(t)
	want := event.Ack{EscalationID: "alert-a-00001", Agency: "unit-a", Via: ViaConsole, Operator: "op-center"}
	if len(acks) != 1 || acks[0] != want {
		t.Fatalf("published %+v, want %+v", acks, want)
	}
	// A viewer may look, not acknowledge.
	cv, page := f.loggedIn(t, "view-a")
	if strings.Contains(page, "/ack\"") {
		t.Error("viewer's page offers acknowledge buttons")
	}
	if resp, _ := post(t, cv, f.srv.URL+"/console/escalations/alert-a-00001/ack", url.Values{"csrf": {csrfOf(t, page)}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer ack: %d, want 403", resp.StatusCode)
	}
	if len(f.sink.acks(t)) != 1 {
		t.Fatal("viewer's acknowledgement published")
	}
}

func TestAcknowledgedEscalationTimeline(t *testing.T) {
	f := newFixture(t)
	e := escalation("EXP-A-0002", "alert-a-00002", "error", false, "unit-a")
	e.State, e.AckedBy, e.AckVia, e.AckedOperator, e.AckedAt = dispatcher.EscAcked, "unit-a", ViaConsole, "op-a", e.OpenedAt.Add(3*time.Minute)
	if err := f.store.Save(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	c, page := f.loggedIn(t, "op-a")
	if strings.Contains(page, "EXP-A-0002") {
		t.Fatal("acknowledged escalation listed as open")
	}
	code, tl := get(t, c, f.srv.URL+"/console/escalations/alert-a-00002")
	if code != http.StatusOK || !strings.Contains(tl, `data-testid="acked"`) || !strings.Contains(tl, "op-a (unit-a)") || !strings.Contains(tl, "10:03:00") {
		t.Fatalf("timeline %d:\n%s", code, tl)
	}
	if strings.Contains(tl, `data-testid="ack"`) {
		t.Error("acknowledge button on an acknowledged escalation")
	}
	resp, _ := post(t, c, f.srv.URL+"/console/escalations/alert-a-00002/ack", url.Values{"csrf": {csrfOf(t, page)}})
	if resp.Header.Get("Location") != "/console/escalations/alert-a-00002?flash=not_open" || len(f.sink.acks(t)) != 0 {
		t.Fatalf("ack of an acknowledged escalation: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestSessionExpiryAndLogout(t *testing.T) {
	f := newFixture(t)
	c, page := f.loggedIn(t, "op-a")
	f.advance(13 * time.Hour) // past MaxAge
	if code, _ := get(t, c, f.srv.URL+"/console/"); code != http.StatusSeeOther {
		t.Fatalf("expired session: %d, want 303 to login", code)
	}
	if code, _ := get(t, c, f.srv.URL+"/console/?partial=1"); code != http.StatusUnauthorized {
		t.Fatalf("expired session polling: %d, want 401", code)
	}
	c, page = f.loggedIn(t, "op-a")
	if resp, _ := post(t, c, f.srv.URL+"/console/logout", url.Values{"csrf": {csrfOf(t, page)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if code, _ := get(t, c, f.srv.URL+"/console/"); code != http.StatusSeeOther {
		t.Fatalf("after logout: %d, want 303 to login", code)
	}
}

func TestIdleSessionExpires(t *testing.T) {
	f := newFixture(t)
	f.c.IdleTimeout = time.Minute
	c, _ := f.loggedIn(t, "op-a")
	// The idle expiry is Redis's TTL on the session key.
	keys, _ := f.c.Redis.Keys(context.Background(), "console:session:*").Result()
	if len(keys) != 1 {
		t.Fatalf("sessions %v", keys)
	}
	if ttl := f.c.Redis.TTL(context.Background(), keys[0]).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("session ttl %v", ttl)
	}
	f.c.Redis.Del(context.Background(), keys[0])
	if code, _ := get(t, c, f.srv.URL+"/console/"); code != http.StatusSeeOther {
		t.Fatalf("idle-expired session: %d", code)
	}
}

func TestLoginRateLimited(t *testing.T) {
	f := newFixture(t)
	f.c.limiter = newLimiter(f.c.Redis, 3, time.Minute, f.c.Log)
	c := f.client(t)
	for i := 0; i < 3; i++ {
		if resp, _ := f.login(t, c, "op-a", "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, resp.StatusCode)
		}
	}
	if resp, _ := f.login(t, c, "op-a", testPassword); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after 3 failures: %d, want 429", resp.StatusCode)
	}
	f.advance(2 * time.Minute)
	f.mr.FastForward(2 * time.Minute) // the window is the Redis key's TTL
	if resp, _ := f.login(t, c, "op-a", testPassword); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the window: %d", resp.StatusCode)
	}
}

func TestPartialShowsNewEscalation(t *testing.T) {
	f := newFixture(t)
	c, _ := f.loggedIn(t, "op-a")
	e := escalation("EXP-A-0003", "alert-a-00003", "critical", true, "unit-a")
	if err := f.store.Save(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	code, rows := get(t, c, f.srv.URL+"/console/?partial=1")
	if code != http.StatusOK || !strings.Contains(rows, "EXP-A-0003") || strings.Contains(rows, "<html") {
		t.Fatalf("partial %d:\n%s", code, rows)
	}
}

func TestPagesHoldNoContactAddresses(t *testing.T) {
	f := newFixture(t)
	c, page := f.loggedIn(t, "op-a")
	_, tl := get(t, c, f.srv.URL+"/console/escalations/alert-a-00001")
	for _, p := range []string{page, tl} {
		if strings.Contains(p, "+346") || strings.Contains(p, "@example") {
			t.Fatalf("page shows a contact address:\n%s", p)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.srv.URL + "/console/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", resp.Header)
	}
}

func TestMostUrgentFirst(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(id, sev string, crit bool, due time.Duration) *dispatcher.Escalation {
		e := &dispatcher.Escalation{ID: id, OpenedAt: base, Alert: rules.Alert{Severity: sev, Critical: crit}}
		if due > 0 {
			e.DueAt = base.Add(due)
		}
		return e
	}
	es := []*dispatcher.Escalation{mk("w", "warning", false, time.Minute), mk("c-late", "critical", true, time.Hour),
		mk("nodue", "critical", true, 0), mk("c-soon", "critical", true, time.Minute), mk("e", "error", false, 0)}
	mostUrgentFirst(es)
	var got []string
	for _, e := range es {
		got = append(got, e.ID)
	}
	if strings.Join(got, ",") != "c-soon,c-late,nodue,e,w" {
		t.Fatalf("order %v", got)
	}
}

func TestMessagesComplete(t *testing.T) {
	for _, l := range langs {
		for _, st := range []string{dispatcher.EscOpen, dispatcher.EscAcked, dispatcher.EscClosed} {
			if messages[l]["state_"+st] == "" {
				t.Errorf("%s: no name for state %s", l, st)
			}
		}
		for k := range messages[defaultLang] {
			if messages[l][k] == "" {
				t.Errorf("%s: no %q", l, k)
			}
		}
	}
}

func silenceForm(csrf, agency, rule string) url.Values {
	return url.Values{"csrf": {csrf}, "agency": {agency}, "rule": {rule}, "municipality": {"13047"},
		"starts": {"2026-11-30T10:00"}, "ends": {"2026-11-30T12:00"}, "reason": {"planned maintenance"}}
}

func TestSilenceCreateListExpire(t *testing.T) {
	f := newFixture(t)
	c, page := f.loggedIn(t, "op-a")
	tok := csrfOf(t, page)
	// Only critical rules: refused.
	if resp, body := post(t, c, f.srv.URL+"/console/silences", silenceForm(tok, "unit-a", "rise")); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `data-testid="silence-error"`) {
		t.Fatalf("silence of a critical rule: %d", resp.StatusCode)
	}
	// Another agency: 404. Without the CSRF token: 403.
	if resp, _ := post(t, c, f.srv.URL+"/console/silences", silenceForm(tok, "unit-b", "")); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("silence of another agency: %d, want 404", resp.StatusCode)
	}
	if resp, _ := post(t, c, f.srv.URL+"/console/silences", silenceForm("", "unit-a", "")); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("silence without csrf: %d, want 403", resp.StatusCode)
	}
	bad := silenceForm(tok, "unit-a", "late")
	bad.Set("municipality", "Calle")
	if resp, _ := post(t, c, f.srv.URL+"/console/silences", bad); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("silence with a bad municipality: %d", resp.StatusCode)
	}
	// A reason with personal data: refused, and not echoed back.
	personal := silenceForm(tok, "unit-a", "")
	personal.Set("reason", "llamar al 600 123 456")
	if resp, body := post(t, c, f.srv.URL+"/console/silences", personal); resp.StatusCode != http.StatusUnprocessableEntity || strings.Contains(body, "600 123 456") {
		t.Fatalf("silence whose reason holds a phone number: %d (echoed: %v)", resp.StatusCode, strings.Contains(body, "600 123 456"))
	}
	if resp, _ := post(t, c, f.srv.URL+"/console/silences", silenceForm(tok, "unit-a", "")); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create silence: %d", resp.StatusCode)
	}
	ss, err := f.silences.List(context.Background(), f.clock())
	if err != nil || len(ss) != 1 {
		t.Fatalf("silences %v %v", ss, err)
	}
	s := ss[0]
	// 10:00 Madrid is 09:00 UTC.
	if s.Agency != "unit-a" || s.Rule != "" || s.Municipality != "13047" || s.Author != "op-a" || !s.StartsAt.Equal(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)) || !s.Active(f.clock()) {
		t.Fatalf("silence %+v", s)
	}
	_, list := get(t, c, f.srv.URL+"/console/silences")
	if !strings.Contains(list, `data-silence="`+s.ID+`"`) {
		t.Fatalf("silence not listed:\n%s", list)
	}
	// op-b neither sees nor expires it.
	cb, pageB := f.loggedIn(t, "op-b")
	if _, l := get(t, cb, f.srv.URL+"/console/silences"); strings.Contains(l, s.ID) {
		t.Fatal("another agency's silence listed")
	}
	if resp, _ := post(t, cb, f.srv.URL+"/console/silences/"+s.ID+"/expire", url.Values{"csrf": {csrfOf(t, pageB)}}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("expire by another agency: %d, want 404", resp.StatusCode)
	}
	f.advance(time.Minute)
	if resp, _ := post(t, c, f.srv.URL+"/console/silences/"+s.ID+"/expire", url.Values{"csrf": {tok}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("expire: %d", resp.StatusCode)
	}
	got, _ := f.silences.Get(context.Background(), s.ID)
	if got.Active(f.clock()) || got.ExpiredBy != "op-a" {
		t.Fatalf("expired silence %+v", got)
	}
	// Creation and end are on the audit trail, with the operator and the
	// matchers, not the reason; the refused attempts are not.
	rs := f.sink.records(t)
	if len(rs) != 2 {
		t.Fatalf("audit records %+v", rs)
	}
	for i, want := range []struct {
		outcome string
		ends    time.Time
	}{{dispatcher.OutcomeSilenceCreated, s.EndsAt}, {dispatcher.OutcomeSilenceEnded, f.clock()}} {
		r := rs[i]
		if r.Outcome != want.outcome || r.Operator != "op-a" || r.AgencyID != "unit-a" || r.Silence == nil ||
			*r.Silence != (dispatcher.SilenceRecord{ID: s.ID, Agency: "unit-a", Municipality: "13047", StartsAt: s.StartsAt, EndsAt: want.ends}) {
			t.Errorf("audit record %d: %+v %+v", i, r, r.Silence)
		}
	}
	for _, m := range f.sink.msgs {
		if strings.Contains(string(m.Value), "planned maintenance") {
			t.Errorf("the silence's reason is on the audit trail: %s", m.Value)
		}
	}
}

func TestSilenceShowsHeldAlerts(t *testing.T) {
	f := newFixture(t)
	now := f.clock()
	s := &dispatcher.Silence{ID: "s1", Agency: "unit-a", StartsAt: now, EndsAt: now.Add(time.Hour), Reason: "test", Author: "op-a", CreatedAt: now}
	if err := f.silences.Save(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if err := f.silences.RecordHeld(context.Background(), "s1", rules.Alert{ID: "alert-held-1", CaseID: "EXP-A-0009", Rule: "late"}, now); err != nil {
		t.Fatal(err)
	}
	c, _ := f.loggedIn(t, "op-a")
	_, list := get(t, c, f.srv.URL+"/console/silences")
	if !strings.Contains(list, `data-testid="held-count">1<`) || !strings.Contains(list, "EXP-A-0009") {
		t.Fatalf("held alerts not shown:\n%s", list)
	}
}

func TestHistoryAndSearchByCase(t *testing.T) {
	f := newFixture(t)
	e := escalation("EXP-A-0002", "alert-a-00002", "error", false, "unit-a")
	e.State, e.AckedBy, e.AckVia, e.AckedOperator, e.AckedAt = dispatcher.EscAcked, "unit-a", ViaConsole, "op-a", e.OpenedAt.Add(time.Minute)
	if err := f.store.Save(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	c, _ := f.loggedIn(t, "op-a")
	code, page := get(t, c, f.srv.URL+"/console/history")
	if code != http.StatusOK || !strings.Contains(page, "EXP-A-0001") || !strings.Contains(page, "EXP-A-0002") || strings.Contains(page, "EXP-B-0001") {
		t.Fatalf("history %d:\n%s", code, page)
	}
	_, page = get(t, c, f.srv.URL+"/console/history?case=a-0002")
	if !strings.Contains(page, "EXP-A-0002") || strings.Contains(page, "EXP-A-0001") || !strings.Contains(page, "op-a") {
		t.Fatalf("search:\n%s", page)
	}
	if _, page = get(t, c, f.srv.URL+"/console/history?case=EXP-B-0001"); strings.Contains(page, `data-escalation="alert-b`) {
		t.Fatal("search shows another agency's escalation")
	}
	if code, _ := get(t, c, f.srv.URL+"/console/history?case=%3Cscript%3E"); code != http.StatusBadRequest {
		t.Fatalf("bad search: %d", code)
	}
}

func TestTimelineListsNotifications(t *testing.T) {
	f := newFixture(t)
	c, _ := f.loggedIn(t, "op-a")
	_, tl := get(t, c, f.srv.URL+"/console/escalations/alert-a-00001")
	re := regexp.MustCompile(`(?s)<tr data-testid="delivery"><td>1</td><td>unit-a</td><td>a-oncall</td><td>sms</td>\s*<td data-testid="outcome">pending</td>`)
	if !re.MatchString(tl) {
		t.Fatalf("step 1's sms to a-oncall not listed:\n%s", tl)
	}
	if strings.Contains(tl, "+346") {
		t.Fatal("a phone number on the timeline")
	}
}
