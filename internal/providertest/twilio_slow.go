package providertest

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TwilioAnswer is one message a SlowTwilio accepted, with when its answer
// was written and whether the client was still connected then.
type TwilioAnswer struct {
	TwilioMessage
	Arrived  time.Time // the request arrived (before the delay)
	Answered time.Time // the 201 was written
	// ClientGone is true when the client had hung up before the answer was
	// written: the message was accepted (as Twilio would) but the sender
	// cannot know its sid.
	ClientGone bool
}

// SlowTwilio is the Twilio fake answering after a per-request delay, as a
// slow provider does. It reads the whole request first, waits, then
// accepts the message even if the client has gone meanwhile (Twilio sends
// what it received), and counts the requests in progress whose client is
// still connected. Faults of the embedded Script apply after the delay.
type SlowTwilio struct {
	*Twilio
	delay    atomic.Pointer[func() time.Duration]
	live     atomic.Int64  // requests in progress whose client is connected
	dropGone atomic.Uint64 // math.Float64bits of the drop probability
	dropped  atomic.Int64
	mu       sync.Mutex
	answers  []TwilioAnswer
	arrivals []time.Time
}

// NewSlowTwilio starts a Twilio fake whose every answer waits delay()
// (nil: no delay). Records are unbounded: keep tests to tens of thousands.
func NewSlowTwilio(t testing.TB, accountSID, authToken string, delay func() time.Duration) *SlowTwilio {
	t.Helper()
	f := &SlowTwilio{Twilio: &Twilio{sid: accountSID, token: authToken}}
	f.SetDelay(delay)
	f.Twilio.http = startHTTP(t, http.HandlerFunc(f.serve))
	return f
}

// SetDelay changes the delay of later requests.
func (f *SlowTwilio) SetDelay(delay func() time.Duration) {
	if delay == nil {
		delay = func() time.Duration { return 0 }
	}
	f.delay.Store(&delay)
}

// DropWhenGone makes the fake discard, with probability p, a request
// whose client hung up during the delay, as a provider that acts only on
// requests it could answer; the rest are accepted (the default, p = 0):
// both are what a sender that died mid-call must expect.
func (f *SlowTwilio) DropWhenGone(p float64) { f.dropGone.Store(math.Float64bits(p)) }

// Dropped counts requests discarded by DropWhenGone.
func (f *SlowTwilio) Dropped() int { return int(f.dropped.Load()) }

// InFlight counts requests in progress whose client is still connected.
func (f *SlowTwilio) InFlight() int { return int(f.live.Load()) }

// Answers returns every accepted message, in the order answered.
func (f *SlowTwilio) Answers() []TwilioAnswer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]TwilioAnswer(nil), f.answers...)
}

// Arrivals returns when each request arrived, accepted or not.
func (f *SlowTwilio) Arrivals() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.arrivals...)
}

// WaitInFlight returns once at least n requests with a connected client
// are in progress, or ctx's error.
func (f *SlowTwilio) WaitInFlight(ctx context.Context, n int) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for f.InFlight() < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func (f *SlowTwilio) serve(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	f.mu.Lock()
	f.arrivals = append(f.arrivals, arrived)
	f.mu.Unlock()

	f.live.Add(1)
	stop := context.AfterFunc(r.Context(), func() { f.live.Add(-1) })
	defer func() {
		if stop() {
			f.live.Add(-1)
		}
	}()

	// Read the request before waiting: what the client sent is received.
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	_ = r.ParseForm()

	if d := (*f.delay.Load())(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-f.Twilio.http.closing:
			t.Stop()
		}
	}
	gone := r.Context().Err() != nil
	if gone && rand.Float64() < math.Float64frombits(f.dropGone.Load()) {
		f.dropped.Add(1)
		return
	}
	cw := &captureWriter{ResponseWriter: w}
	f.Twilio.serve(cw, r)
	if cw.status != http.StatusCreated {
		return
	}
	var res struct {
		Sid string `json:"sid"`
	}
	if json.Unmarshal(cw.body.Bytes(), &res) != nil || res.Sid == "" {
		return
	}
	_ = http.NewResponseController(w).Flush()
	m := TwilioMessage{Sid: res.Sid, AccountSID: f.sid, To: r.PostForm.Get("To"), From: r.PostForm.Get("From"),
		MessagingServiceSID: r.PostForm.Get("MessagingServiceSid"), Body: r.PostForm.Get("Body"),
		StatusCallback: r.PostForm.Get("StatusCallback"), Received: time.Now()}
	f.mu.Lock()
	f.answers = append(f.answers, TwilioAnswer{TwilioMessage: m, Arrived: arrived, Answered: time.Now(),
		ClientGone: gone})
	f.mu.Unlock()
}

// captureWriter keeps the status and body a handler writes.
type captureWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *captureWriter) WriteHeader(code int) {
	c.status = code
	c.ResponseWriter.WriteHeader(code)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}
