// Package channels defines what one delivery channel does (send one rendered
// message to one contact) and how its failures are classified, so that the
// dispatcher can decide between retrying later and escalating now.
//
// Each provider lives in its own sub-package (sms, email, pager, webhook,
// log). None of them knows the dispatcher: they depend only on the standard
// library, the provider SDKs and logrus.
//
// Privacy: nothing in this tree logs or puts into an error a phone number,
// an email address, a routing key, a webhook URL path or a credential.
// Use Mask for anything that identifies a person or a secret.
package channels
