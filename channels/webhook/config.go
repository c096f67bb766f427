package webhook

import (
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
)

// DefaultTimeout bounds one delivery.
const DefaultTimeout = 10 * time.Second

// MinSecretLen is the shortest signing secret New accepts.
const MinSecretLen = 16

// Config configures the webhook channel.
type Config struct {
	Secret    []byte        // HMAC key shared with receivers; at least MinSecretLen bytes
	Timeout   time.Duration // per delivery; DefaultTimeout when 0
	AllowHTTP bool          // accept http:// targets (tests, local receivers); https only otherwise
	UserAgent string        // "" = "viogen-dispatcher"
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
