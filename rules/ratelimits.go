package rules

import (
	"math"
	"net"
	"net/url"
	"strings"
)

// RateLimits are the limits per destination: each Twilio sender or
// messaging service, the SMTP relay, each PagerDuty routing key, each
// webhook host. Every instance shares one budget per destination.
type RateLimits struct {
	SMS          *Rate             `yaml:"sms" default:"10/s, burst 10, reserve 5" doc:"Each Twilio sender (TWILIO_FROM) or messaging service (TWILIO_MESSAGING_SERVICE_SID). Twilio's default for an alphanumeric sender id; a US/Canada long code takes 1/s, a toll-free number 3/s, a messaging service the sum of its senders."`
	Email        *Rate             `yaml:"email" default:"5/s, burst 5, reserve 2" doc:"The SMTP relay (host:port of SMTP_URL). A conservative default: raise it to what the relay allows."`
	Pager        *Rate             `yaml:"pager" default:"2/s, burst 4, reserve 2" doc:"Each PagerDuty routing key: the Events API v2 takes 120 events a minute per key."`
	Webhook      *Rate             `yaml:"webhook" default:"10/s, burst 20, reserve 10" doc:"Each webhook host (scheme, host and port): receivers are agencies' own servers."`
	Destinations []DestinationRate `yaml:"destinations" doc:"Limits of single destinations, instead of their channel's."`
}

// Rate is a GCRA limit: per_second sustained, burst at once, the last
// critical_reserve of the burst for critical alerts only.
type Rate struct {
	PerSecond       *float64 `yaml:"per_second" required:"true" doc:"Messages per second, sustained, for all instances together. 0 means unlimited."`
	Burst           *int     `yaml:"burst" doc:"Messages that may go at once after a quiet spell, at least 1. Default: per_second rounded up."`
	CriticalReserve *int     `yaml:"critical_reserve" doc:"How many of the burst only critical alerts may take: a non-critical message waits while fewer are left. Less than burst. Default: half the burst, rounded down."`
}

// DestinationRate is the limit of one destination, named by exactly one
// of its keys.
type DestinationRate struct {
	SMSSender       string   `yaml:"sms_sender" doc:"A Twilio sender: E.164 number, alphanumeric sender id or messaging service SID (MG + 32 hex), as TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID holds it."`
	SMTPRelay       string   `yaml:"smtp_relay" doc:"The SMTP relay as host:port."`
	PagerKeyEnv     string   `yaml:"pager_key_env" doc:"The environment variable holding a PagerDuty routing key (as contacts name it): the key itself stays out of the file."`
	WebhookHost     string   `yaml:"webhook_host" doc:"A webhook receiver as https://host[:port]; every URL on that host and port shares the limit."`
	PerSecond       *float64 `yaml:"per_second" required:"true" doc:"As rate_limits.CHANNEL.per_second."`
	Burst           *int     `yaml:"burst" doc:"As rate_limits.CHANNEL.burst."`
	CriticalReserve *int     `yaml:"critical_reserve" doc:"As rate_limits.CHANNEL.critical_reserve."`
}

// Limit is a resolved rate limit. PerSecond <= 0 means unlimited.
type Limit struct {
	PerSecond float64
	Burst     int
	Reserve   int
}

// DefaultRateLimits are the channel limits of a file that names none;
// docs/configuration.md cites the providers' documents they come from.
var DefaultRateLimits = map[string]Rate{
	"sms":     {PerSecond: ptr(10.0)},
	"email":   {PerSecond: ptr(5.0)},
	"pager":   {PerSecond: ptr(2.0), Burst: ptr(4)},
	"webhook": {PerSecond: ptr(10.0), Burst: ptr(20)},
}

func ptr[T any](v T) *T { return &v }

// Resolve resolves a Rate's defaults: burst per_second rounded up (at least
// 1), reserve half the burst.
func (r Rate) Resolve() Limit {
	if r.PerSecond == nil || *r.PerSecond <= 0 {
		return Limit{}
	}
	ps := *r.PerSecond
	l := Limit{PerSecond: ps, Burst: max(1, int(math.Ceil(ps)))}
	if r.Burst != nil {
		l.Burst = *r.Burst
	}
	l.Reserve = l.Burst / 2
	if r.CriticalReserve != nil {
		l.Reserve = *r.CriticalReserve
	}
	return l
}

func (d DestinationRate) rate() Rate {
	return Rate{PerSecond: d.PerSecond, Burst: d.Burst, CriticalReserve: d.CriticalReserve}
}

// channelRate is the configured limit of a channel's destinations.
func (c *RateLimits) channelRate(channel string) (*Rate, bool) {
	var r *Rate
	switch channel {
	case "sms":
		r = c.SMS
	case "email":
		r = c.Email
	case "pager":
		r = c.Pager
	case "webhook":
		r = c.Webhook
	default:
		return nil, false
	}
	if r == nil {
		d := DefaultRateLimits[channel]
		return &d, false
	}
	return r, true
}

// RateLimit is the limit of one destination of a channel: its own entry
// if it has one (dest as the channel names it, or for the pager the
// contact's pager_key_env), else the channel's. explicit says whether the
// file set it (an environment override applies only to defaults).
func (c *Config) RateLimit(channel, dest, pagerKeyEnv string) (l Limit, explicit bool) {
	for _, d := range c.RateLimits.Destinations {
		if d.matches(channel, dest, pagerKeyEnv) {
			return d.rate().Resolve(), true
		}
	}
	r, set := c.RateLimits.channelRate(channel)
	if r == nil {
		return Limit{}, false
	}
	return r.Resolve(), set
}

func (d DestinationRate) matches(channel, dest, pagerKeyEnv string) bool {
	switch channel {
	case "sms":
		return d.SMSSender != "" && d.SMSSender == dest
	case "email":
		return d.SMTPRelay != "" && strings.EqualFold(d.SMTPRelay, dest)
	case "pager":
		return d.PagerKeyEnv != "" && d.PagerKeyEnv == pagerKeyEnv
	case "webhook":
		return d.WebhookHost != "" && d.WebhookHost == dest
	}
	return false
}

// WebhookOrigin is the destination of a webhook URL: scheme://host:port,
// lower case, with the scheme's port when the URL names none. The webhook
// channel names its destinations the same way.
func WebhookOrigin(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", false
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port), true
}
