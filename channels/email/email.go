// Package email sends alerts by SMTP with go-mail: plain text, UTF-8,
// STARTTLS unless configured otherwise.
package email

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/wneessen/go-mail"

	"github.com/viogen-alerts/dispatcher/channels"
)

// Name is the channel name.
const Name = "email"

// Channel sends one SMTP session per message, at most MaxConns at a time.
// It is safe for concurrent use.
type Channel struct {
	cfg   Config
	srv   server
	tls   *tls.Config
	slots chan struct{}
	log   logrus.FieldLogger
}

var _ channels.Channel = (*Channel)(nil)

// New checks cfg and returns a ready channel. It does not connect.
func New(cfg Config) (*Channel, error) {
	srv, err := cfg.server()
	if err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = srv.host
	}
	log := cfg.Logger
	if log == nil {
		log = channels.NopLogger()
	}
	return &Channel{cfg: cfg, srv: srv, tls: tc, slots: make(chan struct{}, cfg.MaxConns), log: log}, nil
}

// Name returns "email".
func (c *Channel) Name() string { return Name }

// Send delivers m to its recipient's mail server through the relay.
func (c *Channel) Send(ctx context.Context, m channels.Message) (channels.Receipt, error) {
	r, err := c.send(ctx, m)
	channels.LogResult(c.log, Name, m, r, err)
	return r, err
}

func (c *Channel) send(ctx context.Context, m channels.Message) (channels.Receipt, error) {
	msg, id, err := c.build(m)
	if err != nil {
		return channels.Receipt{}, err
	}
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return channels.Receipt{}, channels.TransportError(Name, ctx.Err())
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := c.deliver(ctx, msg); err != nil {
		return channels.Receipt{}, err
	}
	return channels.Receipt{ProviderID: id, Status: "accepted"}, nil
}

// deliver runs one SMTP session. A failure after the server accepted the
// data (QUIT, say) still counts as delivered: resending would duplicate.
func (c *Channel) deliver(ctx context.Context, msg *mail.Msg) error {
	d := &dialer{ctx: ctx, tls: c.tls, implicit: c.srv.mode == TLSImplicit}
	defer d.stop()
	cl, err := c.client(d)
	if err != nil {
		return channels.NewPermanent(Name, "config", err)
	}
	err = cl.DialAndSendWithContext(ctx, msg)
	if err == nil || msg.IsDelivered() {
		return nil
	}
	return classify(ctx, err)
}

func (c *Channel) client(d *dialer) (*mail.Client, error) {
	opts := []mail.Option{
		mail.WithPort(c.srv.port),
		// Our context ends the session first; go-mail's own per-command
		// deadline is a backstop, and its error would hide the timeout.
		mail.WithTimeout(c.cfg.Timeout + time.Second),
		mail.WithTLSConfig(c.tls),
		mail.WithDialContextFunc(d.dial),
	}
	switch c.srv.mode {
	case TLSNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	case TLSImplicit:
		opts = append(opts, mail.WithSSL())
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if c.srv.user != "" {
		// PLAIN: go-mail refuses it on a clear connection except to localhost.
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain),
			mail.WithUsername(c.srv.user), mail.WithPassword(c.srv.pass))
	}
	return mail.NewClient(c.srv.host, opts...)
}

// dialer opens the session's connection and closes it when the send's
// context ends: go-mail only watches the context while dialing.
type dialer struct {
	ctx      context.Context
	tls      *tls.Config
	implicit bool
	after    func() bool
}

func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if d.implicit {
		tc := tls.Client(conn, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	d.after = context.AfterFunc(d.ctx, func() { conn.Close() })
	return conn, nil
}

func (d *dialer) stop() {
	if d.after != nil {
		d.after()
	}
}
