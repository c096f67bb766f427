// Package pager pages through PagerDuty's Events API v2 with plain net/http.
package pager

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/channels"
)

// Name is the channel name.
const Name = "pager"

const maxResponse = 64 << 10

// Channel sends events to PagerDuty. It is safe for concurrent use.
type Channel struct {
	cfg       Config
	endpoint  string
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
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	log := cfg.Logger
	if log == nil {
		log = channels.NopLogger()
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxConnsPerHost = cmp.Or(cfg.MaxConns, DefaultMaxConns)
	t.MaxIdleConnsPerHost = t.MaxConnsPerHost // a burst's connections are reused, not redialled
	return &Channel{
		cfg:       cfg,
		endpoint:  strings.TrimSuffix(cfg.URL, "/") + "/v2/enqueue",
		transport: t,
		client:    &http.Client{Transport: t, Timeout: cfg.Timeout},
		log:       log,
	}, nil
}

// Name returns "pager".
func (c *Channel) Name() string { return Name }

// Close drops idle connections.
func (c *Channel) Close() error {
	c.transport.CloseIdleConnections()
	return nil
}

// Send posts one event. Re-sending is idempotent: PagerDuty merges events
// with the same dedup_key into one incident.
func (c *Channel) Send(ctx context.Context, m channels.Message) (channels.Receipt, error) {
	r, err := c.send(ctx, m)
	channels.LogResult(c.log, Name, m, r, err)
	return r, err
}

func (c *Channel) send(ctx context.Context, m channels.Message) (channels.Receipt, error) {
	ev := NewEvent(m, c.cfg.Source)
	if err := check(ev); err != nil {
		return channels.Receipt{}, err
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return channels.Receipt{}, channels.NewPermanent(Name, "encode", fmt.Errorf("encode event: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return channels.Receipt{}, channels.NewPermanent(Name, "request", fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return channels.Receipt{}, channels.TransportError(Name, err)
	}
	defer resp.Body.Close()
	return answer(resp, ev)
}

func check(ev Event) error {
	switch {
	case ev.RoutingKey == "":
		return channels.NewPermanent(Name, channels.CodeInvalidRecipient, errors.New("empty routing key"))
	case !validAction(ev.EventAction):
		return channels.NewPermanent(Name, "invalid_action", fmt.Errorf("event_action %q", ev.EventAction))
	case ev.DedupKey == "" && ev.EventAction != "trigger":
		return channels.NewPermanent(Name, "invalid_event", fmt.Errorf("%s needs an alert id", ev.EventAction))
	}
	return nil
}

// answer reads PagerDuty's reply. Its error messages describe the event's
// shape, never our data, so they are kept.
func answer(resp *http.Response, ev Event) (channels.Receipt, error) {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	var r Response
	_ = json.Unmarshal(raw, &r)
	if resp.StatusCode == http.StatusAccepted || (resp.StatusCode >= 200 && resp.StatusCode < 300) {
		dk := r.DedupKey
		if dk == "" {
			dk = ev.DedupKey
		}
		return channels.Receipt{ProviderID: dk, Status: r.Status}, nil
	}
	return channels.Receipt{}, channels.HTTPStatus(Name, resp.StatusCode, resp.Header, time.Now(), describe(resp.StatusCode, r))
}

func describe(status int, r Response) error {
	msg := fmt.Sprintf("pagerduty answered %d", status)
	if r.Message != "" {
		msg += ": " + channels.Truncate(r.Message, 200)
	}
	if len(r.Errors) > 0 {
		msg += " (" + channels.Truncate(strings.Join(r.Errors, "; "), 500) + ")"
	}
	return errors.New(msg)
}
