// Package providertest runs in-process fakes of the providers the
// dispatcher talks to (Twilio Messages, an SMTP relay, PagerDuty Events v2,
// a webhook receiver), on 127.0.0.1 random ports, for tests anywhere in the
// repo. Each fake speaks the real wire protocol, records what it received,
// can be scripted to fail (see Script and Fault), and closes itself through
// t.Cleanup. All methods are safe for concurrent use.
//
// Use synthetic data only: +34600000xxx numbers, example.org addresses.
package providertest
