// Package webhook delivers alerts as signed JSON POSTs, and gives receivers
// Verify to check them.
package webhook

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/channels"
)

// Name is the channel name.
const Name = "webhook"

// maxResponse bounds how much of a receiver's answer is read.
const maxResponse = 64 << 10

// Channel posts to the URL in Message.To. It is safe for concurrent use.
type Channel struct {
	cfg       Config
	transport *http.Transport
	client    *http.Client
	log       logrus.FieldLogger
}

var _ channels.Channel = (*Channel)(nil)

// New checks cfg and returns a ready channel.
func New(cfg Config) (*Channel, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "viogen-dispatcher"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = channels.NopLogger()
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxConnsPerHost = cmp.Or(cfg.MaxConns, DefaultMaxConns)
	t.MaxIdleConnsPerHost = t.MaxConnsPerHost // a burst's connections are reused, not redialled
	// Redirects are not followed: a signed alert goes only where configured.
	c := &http.Client{Transport: t, Timeout: cfg.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	return &Channel{cfg: cfg, transport: t, client: c, log: log}, nil
}

// Name returns "webhook".
func (c *Channel) Name() string { return Name }

// Close drops idle connections.
func (c *Channel) Close() error {
	c.transport.CloseIdleConnections()
	return nil
}

// Send delivers m. Receivers deduplicate on the Idempotency-Key header,
// which is m.ID, so retries are safe.
func (c *Channel) Send(ctx context.Context, m channels.Message) (channels.Receipt, error) {
	r, err := c.send(ctx, m)
	channels.LogResult(c.log, Name, m, r, err)
	return r, err
}

func (c *Channel) send(ctx context.Context, m channels.Message) (channels.Receipt, error) {
	if err := c.checkTarget(m.To); err != nil {
		return channels.Receipt{}, err
	}
	req, err := c.request(ctx, m)
	if err != nil {
		return channels.Receipt{}, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return channels.Receipt{}, channels.TransportError(Name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return channels.Receipt{}, channels.HTTPStatus(Name, resp.StatusCode, resp.Header, time.Now(),
			fmt.Errorf("receiver %s answered %d", channels.Mask(m.To), resp.StatusCode))
	}
	return channels.Receipt{ProviderID: responseID(body), Status: strconv.Itoa(resp.StatusCode)}, nil
}

func (c *Channel) checkTarget(to string) error {
	if ValidateURL(to, c.cfg.AllowHTTP) != nil {
		return channels.NewPermanent(Name, channels.CodeInvalidRecipient,
			fmt.Errorf("target %q is not an allowed URL", channels.Mask(to)))
	}
	return nil
}

func (c *Channel) request(ctx context.Context, m channels.Message) (*http.Request, error) {
	now := c.cfg.Now()
	body, err := json.Marshal(NewPayload(m, now))
	if err != nil {
		return nil, channels.NewPermanent(Name, "encode", fmt.Errorf("encode payload: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.To, bytes.NewReader(body))
	if err != nil {
		return nil, channels.NewPermanent(Name, channels.CodeInvalidRecipient, channels.StripURL(err))
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set(HeaderIdempotencyKey, m.ID)
	req.Header.Set(HeaderTimestamp, ts)
	secret := c.cfg.Secret
	if len(m.Secret) > 0 {
		secret = m.Secret // the receiving agency's own key
	}
	req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	return req, nil
}

// responseID takes "id" from a JSON answer, if there is one.
func responseID(body []byte) string {
	var r struct {
		ID any `json:"id"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.ID == nil {
		return ""
	}
	switch v := r.ID.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}
