package webhook

import (
	"net"
	"net/url"
	"strings"

	"github.com/viogen-alerts/dispatcher/channels"
)

// Destination is the receiving host of a message: scheme://host:port,
// lower case, with the scheme's port when the URL names none (as
// rules.WebhookOrigin, which names configured hosts). "" for a URL that
// does not parse: the send refuses it anyway.
func (c *Channel) Destination(m channels.Message) string {
	u, err := url.Parse(m.To)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}
