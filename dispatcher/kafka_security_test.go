package dispatcher

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/sirupsen/logrus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// Obviously fake test credentials.
const (
	secUser      = "dispatcher-test"
	secPass      = "fake-kafka-password-0001"
	secWrongPass = "fake-kafka-wrong-password-0002"
)

func secMech(t *testing.T, method, user, pass string) sasl.Mechanism {
	t.Helper()
	switch method {
	case "PLAIN":
		return plain.Mechanism{Username: user, Password: pass}
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		algo := scram.SHA256
		if method == "SCRAM-SHA-512" {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, user, pass)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Fatalf("unknown mechanism %s", method)
	return nil
}

// TestKafkaSecurityProduceConsume: against a broker with TLS, mTLS, SASL
// PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 (the last over TLS), the
// topic client, a writer and a consumer-group reader built by
// KafkaSecurity all work: a topic is created, messages produced and
// consumed by a group.
func TestKafkaSecurityProduceConsume(t *testing.T) {
	pki := testenv.NewPKI(t, "kafka")
	clientTLS := &tls.Config{RootCAs: pki.Pool, MinVersion: tls.VersionTLS12}
	mtls := clientTLS.Clone()
	mtls.Certificates = []tls.Certificate{pki.Client}
	cases := []struct {
		name   string
		broker []kfake.Opt
		sec    func(t *testing.T) KafkaSecurity
	}{
		{"tls", []kfake.Opt{kfake.TLS(pki.ServerTLS(false))},
			func(*testing.T) KafkaSecurity { return KafkaSecurity{TLS: clientTLS} }},
		{"mtls", []kfake.Opt{kfake.TLS(pki.ServerTLS(true))},
			func(*testing.T) KafkaSecurity { return KafkaSecurity{TLS: mtls} }},
		{"sasl-plain", []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", secUser, secPass)},
			func(t *testing.T) KafkaSecurity { return KafkaSecurity{SASL: secMech(t, "PLAIN", secUser, secPass)} }},
		{"scram-sha-256", []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", secUser, secPass)},
			func(t *testing.T) KafkaSecurity {
				return KafkaSecurity{SASL: secMech(t, "SCRAM-SHA-256", secUser, secPass)}
			}},
		{"tls+scram-sha-512", []kfake.Opt{kfake.TLS(pki.ServerTLS(false)), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", secUser, secPass)},
			func(t *testing.T) KafkaSecurity {
				return KafkaSecurity{TLS: clientTLS, SASL: secMech(t, "SCRAM-SHA-512", secUser, secPass)}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, brokers := testenv.StartKafkaWith(t, 2, nil, tc.broker...)
			sec := tc.sec(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			const topic = "secured"
			created, err := sec.ensureTopics(ctx, brokers, []TopicSpec{{Name: topic, Partitions: 2}})
			if err != nil || len(created) != 1 {
				t.Fatalf("create topic through %s: %v %v", sec, created, err)
			}
			if err := sec.Check(ctx, brokers, topic); err != nil {
				t.Fatalf("probe dialer: %v", err)
			}
			w := sec.NewWriter(brokers, quietLog())
			defer w.Close()
			want := map[string]bool{}
			var msgs []kafka.Message
			for i := range 5 {
				k := fmt.Sprintf("C-SEC%d", i)
				want[k] = true
				msgs = append(msgs, kafkaMsg(topic, k, []byte(`{"n":`+fmt.Sprint(i)+`}`)))
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatalf("produce: %v", err)
			}
			r := sec.newReader(brokers, "sec-"+tc.name, []string{topic}, quietLog())
			defer r.Close()
			for len(want) > 0 {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					t.Fatalf("consume (still missing %d): %v", len(want), err)
				}
				delete(want, string(m.Key))
				if err := r.CommitMessages(ctx, m); err != nil {
					t.Fatalf("commit: %v", err)
				}
			}
		})
	}
}

// TestKafkaSecurityRefused: wrong credentials, an untrusted CA, a missing
// client certificate and a plaintext client all fail with an error that
// says what went wrong, and none carries the password.
func TestKafkaSecurityRefused(t *testing.T) {
	pki := testenv.NewPKI(t, "kafka")
	other := testenv.NewPKI(t, "other")
	cases := []struct {
		name   string
		broker []kfake.Opt
		sec    func(t *testing.T) KafkaSecurity
		want   string // in the error, lower case
	}{
		{"plain wrong password", []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", secUser, secPass)},
			func(t *testing.T) KafkaSecurity {
				return KafkaSecurity{SASL: secMech(t, "PLAIN", secUser, secWrongPass)}
			}, "sasl authentication failed"},
		{"scram-sha-256 wrong password", []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", secUser, secPass)},
			func(t *testing.T) KafkaSecurity {
				return KafkaSecurity{SASL: secMech(t, "SCRAM-SHA-256", secUser, secWrongPass)}
			}, "sasl authentication failed"},
		{"scram-sha-512 unknown user", []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", secUser, secPass)},
			func(t *testing.T) KafkaSecurity {
				return KafkaSecurity{SASL: secMech(t, "SCRAM-SHA-512", "nobody", secPass)}
			}, "sasl authentication failed"},
		{"untrusted CA", []kfake.Opt{kfake.TLS(pki.ServerTLS(false))},
			func(*testing.T) KafkaSecurity { return KafkaSecurity{TLS: &tls.Config{RootCAs: other.Pool}} },
			"certificate signed by unknown authority"},
		{"wrong server name", []kfake.Opt{kfake.TLS(pki.ServerTLS(false))},
			func(*testing.T) KafkaSecurity {
				return KafkaSecurity{TLS: &tls.Config{RootCAs: pki.Pool, ServerName: "kafka.elsewhere.test"}}
			}, "certificate is valid for"},
		{"mtls without client certificate", []kfake.Opt{kfake.TLS(pki.ServerTLS(true))},
			func(*testing.T) KafkaSecurity { return KafkaSecurity{TLS: &tls.Config{RootCAs: pki.Pool}} },
			"certificate required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, brokers := testenv.StartKafkaWith(t, 1, []string{"secured"}, tc.broker...)
			sec := tc.sec(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := sec.Check(ctx, brokers, "secured")
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), tc.want) {
				t.Fatalf("probe: got %v, want an error with %q", err, tc.want)
			}
			w := sec.NewWriter(brokers, quietLog())
			w.MaxAttempts = 1
			defer w.Close()
			werr := w.WriteMessages(ctx, kafkaMsg("secured", "C-1", []byte("{}")))
			if werr == nil {
				t.Fatal("produce succeeded")
			}
			for _, e := range []error{err, werr} {
				if strings.Contains(e.Error(), secPass) || strings.Contains(e.Error(), secWrongPass) {
					t.Errorf("error carries the password: %v", e)
				}
			}
			t.Logf("probe: %v; produce: %v", err, werr)
		})
	}
}

// TestKafkaSecurityService: a dispatcher Service whose ingest has the
// right TLS and SCRAM-SHA-512 settings creates its topics, processes an
// event produced through the same settings and is ready; one with the
// wrong password keeps running, reports not ready, and logs (at debug
// level) no password.
func TestKafkaSecurityService(t *testing.T) {
	pki := testenv.NewPKI(t, "kafka")
	_, brokers := testenv.StartKafkaWith(t, 2, nil,
		kfake.TLS(pki.ServerTLS(true)), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", secUser, secPass))
	rdb := testenv.StartRedis(t).Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tlsCfg := &tls.Config{RootCAs: pki.Pool, Certificates: []tls.Certificate{pki.Client}, MinVersion: tls.VersionTLS12}

	var logs lockedBuffer
	log := logrus.New()
	log.SetOutput(&logs)
	log.SetLevel(logrus.DebugLevel)

	start := func(group, pass string, stage Stage) (*Service, chan error, context.CancelFunc) {
		sec := KafkaSecurity{TLS: tlsCfg, SASL: secMech(t, "SCRAM-SHA-512", secUser, pass)}
		svc, err := NewService(Options{
			Ingest: IngestConfig{Brokers: brokers, Security: sec, GroupID: group, CreateTopics: AllTopics(2, 1),
				Backoff: Backoff{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond}, ProbeInterval: 100 * time.Millisecond,
				RejoinBackoff: 200 * time.Millisecond, OpTimeout: 2 * time.Second},
			Redis: rdb, Decide: stage, Log: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		log.WithField("kafka_security", sec).WithField("ingest", fmt.Sprintf("%+v / %#v", sec, sec)).Debug("test: service configured")
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.Run(rctx) }()
		return svc, done, stop
	}
	readyz := func(svc *Service) (int, string) {
		rw := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rw, httptest.NewRequestWithContext(ctx, http.MethodGet, "/readyz", nil))
		return rw.Code, rw.Body.String()
	}

	stage := &seenStage{seen: map[string]bool{}}
	good, goodDone, stopGood := start("secure", secPass, stage)
	defer stopGood()
	waitFor(t, ctx, func() bool { code, _ := readyz(good); return code == http.StatusOK })
	b, err := event.Encode(ev("sec-1", event.CaseOpened, "C-SEC1", 1, event.Alto))
	if err != nil {
		t.Fatal(err)
	}
	// The service's own writer (Options.Writer unset: built from the
	// ingest's security) writes the event once the topics exist (the
	// ingest, which creates the topics as it starts, built the rest.
	var werr error
	waitFor(t, ctx, func() bool {
		werr = good.Writer.WriteMessages(ctx, kafkaMsg(TopicCaseEvents, "C-SEC1", b))
		return werr == nil || !isUnknownTopic(werr)
	})
	if werr != nil {
		t.Fatalf("produce through the service's writer: %v", werr)
	}
	waitFor(t, ctx, func() bool { return stage.has("sec-1") })

	bad, badDone, stopBad := start("secure-bad", secWrongPass, &seenStage{seen: map[string]bool{}})
	defer stopBad()
	waitFor(t, ctx, func() bool { code, _ := readyz(bad); return code == http.StatusServiceUnavailable })
	time.Sleep(2 * time.Second) // retries go on: it must neither crash nor turn ready
	code, body := readyz(bad)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "ingest") {
		t.Fatalf("wrong password: /readyz %d %q, want 503 naming ingest", code, body)
	}
	if err := bad.ingest.Check(); err == nil || !strings.Contains(strings.ToLower(err.Error()), "sasl authentication failed") {
		t.Errorf("wrong password: ingest check %v, want a SASL authentication error", err)
	}
	select {
	case err := <-badDone:
		t.Fatalf("service with the wrong password stopped: %v", err)
	case err := <-goodDone:
		t.Fatalf("service stopped: %v", err)
	default:
	}
	if code, body := readyz(good); code != http.StatusOK {
		t.Errorf("good service: /readyz %d %q", code, body)
	}
	stopBad()
	stopGood()
	<-badDone
	<-goodDone

	out := logs.String()
	if !strings.Contains(out, "SASL") || !strings.Contains(out, "SCRAM-SHA-512") {
		t.Errorf("logs say nothing of the SASL failure:\n%s", tail(out, 3000))
	}
	for _, p := range []string{secPass, secWrongPass} {
		if strings.Contains(out, p) {
			t.Errorf("a log line carries a password")
		}
	}
	if strings.Contains(out, "PRIVATE KEY") {
		t.Errorf("a log line carries a private key")
	}
}

// TestKafkaSecurityString: the settings print without their secrets
// however they are formatted.
func TestKafkaSecurityString(t *testing.T) {
	pki := testenv.NewPKI(t, "kafka")
	sec := KafkaSecurity{TLS: &tls.Config{Certificates: []tls.Certificate{pki.Client}}, SASL: secMech(t, "PLAIN", secUser, secPass)}
	cfg := IngestConfig{Brokers: []string{"b:9093"}, Security: sec}
	for _, s := range []string{sec.String(), fmt.Sprintf("%v|%+v|%#v|%s", sec, sec, sec, sec), fmt.Sprintf("%v|%+v", cfg, cfg)} {
		if strings.Contains(s, secPass) {
			t.Fatalf("password printed: %s", s)
		}
	}
	if got := sec.String(); got != "tls on with client certificate, sasl PLAIN" {
		t.Errorf("String() = %q", got)
	}
	if got := (KafkaSecurity{}).String(); got != "tls off, sasl off" {
		t.Errorf("zero String() = %q", got)
	}
	if (KafkaSecurity{}).Transport() != nil {
		t.Error("zero settings: Transport should be nil (kafka-go's default)")
	}
}

type seenStage struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (s *seenStage) Handle(_ context.Context, items []Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range items {
		s.seen[it.Event.ID] = true
	}
	return nil
}

func (s *seenStage) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[id]
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
