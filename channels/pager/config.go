package pager

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/sirupsen/logrus"
)

// DefaultURL is PagerDuty's Events API host.
const DefaultURL = "https://events.pagerduty.com"

// DefaultTimeout bounds one event POST.
const DefaultTimeout = 10 * time.Second

// DefaultMaxConns is the connection cap when MaxConns is 0.
const DefaultMaxConns = 16

// DefaultSource names us in payload.source when a message has no Source.
const DefaultSource = "viogen-dispatcher"

// Config configures the PagerDuty channel. Routing keys come per message, in
// Message.To, as each unit has its own service.
type Config struct {
	URL     string        // base URL; DefaultURL when ""
	Timeout time.Duration // per event; DefaultTimeout when 0
	// MaxConns caps the connections to the Events API (DefaultMaxConns
	// when 0). An event waiting for one spends its Timeout waiting, so the
	// cap must not be below the events sent at once: cmd sets it to them.
	MaxConns int
	Source   string // DefaultSource when ""
	Logger   logrus.FieldLogger
}

// ConfigFromEnv reads PAGERDUTY_EVENTS_URL and PAGERDUTY_TIMEOUT (a Go duration).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{URL: getenv("PAGERDUTY_EVENTS_URL")}
	if v := getenv("PAGERDUTY_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return cfg, fmt.Errorf("pager: PAGERDUTY_TIMEOUT: %w", err)
		}
		cfg.Timeout = d
	}
	return cfg, cfg.validate()
}

func (c Config) validate() error {
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("pager: URL must be http(s)://host[:port]")
		}
	}
	if c.Timeout < 0 {
		return errors.New("pager: Timeout must not be negative")
	}
	return nil
}
