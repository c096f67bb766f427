package sms

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/viogen-alerts/dispatcher/channels"
)

// StatusCallback is the part of a Twilio delivery status callback the
// dispatcher uses. It holds no phone number.
type StatusCallback struct {
	MessageSid    string
	MessageStatus string // queued, sending, sent, delivered, undelivered, failed, ...
	ErrorCode     string // "" unless undelivered/failed, e.g. "30003"
}

// ParseStatusCallback reads a (validated) status callback form.
func ParseStatusCallback(form url.Values) (StatusCallback, error) {
	s := StatusCallback{
		MessageSid:    form.Get("MessageSid"),
		MessageStatus: form.Get("MessageStatus"),
		ErrorCode:     form.Get("ErrorCode"),
	}
	if s.MessageSid == "" {
		s.MessageSid = form.Get("SmsSid") // older callbacks
	}
	if s.MessageStatus == "" {
		s.MessageStatus = form.Get("SmsStatus")
	}
	if s.MessageSid == "" || s.MessageStatus == "" {
		return s, errors.New("sms: status callback without MessageSid or MessageStatus")
	}
	return s, nil
}

// Final reports whether Twilio will send no further status for the message.
func (s StatusCallback) Final() bool {
	switch s.MessageStatus {
	case "delivered", "undelivered", "failed", "read", "canceled":
		return true
	}
	return false
}

// Failed reports whether the message did not reach the handset.
func (s StatusCallback) Failed() bool {
	return s.MessageStatus == "undelivered" || s.MessageStatus == "failed" || s.MessageStatus == "canceled"
}

// Inbound is an SMS a person sent to our number. From is personal data:
// print it only through String, which masks it.
type Inbound struct {
	From       string
	Body       string
	MessageSid string
}

// ParseInbound reads a (validated) inbound SMS form.
func ParseInbound(form url.Values) (Inbound, error) {
	in := Inbound{From: form.Get("From"), Body: form.Get("Body"), MessageSid: form.Get("MessageSid")}
	if in.MessageSid == "" {
		in.MessageSid = form.Get("SmsSid")
	}
	if in.From == "" || in.MessageSid == "" {
		return in, errors.New("sms: inbound SMS without From or MessageSid")
	}
	return in, nil
}

// String masks the sender, so %v in a log line cannot leak the number.
func (in Inbound) String() string {
	return fmt.Sprintf("sms from %s (%s, %d chars)", channels.Mask(in.From), in.MessageSid, len([]rune(in.Body)))
}

// GoString masks the sender under %#v too.
func (in Inbound) GoString() string { return in.String() }
