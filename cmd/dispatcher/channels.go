package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"

	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/channels"
	"github.com/viogen-alerts/dispatcher/channels/email"
	chlog "github.com/viogen-alerts/dispatcher/channels/log"
	"github.com/viogen-alerts/dispatcher/channels/pager"
	"github.com/viogen-alerts/dispatcher/channels/sms"
	"github.com/viogen-alerts/dispatcher/channels/webhook"
)

const channelEnvHelp = `
Channels (a channel without its settings is off in run, a log sink in dev):
  sms      TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID,
           TWILIO_STATUS_CALLBACK_URL (public URL of /v1/twilio/status), TWILIO_API_URL,
           TWILIO_INBOUND_URL (public URL of /v1/twilio/inbound, for "ACK <code>" replies)
  email    SMTP_URL (smtp://user:pass@host:port), SMTP_PASSWORD, SMTP_FROM,
           SMTP_TLS = starttls (default) | tls | none
  pager    PAGERDUTY_EVENTS_URL (default the public endpoint; dev: log unless set);
           routing keys in the variables the contacts' pager_key_env name
  webhook  WEBHOOK_SECRET (HMAC-SHA256 signing key, 16+ bytes; contacts may name their
           own in webhook_secret_env)
  RATE_LIMIT_SMS, RATE_LIMIT_EMAIL, RATE_LIMIT_PAGER, RATE_LIMIT_WEBHOOK: messages
           per second per destination (sender, relay, routing key, host), shared by
           every instance, for channels the config's rate_limits leaves at their
           defaults (10, 5, 2, 10); 0 = unlimited. Over it messages wait in the
           queue, critical first, never dropped
`

// channelSet is what delivery sends through, and the dev sinks for /outbox.
type channelSet struct {
	chans map[string]channels.Channel
	sinks []*chlog.Channel
	// rates are RATE_LIMIT_<CHANNEL> overrides, by channel.
	rates map[string]float64
}

// buildChannels makes every channel whose settings are present; in dev the
// others become log sinks, in run they stay off (their sends fail
// permanently and take the fallback) and a warning says so. An HTTP
// channel may open as many connections as its lane runs sends at once
// (sendsAtOnce): a send queued for a connection would spend its timeout
// there, and a timeout is an ambiguous failure, retried.
func buildChannels(getenv env, log logrus.FieldLogger, dev bool, sendsAtOnce func(channel string) int) (*channelSet, error) {
	cs := &channelSet{chans: map[string]channels.Channel{}, rates: map[string]float64{}}
	type maker struct {
		name    string
		present bool
		make    func() (channels.Channel, error)
	}
	makers := []maker{
		{"sms", getenv("TWILIO_ACCOUNT_SID") != "", func() (channels.Channel, error) {
			c, err := sms.ConfigFromEnv(getenv)
			if err != nil {
				return nil, err
			}
			c.Logger, c.MaxConns = log, max(sms.DefaultMaxConns, sendsAtOnce("sms"))
			return sms.New(c)
		}},
		{"email", getenv("SMTP_URL") != "", func() (channels.Channel, error) {
			c, err := email.ConfigFromEnv(getenv)
			if err != nil {
				return nil, err
			}
			c.Logger = log
			return email.New(c)
		}},
		{"pager", !dev || getenv("PAGERDUTY_EVENTS_URL") != "", func() (channels.Channel, error) {
			c, err := pager.ConfigFromEnv(getenv)
			if err != nil {
				return nil, err
			}
			c.Logger, c.MaxConns = log, max(pager.DefaultMaxConns, sendsAtOnce("pager"))
			return pager.New(c)
		}},
		{"webhook", getenv("WEBHOOK_SECRET") != "", func() (channels.Channel, error) {
			c, err := webhook.ConfigFromEnv(getenv)
			if err != nil {
				return nil, err
			}
			c.Logger, c.MaxConns = log, max(webhook.DefaultMaxConns, sendsAtOnce("webhook"))
			return webhook.New(c)
		}},
	}
	for _, m := range makers {
		rate, set, err := rateFromEnv(getenv, m.name)
		if err != nil {
			return nil, err
		}
		if set {
			cs.rates[m.name] = rate
		}
		switch {
		case m.present:
			c, err := m.make()
			if err != nil {
				return nil, fmt.Errorf("%s channel: %w", m.name, err)
			}
			cs.chans[m.name] = c
		case dev:
			sink := chlog.New(m.name, log, 200)
			cs.chans[m.name], cs.sinks = sink, append(cs.sinks, sink)
		default:
			log.WithField("channel", m.name).Warn("channel has no settings: its sends fail and take the fallback")
		}
	}
	return cs, nil
}

// rateFromEnv reads RATE_LIMIT_<CHANNEL>; set is false when it is unset.
func rateFromEnv(getenv env, channel string) (rate float64, set bool, err error) {
	name := "RATE_LIMIT_" + map[string]string{"sms": "SMS", "email": "EMAIL", "pager": "PAGER", "webhook": "WEBHOOK"}[channel]
	v := getenv(name)
	if v == "" {
		return 0, false, nil
	}
	r, err := strconv.ParseFloat(v, 64)
	if err != nil || r < 0 || math.IsInf(r, 0) {
		return 0, false, fmt.Errorf("%s=%q: want messages per second per destination, e.g. 10 or 0.5 (0 = unlimited)", name, v)
	}
	return r, true, nil
}

// outbox serves what the dev sinks would have sent, newest first.
func (cs *channelSet) outbox(w http.ResponseWriter, _ *http.Request) {
	var all []chlog.Sent
	for _, s := range cs.sinks {
		all = append(all, s.Recent()...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].At.After(all[j].At) })
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(all)
}
