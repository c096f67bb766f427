package webhook

import (
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
)

// DefaultTimeout bounds one delivery.
const DefaultTimeout = 10 * time.Second

// DefaultMaxConns is the per-host connection cap when MaxConns is 0.
const DefaultMaxConns = 16

// MinSecretLen is the shortest signing secret New accepts.
const MinSecretLen = 16

// Config configures the webhook channel.
type Config struct {
	Secret  []byte        // HMAC key shared with receivers; at least MinSecretLen bytes
	Timeout time.Duration // per delivery; DefaultTimeout when 0
	// MaxConns caps the connections per receiver host (DefaultMaxConns
	// when 0). A delivery waiting for one spends its Timeout waiting, so
	// the cap must not be below the deliveries run at once: cmd sets it
	// to them.
	MaxConns  int
	AllowHTTP bool   // accept http:// targets (tests, local receivers); https only otherwise
	UserAgent string // "" = "viogen-dispatcher"
	Logger    logrus.FieldLogger
	Now       func() time.Time // clock for timestamps; time.Now when nil
}

// ConfigFromEnv reads WEBHOOK_SECRET and WEBHOOK_TIMEOUT (a Go duration).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{Secret: []byte(getenv("WEBHOOK_SECRET"))}
	if v := getenv("WEBHOOK_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return cfg, fmt.Errorf("webhook: WEBHOOK_TIMEOUT: %w", err)
		}
		cfg.Timeout = d
	}
	return cfg, cfg.validate()
}

func (c Config) validate() error {
	if len(c.Secret) < MinSecretLen {
		return fmt.Errorf("webhook: Secret must be at least %d bytes", MinSecretLen)
	}
	if c.Timeout < 0 {
		return errors.New("webhook: Timeout must not be negative")
	}
	return nil
}
