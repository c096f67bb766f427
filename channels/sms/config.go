package sms

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/sirupsen/logrus"
)

// DefaultTimeout bounds one CreateMessage call: the SDK takes no context.
const DefaultTimeout = 10 * time.Second

// Config configures the Twilio SMS channel. Only cmd reads the environment.
type Config struct {
	AccountSID          string // AC + 32 hex
	AuthToken           string
	From                string // sender number or alphanumeric id; or:
	MessagingServiceSID string // MG...; used instead of From when set
	StatusCallbackURL   string // public URL Twilio posts delivery status to; "" = none
	// APIURL overrides scheme and host of https://api.twilio.com (a regional
	// edge, or a test server). Paths are kept.
	APIURL  string
	Timeout time.Duration      // per send; DefaultTimeout when 0
	Logger  logrus.FieldLogger // nil = no logging
	// MaxConns caps the connections to Twilio (DefaultMaxConns when 0).
	// A send waiting for one spends its Timeout waiting, and a timed-out
	// send is ambiguous (retried: Twilio has no idempotency key), so the
	// cap must not be below the sends run at once: cmd sets it to them.
	MaxConns int
}

// DefaultMaxConns is the connection cap when MaxConns is 0.
const DefaultMaxConns = 32

var (
	accountSIDRe = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	alnumRe      = regexp.MustCompile(`^[a-zA-Z0-9]+$`)
)

// ConfigFromEnv reads TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM,
// TWILIO_MESSAGING_SERVICE_SID, TWILIO_STATUS_CALLBACK_URL, TWILIO_API_URL
// and TWILIO_TIMEOUT (a Go duration) through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		AccountSID:          getenv("TWILIO_ACCOUNT_SID"),
		AuthToken:           getenv("TWILIO_AUTH_TOKEN"),
		From:                getenv("TWILIO_FROM"),
		MessagingServiceSID: getenv("TWILIO_MESSAGING_SERVICE_SID"),
		StatusCallbackURL:   getenv("TWILIO_STATUS_CALLBACK_URL"),
		APIURL:              getenv("TWILIO_API_URL"),
	}
	if v := getenv("TWILIO_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return cfg, fmt.Errorf("sms: TWILIO_TIMEOUT: %w", err)
		}
		cfg.Timeout = d
	}
	return cfg, cfg.validate()
}

// validate reports configuration mistakes without echoing secrets.
func (c Config) validate() error {
	if !accountSIDRe.MatchString(c.AccountSID) {
		return errors.New("sms: AccountSID must be AC followed by 32 hex digits")
	}
	// twilio-go itself refuses non-alphanumeric credentials, at send time.
	if !alnumRe.MatchString(c.AuthToken) {
		return errors.New("sms: AuthToken must be non-empty and alphanumeric")
	}
	if c.From == "" && c.MessagingServiceSID == "" {
		return errors.New("sms: need From or MessagingServiceSID")
	}
	if c.Timeout < 0 {
		return errors.New("sms: Timeout must not be negative")
	}
	if _, err := parseAPIURL(c.APIURL); err != nil {
		return err
	}
	return nil
}

// parseAPIURL returns nil for "" (the SDK's own base URL).
func parseAPIURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("sms: APIURL is not a URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("sms: APIURL must be http(s)://host[:port]")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, errors.New("sms: APIURL must not have a path or query: only scheme and host are replaced")
	}
	return u, nil
}
