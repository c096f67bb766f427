package email

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"
)

// TLS modes.
const (
	TLSStartTLS = "starttls" // default: STARTTLS, mandatory
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSNone     = "none"     // plain text, for a local relay only
)

// Defaults.
const (
	DefaultTimeout  = 15 * time.Second
	DefaultMaxConns = 4
)

// Config configures the email channel. Only cmd reads the environment.
type Config struct {
	URL       string        // smtp://user:pass@host:port; smtps:// means TLS "tls"
	Password  string        // overrides the URL's password, so it can live in a secret
	From      string        // sender, "addr" or "Name <addr>"
	TLS       string        // TLSStartTLS (""), TLSImplicit or TLSNone
	TLSConfig *tls.Config   // optional, e.g. a private CA; ServerName defaults to the host
	Timeout   time.Duration // whole SMTP session; DefaultTimeout when 0
	MaxConns  int           // concurrent SMTP sessions; DefaultMaxConns when 0
	Logger    logrus.FieldLogger
}

// ConfigFromEnv reads SMTP_URL, SMTP_PASSWORD, SMTP_FROM, SMTP_TLS and
// SMTP_TIMEOUT (a Go duration) through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		URL:      getenv("SMTP_URL"),
		Password: getenv("SMTP_PASSWORD"),
		From:     getenv("SMTP_FROM"),
		TLS:      getenv("SMTP_TLS"),
	}
	if v := getenv("SMTP_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return cfg, fmt.Errorf("email: SMTP_TIMEOUT: %w", err)
		}
		cfg.Timeout = d
	}
	_, err := cfg.server()
	return cfg, err
}

// server is a parsed Config.
type server struct {
	host, user, pass, mode string
	port                   int
}

// server parses and checks the config. Errors never quote the URL: it may
// hold the password.
func (c Config) server() (server, error) {
	u, err := url.Parse(c.URL)
	if err != nil || u.Hostname() == "" {
		return server{}, errors.New("email: URL must be smtp://[user[:pass]@]host[:port]")
	}
	s := server{host: u.Hostname(), mode: c.TLS, user: u.User.Username()}
	s.pass, _ = u.User.Password()
	if c.Password != "" {
		s.pass = c.Password
	}
	if err := s.setMode(u.Scheme); err != nil {
		return server{}, err
	}
	if err := s.setPort(u.Port()); err != nil {
		return server{}, err
	}
	if c.From == "" {
		return server{}, errors.New("email: From is required")
	}
	if c.Timeout < 0 || c.MaxConns < 0 {
		return server{}, errors.New("email: Timeout and MaxConns must not be negative")
	}
	return s, nil
}

func (s *server) setMode(scheme string) error {
	switch scheme {
	case "smtp":
	case "smtps":
		if s.mode == "" {
			s.mode = TLSImplicit
		}
	default:
		return errors.New("email: URL scheme must be smtp or smtps")
	}
	if s.mode == "" {
		s.mode = TLSStartTLS
	}
	if s.mode != TLSStartTLS && s.mode != TLSImplicit && s.mode != TLSNone {
		return fmt.Errorf("email: TLS must be %s, %s or %s", TLSStartTLS, TLSImplicit, TLSNone)
	}
	return nil
}

func (s *server) setPort(p string) error {
	if p == "" {
		s.port = map[string]int{TLSStartTLS: 587, TLSImplicit: 465, TLSNone: 25}[s.mode]
		return nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return errors.New("email: bad port in URL")
	}
	s.port = n
	return nil
}
