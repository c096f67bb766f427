// Package log is the development sink: it logs each message as a PII-safe
// line and keeps the last few in memory for an outbox page, instead of
// sending anything. It can stand in for any channel name.
package log

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/channels"
)

// DefaultKeep is how many messages New keeps when given keep <= 0.
const DefaultKeep = 200

// Sent is one message as the sink recorded it. To is already masked.
type Sent struct {
	At         time.Time `json:"at"`
	Channel    string    `json:"channel"`
	ProviderID string    `json:"provider_id"`
	ID         string    `json:"id"`
	AlertID    string    `json:"alert_id"`
	CaseRef    string    `json:"case_ref"`
	ContactID  string    `json:"contact_id"`
	Severity   string    `json:"severity"`
	Critical   bool      `json:"critical"`
	To         string    `json:"to"`
	Subject    string    `json:"subject"`
	Body       string    `json:"body"`
	Action     string    `json:"action,omitempty"`
}

// Channel is the sink. It is safe for concurrent use.
type Channel struct {
	name string
	log  logrus.FieldLogger

	mu   sync.Mutex
	ring []Sent // fixed size; next is the slot written next
	next int
	full bool
	seq  uint64
}

var _ channels.Channel = (*Channel)(nil)

// New returns a sink answering to name (e.g. "sms") that keeps the last
// keep messages. A nil logger logs nowhere.
func New(name string, logger logrus.FieldLogger, keep int) *Channel {
	if keep <= 0 {
		keep = DefaultKeep
	}
	if logger == nil {
		logger = channels.NopLogger()
	}
	return &Channel{name: name, log: logger, ring: make([]Sent, keep)}
}

// Name returns the name given to New.
func (c *Channel) Name() string { return c.name }

// Send logs and records m; it fails only when ctx is already done, like a
// real channel would.
func (c *Channel) Send(ctx context.Context, m channels.Message) (channels.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return channels.Receipt{}, channels.TransportError(c.name, err)
	}
	s := c.record(m)
	c.log.WithFields(channels.LogFields(c.name, m)).WithFields(logrus.Fields{
		"provider_id": s.ProviderID,
		"severity":    m.Severity,
		"subject":     m.Subject,
		"body":        m.Body,
	}).Info("outbox")
	return channels.Receipt{ProviderID: s.ProviderID, Status: "logged"}, nil
}

func (c *Channel) record(m channels.Message) Sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	s := Sent{
		At: time.Now().UTC(), Channel: c.name, ProviderID: c.name + "-" + strconv.FormatUint(c.seq, 10),
		ID: m.ID, AlertID: m.AlertID, CaseRef: m.CaseRef, ContactID: m.ContactID,
		Severity: m.Severity, Critical: m.Critical, To: channels.Mask(m.To),
		Subject: m.Subject, Body: m.Body, Action: m.Action,
	}
	c.ring[c.next] = s
	c.next = (c.next + 1) % len(c.ring)
	c.full = c.full || c.next == 0
	return s
}

// Recent returns the kept messages, newest first.
func (c *Channel) Recent() []Sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.next
	if c.full {
		n = len(c.ring)
	}
	out := make([]Sent, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, c.ring[(c.next-i+len(c.ring))%len(c.ring)])
	}
	return out
}
