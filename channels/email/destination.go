package email

import (
	"net"
	"strconv"
	"strings"

	"github.com/viogen-alerts/dispatcher/channels"
)

// Destination is the SMTP relay every message goes through, host:port.
func (c *Channel) Destination(channels.Message) string {
	return net.JoinHostPort(strings.ToLower(c.srv.host), strconv.Itoa(c.srv.port))
}
