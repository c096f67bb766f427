package providertest

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

type smtpSession struct {
	f      *SMTP
	tls    bool
	user   string
	authed bool
	from   string
	to     []string
	done   sync.Once
}

func (f *SMTP) newSession(c *smtp.Conn) (smtp.Session, error) {
	f.sessions.Add(1)
	_, isTLS := c.TLSConnectionState()
	return &smtpSession{f: f, tls: isTLS}, nil
}

func (s *smtpSession) AuthMechanisms() []string {
	if s.f.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || s.f.user == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.f.user || pass != s.f.pass {
			return smtp.ErrAuthFailed
		}
		s.authed, s.user = true, user
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.f.rec.attempts.Add(1)
	if s.f.user != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	switch s.f.fault(to) {
	case Rejected, Unsubscribed:
		// Real servers quote the address: the channel must not repeat it.
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: "<" + to + ">: Recipient address rejected: User unknown"}
	case RateLimited:
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "Too many messages, try again later"}
	case ServerError:
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary local problem"}
	case Hang:
		s.hang()
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Timeout"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *smtpSession) hang() {
	t := time.NewTimer(maxHang)
	defer t.Stop()
	select {
	case <-s.f.closing:
	case <-t.C:
	}
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(s.to) == 0 {
		return errors.New("no valid recipients")
	}
	s.f.rec.add(SMTPMessage{
		From: s.from, To: append([]string(nil), s.to...), Data: b,
		User: s.user, TLS: s.tls, Received: time.Now(),
	})
	return nil
}

func (s *smtpSession) Reset() { s.from, s.to = "", nil }

func (s *smtpSession) Logout() error {
	s.done.Do(func() { s.f.sessions.Add(-1) })
	return nil
}
