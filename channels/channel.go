package channels

import "context"

// Message is one rendered notification for one contact on one channel.
type Message struct {
	ID        string // intent id: the idempotency key (webhook Idempotency-Key header, pager dedup fallback, email Message-ID seed)
	AlertID   string // alert reference; pager dedup_key
	CaseRef   string // opaque case reference
	ContactID string // contact id, for logs
	Severity  string // info|warning|error|critical (PagerDuty vocabulary)
	Critical  bool
	To        string // phone (E.164), email address, pager routing key, or webhook URL depending on channel
	Subject   string // email subject; pager summary when Body empty
	Body      string
	Action    string // pager only: "trigger" (default), "acknowledge", "resolve"
	Source    string // pager payload.source, e.g. "viogen-dispatcher"
	// Secret, when set, signs this message instead of the channel's own
	// key (webhook: the receiving agency's shared secret). Never logged.
	Secret []byte
}

// Receipt is what the provider said when it accepted a message.
type Receipt struct {
	ProviderID string // Twilio sid, SMTP Message-ID, PagerDuty dedup_key, webhook response id or ""
	Status     string // the provider's status word, e.g. "queued", "accepted", "success"
}

// Channel delivers messages through one provider. Send returns a *Error
// (see IsPermanent, RetryAfter) when the provider did not accept the message.
type Channel interface {
	Name() string // "sms", "email", "pager", "webhook", "log"
	Send(ctx context.Context, m Message) (Receipt, error)
}

// Destined is a channel whose provider has destinations of its own: the
// Twilio sender, the SMTP relay, the PagerDuty routing key, the webhook
// host. Rate limits are kept per destination.
type Destined interface {
	// Destination names the provider-side endpoint m goes through, never
	// its recipient, in a form fit for a Redis key and a metric label (a
	// secret such as a routing key only as a hash). "" when m has none.
	Destination(m Message) string
}

// DestinationOf is c's destination for m, or "" when c has none.
func DestinationOf(c Channel, m Message) string {
	if d, ok := c.(Destined); ok {
		return d.Destination(m)
	}
	return ""
}
