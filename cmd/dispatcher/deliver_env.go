package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/viogen-alerts/dispatcher/dispatcher"
)

const deliverEnvHelp = `
Delivery (durations like 15s, 2m, 24h):
  DELIVER_WORKERS       concurrent sends per channel but e-mail (default 128)
  DELIVER_EMAIL_WORKERS concurrent e-mail sends (default 8, or DELIVER_WORKERS if smaller)
  DELIVER_SEND_TIMEOUT  longest a provider call may take (default 15s)
  DELIVER_LEASE         how long a dead instance's jobs wait before another takes them (default 30s)
  SHUTDOWN_GRACE        on SIGTERM, how long in-flight sends may finish (default 20s)
  NOTICE_HORIZON        how long a coordinating-center notice is retried (default 24h)
  DELIVER_HANDOFF       on (default) or off (or true/false): with the decide stage in the same process, its
                        intents start delivery at once instead of after their Kafka round trip
  SMS_RECEIPT_TIMEOUT   an accepted SMS without a final delivery receipt after this is marked
                        unconfirmed, and a critical one falls back (default 5m; 0 = off,
                        but status callbacks that failed half-way are still finished)
`

// defaultReceiptTimeout is SMS_RECEIPT_TIMEOUT when unset: Twilio's final
// status usually arrives within seconds to a minute or two.
const defaultReceiptTimeout = 5 * time.Minute

// deliverConfig reads the delivery settings from the environment; a bad
// value is refused with its name, never silently defaulted.
func deliverConfig(getenv env, brokers []string) (dispatcher.DeliverConfig, error) {
	c := dispatcher.DeliverConfig{Brokers: brokers}
	durs := []struct {
		name string
		dst  *time.Duration
	}{
		{"DELIVER_SEND_TIMEOUT", &c.SendTimeout}, {"DELIVER_LEASE", &c.Lease},
		{"SHUTDOWN_GRACE", &c.Grace}, {"NOTICE_HORIZON", &c.NoticeHorizon},
	}
	for _, d := range durs {
		v := getenv(d.name)
		if v == "" {
			continue
		}
		x, err := time.ParseDuration(v)
		if err != nil || x <= 0 {
			return c, fmt.Errorf("%s=%q: want a positive duration such as 15s or 2m", d.name, v)
		}
		*d.dst = x
	}
	c.ReceiptTimeout = defaultReceiptTimeout
	if v := getenv("SMS_RECEIPT_TIMEOUT"); v != "" {
		x, err := time.ParseDuration(v)
		if err != nil || x < 0 {
			return c, fmt.Errorf("SMS_RECEIPT_TIMEOUT=%q: want a duration such as 5m, or 0 to turn the check off", v)
		}
		c.ReceiptTimeout = x
	}
	switch v := strings.ToLower(strings.TrimSpace(getenv("DELIVER_HANDOFF"))); v {
	case "", "on":
	case "off":
		c.NoHandoff = true
	default:
		// Also true or false, as the other switches (envBool).
		on, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("DELIVER_HANDOFF=%q: want on or off (or true or false)", getenv("DELIVER_HANDOFF"))
		}
		c.NoHandoff = !on
	}
	counts := []struct {
		name string
		dst  *int
	}{{"DELIVER_WORKERS", &c.Workers}, {"DELIVER_EMAIL_WORKERS", &c.EmailWorkers}}
	for _, w := range counts {
		v := getenv(w.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 1000 {
			return c, fmt.Errorf("%s=%q: want a whole number from 1 to 1000", w.name, v)
		}
		*w.dst = n
	}
	return c, nil
}
