package dispatcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
	"github.com/viogen-alerts/dispatcher/rules"
)

// Bearer tokens of the test directory; the config holds their hashes.
const (
	ackTokGC    = "tok-gc-ciudad-real-0123456789"
	ackTokPLH   = "tok-pl-herencia-0123456789"
	ackTokPLP   = "tok-pl-palma-0123456789"
	ackTokSES   = "tok-ses-viogen-0123456789"
	ackTwSID    = "AC00000000000000000000000000000a0c"
	ackTwToken  = "ack-test-twilio-token"
	ackCase     = "C-HER-0001"
	ackPublic   = "https://dispatcher.example.org/v1/twilio/inbound"
	ackNumGC    = "+34600000011" // gc-cr-guardia
	ackNumPLH   = "+34600000021" // pl-herencia-guardia
	ackNumPLP   = "+34600000051" // pl-palma-guardia (never notified here)
	ackNumNoone = "+34611111111" // nobody's
)

func ackHash(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

// ackConfig is a small directory (the example config's token hashes are of
// tokens the tests do not know).
func ackConfig(t testing.TB) *rules.Config {
	t.Helper()
	src := `fallback_agency: ses-viogen
agencies:
  - id: ses-viogen
    name: Centro de Coordinacion
    kind: coordinating_center
    contacts:
      - {id: ses-viogen-guardia, role: on_call, sms: "+34600000001"}
    tokens_sha256: ["` + ackHash(ackTokSES) + `"]
  - id: gc-ciudad-real
    name: Guardia Civil Ciudad Real
    kind: responsible_unit
    serves: {provinces: ["13"]}
    contacts:
      - {id: gc-cr-guardia, role: on_call, sms: "` + ackNumGC + `"}
      - {id: gc-cr-sala, role: duty, sms: "+34600000012"}
    tokens_sha256: ["` + ackHash(ackTokGC) + `"]
  - id: pl-herencia
    name: Policia Local de Herencia
    kind: local_police
    serves: {municipalities: ["13047"]}
    contacts:
      - {id: pl-herencia-guardia, role: on_call, sms: "` + ackNumPLH + `"}
    tokens_sha256: ["` + ackHash(ackTokPLH) + `"]
  - id: pl-palma
    name: Policia Local de Palma
    kind: local_police
    serves: {municipalities: ["07040"]}
    contacts:
      - {id: pl-palma-guardia, role: on_call, sms: "` + ackNumPLP + `"}
    tokens_sha256: ["` + ackHash(ackTokPLP) + `"]
policies:
  - id: page
    steps:
      - notify:
          - {agency: responsible, role: on_call, via: [sms]}
        ack_within: 10m
rules:
  - id: risk-rise
    when: 'event.type == "risk.assessed" && transition.rising'
    policy: page
    template: risk_rise
`
	cfg, err := rules.Parse([]byte(src), "ack-test.yaml", rules.LoadOptions{})
	if err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

type ackEnv struct {
	api     *AckAPI
	store   *EscalationStore
	brokers []string
	base    string // the test server's URL
	inbound string // its inbound SMS URL, which the API validates against
	twilio  *providertest.Twilio
	logs    *providertest.LogCapture
}

// newAckEnv serves an AckAPI over a real socket, with a real redis-server
// and a Kafka-protocol broker holding the internal topic.
func newAckEnv(t *testing.T) *ackEnv {
	t.Helper()
	_, brokers := testenv.StartKafka(t, 1, TopicInternal)
	rdb := testenv.StartRedis(t).Client(t)
	w := NewWriter(brokers, quietLog())
	t.Cleanup(func() { _ = w.Close() })
	store := NewEscalationStore(rdb, time.Hour)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	e := &ackEnv{store: store, brokers: brokers, base: base, inbound: base + "/v1/twilio/inbound",
		twilio: providertest.NewTwilio(t, ackTwSID, ackTwToken), logs: providertest.CaptureLog()}
	e.api = &AckAPI{Rules: ackConfig(t), Store: store,
		Acks: &Acknowledger{Store: store, Writer: w, Topic: TopicInternal, Now: time.Now},
		Log:  e.logs.Logger.WithField("component", "ackapi"), TwilioToken: ackTwToken, InboundURL: e.inbound}
	mux := http.NewServeMux()
	e.api.Register(mux)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return e
}

var ackSeq int

// escalation saves a synthetic open escalation of ackCase notified to
// gc-ciudad-real and pl-herencia, with a fresh 16-hex alert id.
func (e *ackEnv) escalation(t *testing.T, mod func(*Escalation)) *Escalation {
	t.Helper()
	ackSeq++
	id := fmt.Sprintf("%016x", uint64(0xa1b2c3d4e5f60000)+uint64(ackSeq))
	now := time.Now().UTC().Truncate(time.Millisecond)
	esc := &Escalation{
		ID: id, CaseRef: ackCase, AckCode: AckCode(id), State: EscOpen,
		Alert: rules.Alert{ID: id, Rule: "risk-rise", Severity: "critical", CaseID: ackCase,
			Route: rules.RouteContext{
				Jurisdiction:    event.Jurisdiction{Municipality: "13047", Province: "13", Region: "CM"},
				ResponsibleUnit: "gc-ciudad-real",
			}},
		OpenedAt: now, DueAt: now.Add(10 * time.Minute),
		Notified: []string{"gc-ciudad-real", "pl-herencia"},
	}
	if mod != nil {
		mod(esc)
	}
	if err := e.store.Save(context.Background(), esc); err != nil {
		t.Fatal(err)
	}
	return esc
}

type ackResp struct {
	status int
	header http.Header
	body   string
}

func (r ackResp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

func (e *ackEnv) do(t *testing.T, method, path, auth string) ackResp {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return ackDo(t, req)
}

func ackDo(t *testing.T, req *http.Request) ackResp {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return ackResp{resp.StatusCode, resp.Header, string(b)}
}

func (e *ackEnv) ack(t *testing.T, id, token string) ackResp {
	t.Helper()
	auth := ""
	if token != "" {
		auth = "Bearer " + token
	}
	return e.do(t, http.MethodPost, "/v1/escalations/"+url.PathEscape(id)+"/ack", auth)
}

// sms posts an inbound SMS signed by Twilio for signedFor to the server's
// inbound route, and returns the answer (the TwiML).
func (e *ackEnv) sms(t *testing.T, signedFor, token, from, body string) ackResp {
	t.Helper()
	sid := fmt.Sprintf("SM%032x", time.Now().UnixNano())
	form := url.Values{"AccountSid": {ackTwSID}, "MessageSid": {sid}, "SmsSid": {sid}, "From": {from},
		"To": {"+34600000999"}, "Body": {body}, "NumMedia": {"0"}, "ApiVersion": {"2010-04-01"}}
	req, err := http.NewRequest(http.MethodPost, e.inbound, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("X-Twilio-Signature", providertest.TwilioSignature(token, signedFor, form))
	}
	return ackDo(t, req)
}

// internalEvents reads everything on the internal topic (one partition).
func (e *ackEnv) internalEvents(t *testing.T) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", e.brokers[0], TopicInternal, 0)
	if err != nil {
		t.Fatalf("dial leader: %v", err)
	}
	end, err := conn.ReadLastOffset()
	_ = conn.Close()
	if err != nil {
		t.Fatalf("last offset: %v", err)
	}
	if end == 0 {
		return nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.brokers, Topic: TopicInternal, Partition: 0,
		MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var out []kafka.Message
	for int64(len(out)) < end {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read internal topic: %v", err)
		}
		out = append(out, m)
	}
	return out
}

// oneAck checks that the topic holds exactly one message: the
// acknowledgement of esc by agency via, keyed by case.
func (e *ackEnv) oneAck(t *testing.T, esc *Escalation, agency, via string) {
	t.Helper()
	ms := e.internalEvents(t)
	if len(ms) != 1 {
		t.Fatalf("%d internal events, want 1", len(ms))
	}
	if string(ms[0].Key) != esc.CaseRef {
		t.Errorf("key %q, want the case %q", ms[0].Key, esc.CaseRef)
	}
	ev, err := event.DecodeInternal(ms[0].Value)
	if err != nil {
		t.Fatalf("decode internal event: %v\n%s", err, ms[0].Value)
	}
	if ev.Type != event.EscalationAcknowledged || ev.CaseID != esc.CaseRef || ev.Ack == nil {
		t.Fatalf("event %+v", ev)
	}
	if ev.Ack.EscalationID != esc.ID || ev.Ack.Agency != agency || ev.Ack.Via != via {
		t.Errorf("ack %+v, want escalation %s agency %s via %s", *ev.Ack, esc.ID, agency, via)
	}
}

func (e *ackEnv) noEvents(t *testing.T) {
	t.Helper()
	if ms := e.internalEvents(t); len(ms) != 0 {
		t.Fatalf("%d internal events, want none", len(ms))
	}
}

func ackErrBody(t *testing.T, r ackResp) map[string]string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q", ct)
	}
	var m map[string]string
	r.json(t, &m)
	return m
}

func TestAckAPIRequiresValidToken(t *testing.T) {
	e := newAckEnv(t)
	esc := e.escalation(t, nil)
	path := "/v1/escalations/" + esc.ID + "/ack"
	for _, auth := range []string{"", "Bearer", "Bearer ", "Basic " + ackTokGC, "Bearer wrong-token",
		"Bearer " + ackHash(ackTokGC), "Bearer " + strings.Repeat("x", 4096)} {
		r := e.do(t, http.MethodPost, path, auth)
		if r.status != http.StatusUnauthorized {
			t.Errorf("auth %.20q: %d, want 401", auth, r.status)
			continue
		}
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("auth %.20q: WWW-Authenticate %q", auth, r.header.Get("WWW-Authenticate"))
		}
		if ackErrBody(t, r)["error"] == "" {
			t.Errorf("auth %.20q: no error in %s", auth, r.body)
		}
	}
	// Unknown escalations are not told apart from known ones without a token.
	if r := e.ack(t, "ffffffffffffffff", ""); r.status != http.StatusUnauthorized {
		t.Errorf("unknown id without token: %d, want 401", r.status)
	}
	// The scheme is case-insensitive.
	if r := e.do(t, http.MethodPost, path, "bearer "+ackTokGC); r.status != http.StatusAccepted {
		t.Errorf("lower-case scheme: %d %s", r.status, r.body)
	}
	e.logs.AssertNotContains(t, ackTokGC, "wrong-token", ackHash(ackTokGC))
}

// Another agency's escalation answers exactly as an unknown one: 404 with
// the same body, so an id tells nothing about whether it exists.
func TestAckAPIOtherAgencyIsNotFound(t *testing.T) {
	e := newAckEnv(t)
	esc := e.escalation(t, nil)
	unknown := e.ack(t, "ffffffffffffffff", ackTokGC)
	if unknown.status != http.StatusNotFound {
		t.Fatalf("unknown id: %d %s, want 404", unknown.status, unknown.body)
	}
	for _, tok := range []string{ackTokPLP, ackTokSES} {
		r := e.ack(t, esc.ID, tok)
		if r.status != http.StatusNotFound || r.body != unknown.body {
			t.Errorf("other agency: %d %s, want 404 %s (as an unknown id)", r.status, r.body, unknown.body)
		}
		if r := e.ack(t, EscRef(esc.CaseRef, esc.ID), tok); r.status != http.StatusNotFound || r.body != unknown.body {
			t.Errorf("other agency by case|alert: %d %s, want 404", r.status, r.body)
		}
	}
	e.noEvents(t)
}

func TestAckAPIAcceptsAndPublishes(t *testing.T) {
	e := newAckEnv(t)
	esc := e.escalation(t, nil)
	r := e.ack(t, esc.ID, ackTokPLH)
	if r.status != http.StatusAccepted {
		t.Fatalf("%d %s, want 202", r.status, r.body)
	}
	var body map[string]string
	r.json(t, &body)
	if body["escalation_id"] != esc.ID || body["state"] != "acknowledging" {
		t.Errorf("body %s", r.body)
	}
	e.oneAck(t, esc, "pl-herencia", "api")
	// The API only publishes: the decide stage changes the state.
	got, err := e.store.Get(context.Background(), esc.CaseRef, esc.ID)
	if err != nil || got.State != EscOpen {
		t.Errorf("stored escalation %v %v: the API must not change it", got, err)
	}
}

func TestAckAPIAcceptsCaseRef(t *testing.T) {
	e := newAckEnv(t)
	esc := e.escalation(t, nil)
	r := e.ack(t, EscRef(esc.CaseRef, esc.ID), ackTokGC)
	if r.status != http.StatusAccepted {
		t.Fatalf("%d %s, want 202", r.status, r.body)
	}
	e.oneAck(t, esc, "gc-ciudad-real", "api")
}

func TestAckAPIUnknownEscalation(t *testing.T) {
	e := newAckEnv(t)
	e.escalation(t, nil)
	for _, id := range []string{"ffffffffffffffff", "C-HER-0001|ffffffffffffffff", "bad id!", strings.Repeat("a", 200)} {
		r := e.ack(t, id, ackTokGC)
		if r.status != http.StatusNotFound {
			t.Errorf("%q: %d %s, want 404", id, r.status, r.body)
		}
	}
	e.noEvents(t)
}

func TestAckAPINotOpenConflict(t *testing.T) {
	e := newAckEnv(t)
	acked := e.escalation(t, func(x *Escalation) {
		x.State, x.AckedBy, x.AckVia, x.AckedAt, x.DueAt = EscAcked, "gc-ciudad-real", "sms", time.Now(), time.Time{}
	})
	closed := e.escalation(t, func(x *Escalation) { x.State, x.DueAt = EscClosed, time.Time{} })
	for _, tc := range []struct {
		esc   *Escalation
		state string
	}{{acked, EscAcked}, {closed, EscClosed}} {
		r := e.ack(t, tc.esc.ID, ackTokPLH)
		if r.status != http.StatusConflict {
			t.Errorf("%s: %d %s, want 409", tc.state, r.status, r.body)
			continue
		}
		if b := ackErrBody(t, r); b["state"] != tc.state || b["error"] == "" {
			t.Errorf("%s: body %s", tc.state, r.body)
		}
	}
	// Another agency gets 404, not the state.
	if r := e.ack(t, acked.ID, ackTokPLP); r.status != http.StatusNotFound {
		t.Errorf("other agency on an acknowledged escalation: %d, want 404", r.status)
	}
	e.noEvents(t)
}

// When a newer escalation was saved with a code another one holds (an
// earlier version's escalation: codes are allocated unique), the code
// keeps naming the older one (it is never moved), and the newer one is
// still found by id through the id index that version wrote.
func TestAckAPICodeCollisionFoundByIDIndex(t *testing.T) {
	e := newAckEnv(t)
	first := e.escalation(t, nil)
	second := e.escalation(t, func(x *Escalation) { x.CaseRef, x.Alert.CaseID, x.AckCode = "C-HER-0002", "C-HER-0002", first.AckCode })
	if byCode, err := e.store.ByCode(context.Background(), first.AckCode); err != nil || byCode.ID != first.ID {
		t.Fatalf("setup: the code must keep naming the first escalation: %v %v", byCode, err)
	}
	if r := e.ack(t, second.ID, ackTokGC); r.status != http.StatusNotFound {
		t.Fatalf("%d %s: an escalation no key names was found", r.status, r.body)
	}
	e.store.rdb.Set(context.Background(), escIdxKey(second.ID), second.CaseRef, time.Hour)
	if r := e.ack(t, second.ID, ackTokGC); r.status != http.StatusAccepted {
		t.Fatalf("%d %s, want 202", r.status, r.body)
	}
	e.oneAck(t, second, "gc-ciudad-real", "api")
}

// An escalation is found by id through its ack code key whichever of its
// candidates it got: the first, one of the hashed ones, or one of the
// walk after them (allocated when the ones before were taken, here by
// escalations of another case); and a finished one through its freed
// code.
func TestAckAPIFindsByIDThroughTheAckCode(t *testing.T) {
	e := newAckEnv(t)
	ctx := context.Background()
	for _, i := range []int{0, 1, ackCodeHashed - 1, ackCodeHashed, ackCodeAttempts - 1} {
		esc := e.escalation(t, func(x *Escalation) {
			x.AckCode = ackCodeCandidate(ackCodeAlphabet, ackCodeLen, x.ID, i)
			for j := range i {
				other := EscRef("C-OTHER-0001", fmt.Sprintf("%016x", j))
				e.store.rdb.Set(ctx, ackCodeKey(ackCodeCandidate(ackCodeAlphabet, ackCodeLen, x.ID, j)), other, time.Hour)
			}
		})
		got, err := e.store.ByID(ctx, esc.ID)
		if err != nil || got.ID != esc.ID || got.CaseRef != esc.CaseRef {
			t.Fatalf("candidate %d: %+v %v", i, got, err)
		}
		if i != ackCodeAttempts-1 {
			continue
		}
		esc.State = EscAcked
		if err := e.store.Save(ctx, esc); err != nil {
			t.Fatal(err)
		}
		if r := e.ack(t, esc.ID, ackTokGC); r.status != http.StatusConflict {
			t.Fatalf("a finished escalation: %d %s, want 409", r.status, r.body)
		}
	}
	// Only the finished escalation has an id index key.
	if n, _ := e.store.rdb.Keys(ctx, "escidx:*").Result(); len(n) != 1 {
		t.Fatalf("id index keys %v, want the finished escalation's only", n)
	}
}

// A finished escalation whose freed code was allocated again is still
// found by id, through the id index written when it finished (from the
// independent review: the code alone lost it).
func TestByIDFindsAFinishedEscalationWhoseCodeWasReused(t *testing.T) {
	e := newAckEnv(t)
	ctx := context.Background()
	a := e.escalation(t, nil)
	a.State = EscAcked
	if err := e.store.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := e.escalation(t, func(x *Escalation) { x.CaseRef, x.Alert.CaseID, x.AckCode = "C-HER-0003", "C-HER-0003", a.AckCode })
	if got, err := e.store.ByCode(ctx, a.AckCode); err != nil || got.ID != b.ID {
		t.Fatalf("setup: the freed code must now name the second escalation: %+v %v", got, err)
	}
	if got, err := e.store.ByID(ctx, a.ID); err != nil || got.ID != a.ID || got.State != EscAcked {
		t.Fatalf("the finished escalation by id: %+v %v", got, err)
	}
	if r := e.ack(t, a.ID, ackTokGC); r.status != http.StatusConflict {
		t.Fatalf("ack of the finished escalation: %d %s, want 409", r.status, r.body)
	}
}

// A Redis error on the key that names an escalation is an error (the ack
// API answers 503, to be retried), never "no such escalation" (404, which
// an agency would not retry). From the independent review.
func TestByIDReportsARedisErrorAsAnError(t *testing.T) {
	e := newAckEnv(t)
	esc := e.escalation(t, nil)
	e.store.rdb.AddHook(failCmdHook{name: "get", key: ackCodeKey(esc.AckCode)})
	if _, err := e.store.ByID(context.Background(), esc.ID); err == nil || errors.Is(err, ErrNoEscalation) {
		t.Fatalf("ByID with its code key failing: %v, want an error other than no such escalation", err)
	}
	if r := e.ack(t, esc.ID, ackTokGC); r.status != http.StatusServiceUnavailable {
		t.Fatalf("ack with its code key failing: %d %s, want 503", r.status, r.body)
	}
}

// The same in ByID's second round trip (the candidate codes past the
// hashed ones, read only when none of those names the escalation): an
// id none names, with one of those keys failing, is an error, not "no
// such escalation".
func TestByIDSecondRoundTripErrorIsAnError(t *testing.T) {
	e := newAckEnv(t)
	const unknown = "00000000000000f9"
	rest := ackCodeCandidate(e.store.codeAlphabet, e.store.codeLen, unknown, ackCodeHashed)
	if _, err := e.store.ByID(context.Background(), unknown); !errors.Is(err, ErrNoEscalation) {
		t.Fatalf("ByID of an unknown id: %v, want no such escalation", err)
	}
	e.store.rdb.AddHook(failCmdHook{name: "get", key: ackCodeKey(rest)})
	if _, err := e.store.ByID(context.Background(), unknown); err == nil || errors.Is(err, ErrNoEscalation) {
		t.Fatalf("ByID with a second-round code key failing: %v, want an error other than no such escalation", err)
	}
}

// cmdCounter counts the Redis commands match accepts (nil: every command
// but a connection's handshake).
type cmdCounter struct {
	n     atomic.Int64
	match func(redis.Cmder) bool
}

func (c *cmdCounter) count(cmd redis.Cmder) {
	if c.match != nil {
		if c.match(cmd) {
			c.n.Add(1)
		}
		return
	}
	switch strings.ToLower(cmd.Name()) {
	case "hello", "client", "ping", "auth", "select":
	default:
		c.n.Add(1)
	}
}
func (c *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.count(cmd); return next(ctx, cmd) }
}
func (c *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}

// An id is found, or found unknown, with a constant number of Redis
// commands, however many escalations are open (a scan of every open
// escalation would read all 2,000): found, one round trip of the id index
// and the hashed candidates' keys, then the record; unknown, a second
// round trip for the rest of the candidates.
func TestAckAPIFindsByIDInConstantCommands(t *testing.T) {
	e := newAckEnv(t)
	var last *Escalation
	for range 2000 {
		last = e.escalation(t, nil)
	}
	cnt := &cmdCounter{}
	e.store.rdb.AddHook(cnt)
	for _, tc := range []struct {
		id       string
		want     int
		commands int64
	}{{"ffffffffffffffff", http.StatusNotFound, 1 + ackCodeAttempts}, {last.ID, http.StatusAccepted, 1 + ackCodeHashed + 1}} {
		before := cnt.n.Load()
		if r := e.ack(t, tc.id, ackTokGC); r.status != tc.want {
			t.Fatalf("%s: %d %s, want %d", tc.id, r.status, r.body, tc.want)
		}
		if n := cnt.n.Load() - before; n > tc.commands {
			t.Errorf("%s: %d Redis commands to find an escalation, want at most %d", tc.id, n, tc.commands)
		}
	}
}

func TestAckAPIKafkaDownIs503(t *testing.T) {
	e := newAckEnv(t)
	esc := e.escalation(t, nil)
	dead := NewWriter(e.brokers, quietLog())
	_ = dead.Close()
	e.api.Acks = &Acknowledger{Store: e.store, Writer: dead, Topic: TopicInternal, Now: time.Now}
	r := e.ack(t, esc.ID, ackTokGC)
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("%d %s, want 503", r.status, r.body)
	}
	if ackErrBody(t, r)["error"] == "" {
		t.Errorf("body %s", r.body)
	}
	if got := e.sms(t, e.inbound, ackTwToken, ackNumGC, "ACK "+esc.AckCode); got.status != http.StatusOK ||
		!strings.Contains(got.body, "Reintente") {
		t.Errorf("sms with Kafka down: %d %s, want a retry reply", got.status, got.body)
	}
	e.noEvents(t)
}

func TestEscalationsListTokenScoped(t *testing.T) {
	e := newAckEnv(t)
	mine := e.escalation(t, nil)
	palma := e.escalation(t, func(x *Escalation) {
		x.CaseRef, x.Alert.CaseID, x.Notified = "C-PMI-0001", "C-PMI-0001", []string{"pl-palma"}
		x.Alert.Route = rules.RouteContext{Jurisdiction: event.Jurisdiction{Municipality: "07040", Province: "07", Region: "IB"}, ResponsibleUnit: "pn-illes-balears"}
	})
	e.escalation(t, func(x *Escalation) { x.State, x.DueAt = EscAcked, time.Time{} })
	e.escalation(t, func(x *Escalation) { x.State, x.DueAt = EscClosed, time.Time{} })

	list := func(tok, query string) ([]map[string]any, ackResp) {
		t.Helper()
		r := e.do(t, http.MethodGet, "/v1/escalations"+query, "Bearer "+tok)
		var out []map[string]any
		if r.status == http.StatusOK {
			r.json(t, &out)
		}
		return out, r
	}
	got, r := list(ackTokGC, "?state=open")
	if r.status != http.StatusOK || len(got) != 1 || got[0]["id"] != mine.ID {
		t.Fatalf("gc-ciudad-real: %d %s, want only %s", r.status, r.body, mine.ID)
	}
	row := got[0]
	if row["case_ref"] != ackCase || row["rule"] != "risk-rise" || row["severity"] != "critical" ||
		row["step"] != float64(0) || row["round"] != float64(0) || row["due_at"] == nil || row["opened_at"] == nil {
		t.Errorf("row %v", row)
	}
	if _, ok := row["ack_code"]; ok || strings.Contains(r.body, mine.AckCode) {
		t.Errorf("the ack code is a credential, listed: %s", r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q", ct)
	}
	if got, r := list(ackTokPLP, "?state=open"); len(got) != 1 || got[0]["id"] != palma.ID {
		t.Errorf("pl-palma: %s, want only %s", r.body, palma.ID)
	}
	if got, r := list(ackTokSES, ""); r.status != http.StatusOK || strings.TrimSpace(r.body) != "[]" || len(got) != 0 {
		t.Errorf("agency with nothing open: %d %s, want []", r.status, r.body)
	}
	if _, r := list(ackTokGC, "?state=closed"); r.status != http.StatusBadRequest {
		t.Errorf("state=closed: %d, want 400", r.status)
	}
	for _, auth := range []string{"", "Bearer nope"} {
		if r := e.do(t, http.MethodGet, "/v1/escalations?state=open", auth); r.status != http.StatusUnauthorized {
			t.Errorf("auth %q: %d, want 401", auth, r.status)
		}
	}
}

func TestInboundSMSAcknowledges(t *testing.T) {
	e := newAckEnv(t)
	esc := e.escalation(t, nil)
	r := e.sms(t, e.inbound, ackTwToken, ackNumPLH, "  ack "+strings.ToLower(esc.AckCode)+"\n")
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
		t.Errorf("content type %q", ct)
	}
	if !strings.Contains(r.body, "<Response><Message>") || !strings.Contains(r.body, ackCase) || strings.Contains(r.body, esc.ID) {
		t.Errorf("reply %s: want a message with the case ref only", r.body)
	}
	e.oneAck(t, esc, "pl-herencia", "sms")
}

// The Twilio fake signs for the URL it posts to, as Twilio does.
func TestInboundSMSFromTwilioFake(t *testing.T) {
	e := newAckEnv(t)
	esc := e.escalation(t, nil)
	if err := e.twilio.SendInbound(context.Background(), e.inbound, ackNumGC, "+34600000999", "ACK "+esc.AckCode); err != nil {
		t.Fatal(err)
	}
	e.oneAck(t, esc, "gc-ciudad-real", "sms")
}

func TestInboundSMSBadSignature(t *testing.T) {
	e := newAckEnv(t)
	esc := e.escalation(t, nil)
	body := "ACK " + esc.AckCode
	for name, r := range map[string]ackResp{
		"unsigned":          e.sms(t, e.inbound, "", ackNumGC, body),
		"other token":       e.sms(t, e.inbound, "not-the-token", ackNumGC, body),
		"other url":         e.sms(t, ackPublic, ackTwToken, ackNumGC, body),
		"signed for r.URL?": e.sms(t, e.inbound+"?x=1", ackTwToken, ackNumGC, body),
	} {
		if r.status != http.StatusForbidden {
			t.Errorf("%s: %d %s, want 403", name, r.status, r.body)
		}
	}
	e.noEvents(t)
}

// Behind a proxy the public URL differs from r.URL: the signature is
// checked against the configured public URL.
func TestInboundSMSSignedForPublicURL(t *testing.T) {
	e := newAckEnv(t)
	esc := e.escalation(t, nil)
	e.api.InboundURL = ackPublic
	if r := e.sms(t, e.inbound, ackTwToken, ackNumGC, "ACK "+esc.AckCode); r.status != http.StatusForbidden {
		t.Errorf("signed for r.URL: %d, want 403", r.status)
	}
	if r := e.sms(t, ackPublic, ackTwToken, ackNumGC, "ACK "+esc.AckCode); r.status != http.StatusOK {
		t.Fatalf("signed for the public URL: %d %s", r.status, r.body)
	}
	e.oneAck(t, esc, "gc-ciudad-real", "sms")
}

func TestInboundSMSRefusals(t *testing.T) {
	e := newAckEnv(t)
	esc := e.escalation(t, nil)
	acked := e.escalation(t, func(x *Escalation) { x.State, x.AckedBy, x.DueAt = EscAcked, "pl-herencia", time.Time{} })
	wrong := "ZZZZZ"
	if wrong == esc.AckCode || wrong == acked.AckCode {
		wrong = "YYYYY"
	}
	message := func(r ackResp) string {
		t.Helper()
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/xml") {
			t.Fatalf("%d %q %s", r.status, r.header.Get("Content-Type"), r.body)
		}
		_, after, ok := strings.Cut(r.body, "<Message>")
		if !ok {
			return ""
		}
		msg, _, _ := strings.Cut(after, "</Message>")
		return msg
	}
	refusal := message(e.sms(t, e.inbound, ackTwToken, ackNumGC, "ACK "+wrong))
	if refusal == "" || strings.Contains(refusal, ackCase) {
		t.Fatalf("wrong code: reply %q", refusal)
	}
	// A real code from an agency the escalation did not notify gets the
	// very same answer: nothing tells the code exists.
	if got := message(e.sms(t, e.inbound, ackTwToken, ackNumPLP, "ACK "+esc.AckCode)); got != refusal {
		t.Errorf("non-notified agency: reply %q, want the refusal %q", got, refusal)
	}
	if got := message(e.sms(t, e.inbound, ackTwToken, ackNumPLP, "ACK "+wrong)); got != refusal {
		t.Errorf("non-notified agency, wrong code: reply %q, want %q", got, refusal)
	}
	// A number that is nobody's gets no reply at all.
	if r := e.sms(t, e.inbound, ackTwToken, ackNumNoone, "ACK "+esc.AckCode); message(r) != "" {
		t.Errorf("unknown number: %s, want an empty response", r.body)
	}
	for _, body := range []string{"ok", "ACK", "ACK K7", "ACK " + esc.AckCode + " gracias", "confirmo " + esc.AckCode} {
		got := message(e.sms(t, e.inbound, ackTwToken, ackNumGC, body))
		if !strings.Contains(got, "ACK") || got == refusal {
			t.Errorf("body %q: reply %q, want the format", body, got)
		}
	}
	if got := message(e.sms(t, e.inbound, ackTwToken, ackNumPLH, "ACK "+acked.AckCode)); !strings.Contains(got, "ya estaba confirmada") || !strings.Contains(got, ackCase) {
		t.Errorf("already acknowledged: reply %q", got)
	}
	e.noEvents(t)
}

func TestInboundSMSLogsNoPhoneNumber(t *testing.T) {
	e := newAckEnv(t)
	esc := e.escalation(t, nil)
	e.sms(t, e.inbound, ackTwToken, ackNumPLH, "ACK "+esc.AckCode)
	e.sms(t, e.inbound, ackTwToken, ackNumPLP, "ACK "+esc.AckCode)
	e.sms(t, e.inbound, ackTwToken, ackNumNoone, "ACK "+esc.AckCode)
	e.sms(t, e.inbound, ackTwToken, ackNumGC, "llamenme al 600123456")
	e.sms(t, e.inbound, "bad", ackNumGC, "ACK "+esc.AckCode)
	e.ack(t, esc.ID, ackTokGC)
	e.ack(t, esc.ID, "Bearer-guess-123")
	out := e.logs.String()
	if !strings.Contains(out, "pl-herencia-guardia") || !strings.Contains(out, "+34*******21") {
		t.Errorf("the log should name the contact id and the masked number:\n%s", out)
	}
	var secrets []string
	for _, n := range []string{ackNumGC, ackNumPLH, ackNumPLP, ackNumNoone} {
		secrets = append(secrets, n, strings.TrimPrefix(n, "+34"))
	}
	secrets = append(secrets, "600123456", esc.AckCode, ackTokGC, "Bearer-guess-123", ackTwToken)
	e.logs.AssertNotContains(t, secrets...)
}

func TestInboundRouteOffWithoutTwilioToken(t *testing.T) {
	api := &AckAPI{Rules: ackConfig(t), InboundURL: ackPublic}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/twilio/inbound", "application/x-www-form-urlencoded", strings.NewReader("Body=ACK+ABCDE"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("inbound route without a Twilio token: %d, want 404", resp.StatusCode)
	}
}
