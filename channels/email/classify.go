package email

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strconv"

	"github.com/wneessen/go-mail"

	"github.com/viogen-alerts/dispatcher/channels"
)

// classify maps a go-mail error. SMTP reply texts are dropped, as servers
// echo the recipient ("550 5.1.1 <x@y>: user unknown"); codes are kept.
func classify(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return channels.TransportError(Name, ctx.Err())
	}
	var se *mail.SendError
	if errors.As(err, &se) {
		return sendError(se)
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return reply(te.Code, fmt.Errorf("smtp server refused the session (reply %d)", te.Code))
	}
	return channels.TransportError(Name, err)
}

func sendError(se *mail.SendError) error {
	code, esc := se.ErrorCode(), se.EnhancedStatusCode()
	desc := fmt.Sprintf("%s failed", se.Reason)
	if code != 0 {
		desc += fmt.Sprintf(" (reply %d %s)", code, esc)
	}
	err := errors.New(desc)
	if se.IsTemp() {
		return channels.NewRetryable(Name, codeString(code), 0, err)
	}
	return reply(code, err)
}

// reply classifies by SMTP reply code: 5xx permanent, anything else
// (4xx, or no reply at all) retryable.
func reply(code int, err error) error {
	if code >= 500 && code < 600 {
		return channels.NewPermanent(Name, codeString(code), err)
	}
	return channels.NewRetryable(Name, codeString(code), 0, err)
}

func codeString(code int) string {
	if code == 0 {
		return "smtp"
	}
	return strconv.Itoa(code)
}
