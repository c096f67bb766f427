package channels

import "github.com/sirupsen/logrus"

// CodeInvalidRecipient marks a message whose To cannot be used on its
// channel (not E.164, not an email address, not an https URL...). It is
// permanent: fixing it needs a person to correct the contact.
const CodeInvalidRecipient = "invalid_recipient"

// LogFields are the fields every channel logs about a message: ids and a
// masked recipient, never the recipient itself.
func LogFields(channel string, m Message) logrus.Fields {
	return logrus.Fields{
		"channel":    channel,
		"contact_id": m.ContactID,
		"alert_id":   m.AlertID,
		"case_ref":   m.CaseRef,
		"message_id": m.ID,
		"to":         Mask(m.To),
	}
}

// LogResult logs the outcome of one send at debug (accepted) or warn (failed).
func LogResult(log logrus.FieldLogger, channel string, m Message, r Receipt, err error) {
	entry := log.WithFields(LogFields(channel, m))
	if err != nil {
		entry.WithError(err).WithFields(logrus.Fields{
			"permanent": IsPermanent(err),
			"code":      Code(err),
		}).Warn("send failed")
		return
	}
	entry.WithFields(logrus.Fields{"provider_id": r.ProviderID, "status": r.Status}).Debug("send accepted")
}
