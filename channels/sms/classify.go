package sms

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/twilio/twilio-go/client"

	"github.com/viogen-alerts/dispatcher/channels"
)

// codeRateLimited is Twilio's "Too Many Requests" code.
const codeRateLimited = 20429

// classify maps a CreateMessage error. Twilio's own message is dropped on
// purpose: for 21211 and friends it quotes the phone number.
func classify(rt *call, err error) error {
	var tre *client.TwilioRestError
	if errors.As(err, &tre) {
		return restError(tre, rt)
	}
	if rt.status >= 200 && rt.status < 300 {
		return channels.NewRetryable(Name, "bad_response", 0,
			fmt.Errorf("twilio answered %d with an unreadable body: %w", rt.status, err))
	}
	if rt.status != 0 {
		// An error answer without a JSON body: a proxy or an outage page.
		return channels.NewRetryable(Name, strconv.Itoa(rt.status), rt.retryAfter,
			fmt.Errorf("twilio answered %d without a JSON error body", rt.status))
	}
	return channels.TransportError(Name, err)
}

func restError(tre *client.TwilioRestError, rt *call) error {
	status := tre.Status
	if status == 0 {
		status = rt.status
	}
	code := strconv.Itoa(tre.Code)
	if tre.Code == 0 {
		code = strconv.Itoa(status)
	}
	err := fmt.Errorf("twilio rejected the message (status %d, code %d)", status, tre.Code)
	switch {
	case status == http.StatusTooManyRequests || tre.Code == codeRateLimited:
		return channels.NewRetryable(Name, code, rt.retryAfter, err)
	case status == http.StatusRequestTimeout || status >= 500 || status < 400:
		return channels.NewRetryable(Name, code, rt.retryAfter, err)
	default:
		// 21211 invalid number, 21610 unsubscribed, 21614 not a mobile, 20003 bad credentials...
		return channels.NewPermanent(Name, code, err)
	}
}
