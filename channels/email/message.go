package email

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/wneessen/go-mail"

	"github.com/viogen-alerts/dispatcher/channels"
)

// MessageID derives the Message-ID (with angle brackets) of intent id from
// the sender's domain. It is deterministic, so a resent alert carries the
// same Message-ID and mail clients and servers can recognize it.
func MessageID(id, from string) string {
	sum := sha256.Sum256([]byte("viogen-dispatcher/" + id))
	return "<" + hex.EncodeToString(sum[:16]) + "@" + domainOf(from) + ">"
}

func domainOf(from string) string {
	from = strings.TrimSuffix(strings.TrimSpace(from), ">")
	if at := strings.LastIndex(from, "@"); at >= 0 && at < len(from)-1 {
		return from[at+1:]
	}
	return "viogen-dispatcher.invalid"
}

// build turns m into a plain text UTF-8 mail. A bad recipient is permanent;
// the error masks it (go-mail's own error would quote it).
func (c *Channel) build(m channels.Message) (*mail.Msg, string, error) {
	msg := mail.NewMsg()
	if err := msg.From(c.cfg.From); err != nil {
		return nil, "", channels.NewPermanent(Name, "invalid_sender", errors.New("sender address is invalid"))
	}
	if err := msg.To(m.To); err != nil {
		return nil, "", channels.NewPermanent(Name, channels.CodeInvalidRecipient,
			fmt.Errorf("recipient %q is not an email address", channels.Mask(m.To)))
	}
	id := MessageID(m.ID, c.cfg.From)
	// go-mail adds the angle brackets.
	msg.SetMessageIDWithValue(strings.Trim(id, "<>"))
	msg.SetDate()
	msg.Subject(m.Subject)
	if m.Critical {
		msg.SetImportance(mail.ImportanceUrgent)
	}
	msg.SetBodyString(mail.TypeTextPlain, m.Body)
	return msg, id, nil
}
