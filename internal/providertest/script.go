package providertest

import "sync"

// Fault is a failure a fake answers with instead of accepting.
type Fault int

// Faults. Each fake maps them to what its real provider would answer.
const (
	// None answers normally.
	None Fault = iota
	// RateLimited: HTTP 429 with Retry-After (Twilio code 20429); SMTP 451 4.7.1.
	RateLimited
	// Rejected is a permanent refusal: Twilio 400/21211 (invalid number),
	// PagerDuty 400 invalid event, webhook 400; SMTP 550 5.1.1 bounce.
	Rejected
	// Unsubscribed: Twilio 400/21610 (the handset sent STOP); elsewhere as Rejected.
	Unsubscribed
	// ServerError: HTTP 500 with a non-JSON body; SMTP 451 4.3.0 (temporary).
	ServerError
	// Hang holds the request until the client gives up or the fake closes.
	Hang
)

// DefaultRetryAfter is the Retry-After of RateLimited answers unless set.
const DefaultRetryAfter = "1"

// Script decides which requests fail. The zero value fails nothing.
type Script struct {
	mu         sync.Mutex
	next       []Fault
	per        map[string]Fault
	retryAfter string
}

// FailNext makes the next n requests fail with f, after any queued before.
func (s *Script) FailNext(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.next = append(s.next, f)
	}
}

// FailFor makes every request for key (Twilio To, SMTP recipient,
// PagerDuty routing key, webhook path) fail with f; None clears it.
// It takes precedence over FailNext.
func (s *Script) FailFor(key string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.per == nil {
		s.per = map[string]Fault{}
	}
	if f == None {
		delete(s.per, key)
		return
	}
	s.per[key] = f
}

// SetRetryAfter sets the Retry-After header of RateLimited answers: seconds
// or an HTTP date; "" sends none.
func (s *Script) SetRetryAfter(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retryAfter = v
	if v == "" {
		s.retryAfter = "-" // remembered as "none"
	}
}

// ClearFaults forgets every scripted failure.
func (s *Script) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next, s.per = nil, nil
}

// fault returns the failure for one request for key, consuming FailNext.
func (s *Script) fault(key string) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.per[key]; ok {
		return f
	}
	if len(s.next) == 0 {
		return None
	}
	f := s.next[0]
	s.next = s.next[1:]
	return f
}

func (s *Script) retryAfterValue() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.retryAfter {
	case "":
		return DefaultRetryAfter
	case "-":
		return ""
	}
	return s.retryAfter
}
