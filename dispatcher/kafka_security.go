package dispatcher

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/sirupsen/logrus"
)

// KafkaSecurity is how every connection the dispatcher opens to Kafka is
// encrypted and authenticated: consumer-group readers, writers, the
// topic-creation client and the readiness probe. The zero value is
// plaintext without authentication (what the package-level NewWriter,
// EnsureTopics and a config without Security use).
//
// It never prints its secrets: String (and so %v of a config that holds
// it) names the mechanism and user only.
type KafkaSecurity struct {
	TLS  *tls.Config    // nil: plaintext
	SASL sasl.Mechanism // nil: no authentication
}

// Enabled reports whether TLS or SASL is configured.
func (s KafkaSecurity) Enabled() bool { return s.TLS != nil || s.SASL != nil }

// String describes the settings without secrets, for logs.
func (s KafkaSecurity) String() string {
	tlsDesc := "off"
	if s.TLS != nil {
		tlsDesc = "on"
		if s.TLS.InsecureSkipVerify {
			tlsDesc = "on (certificate NOT verified)"
		}
		if len(s.TLS.Certificates) > 0 {
			tlsDesc += " with client certificate"
		}
	}
	saslDesc := "off"
	if s.SASL != nil {
		saslDesc = s.SASL.Name()
	}
	return "tls " + tlsDesc + ", sasl " + saslDesc
}

// GoString keeps %#v from printing the mechanism's password or the
// client key.
func (s KafkaSecurity) GoString() string { return "dispatcher.KafkaSecurity{" + s.String() + "}" }

// Dialer is a dialer for kafka-go readers and single connections.
func (s KafkaSecurity) Dialer(timeout time.Duration) *kafka.Dialer {
	return &kafka.Dialer{Timeout: timeout, DualStack: true, TLS: s.TLS, SASLMechanism: s.SASL}
}

// Transport is a transport for kafka-go writers and clients: nil (the
// interface, so kafka-go's shared default) when nothing is configured.
func (s KafkaSecurity) Transport() kafka.RoundTripper {
	if !s.Enabled() {
		return nil
	}
	return &kafka.Transport{
		Dial:        (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
		DialTimeout: 5 * time.Second,
		TLS:         s.TLS,
		SASL:        s.SASL,
	}
}

// Client is a kafka.Client over these settings with a transport of its
// own, and the func that closes it. kafka-go's shared default transport
// keeps a connection pool and a metadata goroutine per broker address for
// the life of the process, and a transport made per call and not closed
// leaks one each time: close is due when the client is done.
func (s KafkaSecurity) Client(brokers []string, timeout time.Duration) (c *kafka.Client, closeFn func()) {
	var tr *kafka.Transport
	if t, ok := s.Transport().(*kafka.Transport); ok && t != nil {
		tr = t
	} else {
		tr = &kafka.Transport{}
	}
	return &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: timeout}, tr.CloseIdleConnections
}

// NewWriter is NewWriter over these settings.
func (s KafkaSecurity) NewWriter(brokers []string, log logrus.FieldLogger) *kafka.Writer {
	w := newWriter(brokers, log)
	// A transport of its own, not kafka-go's shared default: that one
	// caches metadata per broker address, and a broker that is replaced on
	// the same address (a restart, or tests reusing a port) would be
	// written to with another cluster's topics ("unknown topic").
	tr, ok := s.Transport().(*kafka.Transport)
	if !ok || tr == nil {
		tr = &kafka.Transport{}
	}
	w.Transport = &idleTransport{Transport: tr, idle: writerIdle}
	return w
}

// writerIdle is how long a writer's transport keeps its connections and
// metadata after its last request.
const writerIdle = 10 * time.Second

// idleTransport closes its connections and metadata pools once idle for
// idle. kafka.Writer.Close does not close a transport it was given, and a
// kafka-go pool left open refreshes metadata from its brokers for the life
// of the process: a closed writer would keep dialling its brokers'
// addresses forever (in long test runs, addresses other servers later took,
// whose replies kafka-go read as frames of gigabytes). The next request
// opens a new pool. No goroutine: a timer, reset by every request.
type idleTransport struct {
	*kafka.Transport
	idle  time.Duration
	mu    sync.Mutex
	timer *time.Timer
}

// RoundTrip implements kafka.RoundTripper.
func (t *idleTransport) RoundTrip(ctx context.Context, addr net.Addr, req kafka.Request) (kafka.Response, error) {
	t.mu.Lock()
	if t.timer == nil {
		t.timer = time.AfterFunc(t.idle, t.Transport.CloseIdleConnections)
	} else {
		t.timer.Reset(t.idle)
	}
	t.mu.Unlock()
	return t.Transport.RoundTrip(ctx, addr, req)
}

// EnsureTopics is EnsureTopics over these settings.
func (s KafkaSecurity) EnsureTopics(ctx context.Context, brokers []string, topics []TopicSpec) error {
	_, err := s.ensureTopics(ctx, brokers, topics)
	return err
}

// ensureTopics without settings is plaintext (kept for its callers).
func ensureTopics(ctx context.Context, brokers []string, topics []TopicSpec) ([]string, error) {
	return KafkaSecurity{}.ensureTopics(ctx, brokers, topics)
}

// newReader is newReader over these settings.
func (s KafkaSecurity) newReader(brokers []string, group string, topics []string, log logrus.FieldLogger) *kafka.Reader {
	return kafka.NewReader(s.readerConfig(brokers, group, topics, log))
}

// readerConfig is readerConfig dialing with these settings.
func (s KafkaSecurity) readerConfig(brokers []string, group string, topics []string, log logrus.FieldLogger) kafka.ReaderConfig {
	rc := readerConfig(brokers, group, topics, log)
	if s.Enabled() {
		rc.Dialer = s.Dialer(10 * time.Second)
	}
	return rc
}

// Check dials the first broker that answers and reads the metadata of
// topics: what a reader or writer would do first. Its error says whether
// the TLS handshake or the SASL authentication failed.
func (s KafkaSecurity) Check(ctx context.Context, brokers []string, topics ...string) error {
	d := s.Dialer(5 * time.Second)
	var last error
	for _, b := range brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err != nil {
			last = fmt.Errorf("connect to %s (%s): %w", b, s, err)
			continue
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		_, err = conn.ReadPartitions(topics...)
		_ = conn.Close()
		if err != nil {
			return fmt.Errorf("metadata from %s: %w", b, err)
		}
		return nil
	}
	if last == nil {
		return fmt.Errorf("no Kafka brokers")
	}
	return last
}
