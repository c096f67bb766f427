package dispatcher

import (
	"fmt"

	"github.com/viogen-alerts/dispatcher/channels/webhook"
	"github.com/viogen-alerts/dispatcher/rules"
)

// ConfigDirectory reads addresses from the configuration; pager routing
// keys come from the environment variable the contact names, through
// Secret (only cmd reads the environment).
type ConfigDirectory struct {
	Cfg    *rules.Config
	Secret func(name string) string
	// Live, when set, supplies the configuration in use instead of Cfg.
	Live *Live
}

func (c ConfigDirectory) cfg() *rules.Config {
	if c.Live != nil {
		return c.Live.Load().Config
	}
	return c.Cfg
}

// SigningSecret returns the contact's own webhook signing key, or nil
// when the contact names none (the channel's default key signs).
func (c ConfigDirectory) SigningSecret(contactID string) ([]byte, error) {
	_, ct, ok := c.cfg().Contact(contactID)
	if !ok || ct.WebhookSecretEnv == "" {
		return nil, nil
	}
	v := c.Secret(ct.WebhookSecretEnv)
	if len(v) < webhook.MinSecretLen {
		return nil, fmt.Errorf("contact %s: webhook secret variable %s is unset or shorter than %d bytes", contactID, ct.WebhookSecretEnv, webhook.MinSecretLen)
	}
	return []byte(v), nil
}

// Address implements Directory. Its errors name the contact and the
// channel, never an address.
func (c ConfigDirectory) Address(contactID, channel string) (string, error) {
	_, ct, ok := c.cfg().Contact(contactID)
	if !ok {
		return "", fmt.Errorf("contact %s is no longer in the configuration", contactID)
	}
	var addr string
	switch channel {
	case rules.ChannelSMS:
		addr = ct.SMS
	case rules.ChannelEmail:
		addr = ct.Email
	case rules.ChannelWebhook:
		addr = ct.WebhookURL
	case rules.ChannelPager:
		if ct.PagerKeyEnv == "" {
			break
		}
		if addr = c.Secret(ct.PagerKeyEnv); addr == "" {
			return "", fmt.Errorf("contact %s: pager routing key variable %s is not set", contactID, ct.PagerKeyEnv)
		}
	}
	if addr == "" {
		return "", fmt.Errorf("contact %s has no %s address", contactID, channel)
	}
	return addr, nil
}
