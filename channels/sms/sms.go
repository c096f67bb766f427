// Package sms sends alerts as SMS through Twilio (twilio-go), and checks and
// parses what Twilio posts back: delivery status callbacks and inbound SMS.
package sms

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"

	"github.com/sirupsen/logrus"
	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/viogen-alerts/dispatcher/channels"
)

// Name is the channel name.
const Name = "sms"

// MaxBody is Twilio's limit for one message body, in characters.
const MaxBody = 1600

var e164Re = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Channel sends SMS through Twilio's Messages API. It is safe for concurrent use.
type Channel struct {
	cfg    Config
	creds  *client.Credentials
	target *url.URL
	base   *http.Transport
	log    logrus.FieldLogger
}

var _ channels.Channel = (*Channel)(nil)

// New checks cfg and returns a ready channel.
func New(cfg Config) (*Channel, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	target, _ := parseAPIURL(cfg.APIURL)
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = channels.NopLogger()
	}
	return &Channel{
		cfg:    cfg,
		creds:  client.NewCredentials(cfg.AccountSID, cfg.AuthToken),
		target: target,
		base:   newBaseTransport(cmp.Or(cfg.MaxConns, DefaultMaxConns)),
		log:    log,
	}, nil
}

// Name returns "sms".
func (c *Channel) Name() string { return Name }

// Close drops idle connections.
func (c *Channel) Close() error {
	c.base.CloseIdleConnections()
	return nil
}

// Send posts one message to Twilio. Twilio has no idempotency key for
// Messages: an ambiguous failure (timeout after sending) may send twice,
// which beats not sending.
func (c *Channel) Send(ctx context.Context, m channels.Message) (channels.Receipt, error) {
	r, err := c.send(ctx, m)
	channels.LogResult(c.log, Name, m, r, err)
	return r, err
}

func (c *Channel) send(ctx context.Context, m channels.Message) (channels.Receipt, error) {
	if !e164Re.MatchString(m.To) {
		return channels.Receipt{}, channels.NewPermanent(Name, channels.CodeInvalidRecipient,
			fmt.Errorf("recipient %q is not an E.164 number", channels.Mask(m.To)))
	}
	if err := ctx.Err(); err != nil {
		return channels.Receipt{}, channels.TransportError(Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	rt := &call{ctx: ctx, base: c.base, target: c.target}
	msg, err := c.api(rt).CreateMessage(c.params(m))
	if err != nil {
		return channels.Receipt{}, classify(rt, err)
	}
	return channels.Receipt{ProviderID: deref(msg.Sid), Status: deref(msg.Status)}, nil
}

// api builds the SDK service around one call's transport; it is cheap, and
// it skips twilio.NewRestClient, which reads TWILIO_* from the environment.
func (c *Channel) api(rt *call) *openapi.ApiService {
	cl := &client.Client{
		Credentials: c.creds,
		HTTPClient:  &http.Client{Transport: rt, CheckRedirect: noRedirect},
	}
	cl.SetAccountSid(c.cfg.AccountSID)
	return openapi.NewApiService(&client.RequestHandler{Client: cl})
}

func (c *Channel) params(m channels.Message) *openapi.CreateMessageParams {
	p := &openapi.CreateMessageParams{}
	p.SetTo(m.To)
	p.SetBody(channels.Truncate(m.Body, MaxBody))
	if c.cfg.MessagingServiceSID != "" {
		p.SetMessagingServiceSid(c.cfg.MessagingServiceSID)
	} else {
		p.SetFrom(c.cfg.From)
	}
	if c.cfg.StatusCallbackURL != "" {
		p.SetStatusCallback(c.cfg.StatusCallbackURL)
	}
	return p
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
