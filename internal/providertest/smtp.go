package providertest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// SMTPMessage is one mail the SMTP fake accepted.
type SMTPMessage struct {
	From     string   // envelope sender
	To       []string // envelope recipients
	Data     []byte   // raw message, headers and body
	User     string   // authenticated user, "" if none
	TLS      bool     // whether the session was encrypted
	Received time.Time
}

// SMTPOption changes how NewSMTP listens.
type SMTPOption func(*smtpConfig)

type smtpConfig struct{ startTLS, implicitTLS bool }

// WithSTARTTLS offers STARTTLS with a fresh self-signed certificate (see CertPool).
func WithSTARTTLS() SMTPOption { return func(c *smtpConfig) { c.startTLS = true } }

// WithImplicitTLS speaks TLS from the first byte, as on port 465.
func WithImplicitTLS() SMTPOption { return func(c *smtpConfig) { c.implicitTLS = true } }

// SMTP fakes a mail relay. With a user it requires AUTH PLAIN, which it
// accepts on clear connections too (as a local relay would).
type SMTP struct {
	Script
	user, pass string
	srv        *smtp.Server
	ln         net.Listener
	pool       *x509.CertPool
	implicit   bool
	rec        recorder[SMTPMessage]
	closing    chan struct{}
	served     chan struct{}
	sessions   atomic.Int64 // open sessions, for a clean close
}

// NewSMTP starts a relay on 127.0.0.1. An empty user disables AUTH.
func NewSMTP(t testing.TB, user, pass string, opts ...SMTPOption) *SMTP {
	t.Helper()
	var cfg smtpConfig
	for _, o := range opts {
		o(&cfg)
	}
	f := &SMTP{user: user, pass: pass, implicit: cfg.implicitTLS,
		closing: make(chan struct{}), served: make(chan struct{})}
	f.srv = smtp.NewServer(smtp.BackendFunc(f.newSession))
	f.srv.Domain = "localhost"
	f.srv.AllowInsecureAuth = true
	f.srv.MaxMessageBytes = 1 << 20
	f.srv.MaxRecipients = 50
	f.srv.ReadTimeout, f.srv.WriteTimeout = 30*time.Second, 30*time.Second
	f.srv.ErrorLog = log.New(io.Discard, "", 0)
	f.listen(t, cfg)
	go func() {
		defer close(f.served)
		_ = f.srv.Serve(f.ln)
	}()
	t.Cleanup(f.close)
	return f
}

func (f *SMTP) listen(t testing.TB, cfg smtpConfig) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("providertest: smtp listen: %v", err)
	}
	if cfg.startTLS || cfg.implicitTLS {
		cert, pool, err := selfSigned()
		if err != nil {
			t.Fatalf("providertest: smtp certificate: %v", err)
		}
		f.pool = pool
		tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if cfg.implicitTLS {
			ln = tls.NewListener(ln, tc)
		} else {
			f.srv.TLSConfig = tc
		}
	}
	f.ln = ln
}

func (f *SMTP) close() {
	select {
	case <-f.closing:
		return
	default:
	}
	close(f.closing)
	_ = f.srv.Close()
	// Serve registers the listener itself, so a Close that beats it there
	// would leave Accept running: close the listener here too.
	_ = f.ln.Close()
	<-f.served
	waitZero(&f.sessions, 5*time.Second)
}

// waitZero waits until n is 0, giving up after d so a stuck client cannot
// hang a test.
func waitZero(n *atomic.Int64, d time.Duration) {
	deadline := time.Now().Add(d)
	for n.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// Addr is host:port.
func (f *SMTP) Addr() string { return f.ln.Addr().String() }

// Host is the listening IP.
func (f *SMTP) Host() string { return f.ln.Addr().(*net.TCPAddr).IP.String() }

// Port is the listening port.
func (f *SMTP) Port() int { return f.ln.Addr().(*net.TCPAddr).Port }

// URL is smtp://user:pass@host:port (smtps:// with implicit TLS), as the
// email channel's Config.URL expects.
func (f *SMTP) URL() string {
	u := url.URL{Scheme: "smtp", Host: net.JoinHostPort(f.Host(), strconv.Itoa(f.Port()))}
	if f.implicit {
		u.Scheme = "smtps"
	}
	if f.user != "" {
		u.User = url.UserPassword(f.user, f.pass)
	}
	return u.String()
}

// CertPool trusts the fake's certificate; nil without TLS.
func (f *SMTP) CertPool() *x509.CertPool { return f.pool }

// Messages returns the accepted mails, oldest first.
func (f *SMTP) Messages() []SMTPMessage { return f.rec.all() }

// Wait returns the accepted mails once there are at least n.
func (f *SMTP) Wait(ctx context.Context, n int) ([]SMTPMessage, error) { return f.rec.wait(ctx, n) }

// Attempts counts MAIL FROM commands, accepted or not.
func (f *SMTP) Attempts() int { return int(f.rec.attempts.Load()) }

// Reset forgets mails, attempts and faults.
func (f *SMTP) Reset() { f.rec.reset(); f.ClearFaults() }
