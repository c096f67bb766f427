package sms

import "github.com/viogen-alerts/dispatcher/channels"

// Destination is the Twilio sender every message goes through: the
// messaging service when one is set, else the From sender. Twilio queues
// and limits per sender.
func (c *Channel) Destination(channels.Message) string {
	if c.cfg.MessagingServiceSID != "" {
		return c.cfg.MessagingServiceSID
	}
	return c.cfg.From
}
