package email

import "github.com/wneessen/go-mail"

// ValidRecipient reports whether Send accepts to as a recipient, with the
// same go-mail parsing it builds the message with. Any other recipient is
// refused permanently, so the configuration loader accepts no more.
func ValidRecipient(to string) bool { return mail.NewMsg().To(to) == nil }
