package rules

import (
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

var (
	messagingServiceRe = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	alphaSenderRe      = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
)

// rateLimits checks every limit and that each destination is named once,
// by exactly one key, in the form the channel names it.
func (v *validator) rateLimits() {
	rl := &v.cfg.RateLimits
	for _, c := range []struct {
		key string
		r   *Rate
	}{{"sms", rl.SMS}, {"email", rl.Email}, {"pager", rl.Pager}, {"webhook", rl.Webhook}} {
		if c.r != nil {
			v.rate("rate_limits."+c.key, *c.r)
		}
	}
	seen := map[string]string{}
	for i := range rl.Destinations {
		path := indexPath("rate_limits.destinations", i)
		d := &rl.Destinations[i]
		v.rate(path, d.rate())
		if id := v.destination(path, d); id != "" {
			v.unique(seen, "rate limit destination", id, path)
		}
	}
}

func (v *validator) rate(path string, r Rate) {
	if r.PerSecond == nil {
		return // reported as missing
	}
	if *r.PerSecond < 0 {
		v.errorf(path+".per_second", "per_second must not be negative (0 means unlimited)")
		return
	}
	l := r.Resolve()
	if r.Burst != nil && *r.Burst < 1 {
		v.errorf(path+".burst", "burst must be at least 1")
		return
	}
	if r.CriticalReserve != nil && (*r.CriticalReserve < 0 || *r.CriticalReserve >= max(l.Burst, 1)) {
		v.errorf(path+".critical_reserve", "critical_reserve must be 0 or more and less than burst (%d): non-critical alerts need at least one token", l.Burst)
	}
}

// destination checks the one key naming a destination and returns an id
// for duplicates ("" when it is wrong). A webhook host is stored in the
// form the channel names it (scheme://host:port).
func (v *validator) destination(path string, d *DestinationRate) string {
	n := 0
	for _, s := range []string{d.SMSSender, d.SMTPRelay, d.PagerKeyEnv, d.WebhookHost} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		v.errorf(path, "name exactly one of sms_sender, smtp_relay, pager_key_env, webhook_host")
		return ""
	}
	switch {
	case d.SMSSender != "":
		if !e164Re.MatchString(d.SMSSender) && !messagingServiceRe.MatchString(d.SMSSender) && !alphaSenderRe.MatchString(d.SMSSender) {
			v.errorf(path+".sms_sender", "invalid sender %q: want an E.164 number, an alphanumeric sender id (up to 11 letters, digits, spaces) or a messaging service SID (MG + 32 hex)", d.SMSSender)
			return ""
		}
		return "sms:" + d.SMSSender
	case d.SMTPRelay != "":
		host, port, err := net.SplitHostPort(d.SMTPRelay)
		if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
			v.errorf(path+".smtp_relay", "invalid relay %q: want host:port, as in SMTP_URL", d.SMTPRelay)
			return ""
		}
		return "email:" + strings.ToLower(d.SMTPRelay)
	case d.PagerKeyEnv != "":
		if !envRe.MatchString(d.PagerKeyEnv) {
			v.errorf(path+".pager_key_env", "invalid environment variable name %q", d.PagerKeyEnv)
			return ""
		}
		return "pager:" + d.PagerKeyEnv
	}
	origin, ok := WebhookOrigin(d.WebhookHost)
	u, err := url.Parse(d.WebhookHost)
	if !ok || err != nil || u.Scheme != "https" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		v.errorf(path+".webhook_host", "invalid webhook host %q: want https://host[:port], no path", d.WebhookHost)
		return ""
	}
	d.WebhookHost = origin
	return "webhook:" + origin
}
