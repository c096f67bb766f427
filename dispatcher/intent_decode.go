package dispatcher

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/viogen-alerts/dispatcher/event"
)

// The deliver stage decodes every intent it takes from Kafka and every job
// it claims from the queue (an intent inside); encoding/json's reflection
// and validation pass were about a tenth of the stage's CPU. The decoders
// here read the shape appendIntent and json.Marshal write, without
// reflection, and give up on anything else (escapes, null, unknown or
// differently cased keys, fractions, a digest, trailing data; null only
// as a list): the caller
// then decodes with encoding/json, so the result is always what
// json.Unmarshal gives (TestIntentFastDecodeMatchesEncodingJSON).

// jsonReader walks one JSON text; ok turns false at the first thing it
// does not take, after which every call is a no-op.
// Strings taken are slices of b (one allocation for the whole text).
type jsonReader struct {
	b  string
	i  int
	ok bool
}

func (r *jsonReader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// byte consumes c (after white space) or fails.
func (r *jsonReader) byte(c byte) {
	r.ws()
	if !r.ok || r.i >= len(r.b) || r.b[r.i] != c {
		r.ok = false
		return
	}
	r.i++
}

// peek reports whether the next byte (after white space) is c.
func (r *jsonReader) peek(c byte) bool {
	r.ws()
	return r.ok && r.i < len(r.b) && r.b[r.i] == c
}

// raw returns a string token with its quotes; only strings with nothing
// to unescape and valid UTF-8 are taken.
func (r *jsonReader) raw() string {
	r.byte('"')
	if !r.ok {
		return ""
	}
	start, ascii := r.i-1, true
	for ; r.i < len(r.b); r.i++ {
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			tok := r.b[start:r.i]
			if !ascii && !utf8.ValidString(tok) {
				r.ok = false
			}
			return tok
		case c == '\\' || c < 0x20:
			r.ok = false
			return ""
		case c >= 0x80:
			ascii = false
		}
	}
	r.ok = false
	return ""
}

func (r *jsonReader) str() string {
	tok := r.raw()
	if !r.ok {
		return ""
	}
	return tok[1 : len(tok)-1]
}

func (r *jsonReader) strs() []string {
	if r.peek('n') { // null: json.Unmarshal leaves a nil slice
		if len(r.b)-r.i < 4 || r.b[r.i:r.i+4] != "null" {
			r.ok = false
		}
		r.i += 4
		return nil
	}
	r.byte('[')
	out := []string{}
	if r.peek(']') {
		r.i++
		return out
	}
	for r.ok {
		out = append(out, r.str())
		if r.peek(',') {
			r.i++
			continue
		}
		r.byte(']')
		break
	}
	return out
}

func (r *jsonReader) bool() bool {
	r.ws()
	switch {
	case !r.ok:
	case len(r.b)-r.i >= 4 && r.b[r.i:r.i+4] == "true":
		r.i += 4
		return true
	case len(r.b)-r.i >= 5 && r.b[r.i:r.i+5] == "false":
		r.i += 5
		return false
	}
	r.ok = false
	return false
}

// int takes an integer without fraction or exponent that fits an int.
func (r *jsonReader) int() int {
	r.ws()
	if !r.ok {
		return 0
	}
	start := r.i
	if r.i < len(r.b) && r.b[r.i] == '-' {
		r.i++
	}
	digits := r.i
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	n := r.i - digits
	if n == 0 || (n > 1 && r.b[digits] == '0') || (r.i < len(r.b) && (r.b[r.i] == '.' || r.b[r.i] == 'e' || r.b[r.i] == 'E')) {
		r.ok = false
		return 0
	}
	v, err := strconv.Atoi(r.b[start:r.i])
	if err != nil {
		r.ok = false
	}
	return v
}

func (r *jsonReader) time() time.Time {
	var t time.Time
	tok := r.raw()
	if r.ok && t.UnmarshalJSON([]byte(tok)) != nil {
		r.ok = false
	}
	return t
}

func (r *jsonReader) level() event.Level {
	s := r.str()
	if !r.ok || s == "" {
		return event.LevelNone
	}
	l, err := event.ParseLevel(s)
	if err != nil {
		r.ok = false
	}
	return l
}

// object reads an object's members, handing each key to field, which
// reads the value (or fails on a key it does not know).
func (r *jsonReader) object(field func(key string)) {
	r.byte('{')
	if r.peek('}') {
		r.i++
		return
	}
	for r.ok {
		key := r.raw()
		r.byte(':')
		if !r.ok {
			return
		}
		field(key[1 : len(key)-1])
		if r.peek(',') {
			r.i++
			continue
		}
		r.byte('}')
		return
	}
}

// end fails unless only white space is left.
func (r *jsonReader) end() bool {
	r.ws()
	return r.ok && r.i == len(r.b)
}

// decodeIntentFast fills in from b; false means "use encoding/json" (in
// may then hold part of b).
func decodeIntentFast(b string, in *Intent) bool {
	r := jsonReader{b: b, ok: true}
	r.intent(in)
	return r.end()
}

func (r *jsonReader) intent(in *Intent) {
	r.object(func(key string) {
		switch key {
		case "id":
			in.ID = r.str()
		case "kind":
			in.Kind = r.str()
		case "alert_id":
			in.AlertID = r.str()
		case "rule":
			in.Rule = r.str()
		case "template":
			in.Template = r.str()
		case "severity":
			in.Severity = r.str()
		case "critical":
			in.Critical = r.bool()
		case "unrouted":
			in.Unrouted = r.bool()
		case "case_ref":
			in.CaseRef = r.str()
		case "event_id":
			in.EventID = r.str()
		case "event_type":
			in.EventType = event.Type(r.str())
		case "level":
			in.Level = r.level()
		case "prev_level":
			in.PrevLevel = r.level()
		case "occurred_at":
			in.OccurredAt = r.time()
		case "decided_at":
			in.DecidedAt = r.time()
		case "step":
			in.Step = r.int()
		case "round":
			in.Round = r.int()
		case "deadline":
			in.Deadline = r.time()
		case "ack_code":
			in.AckCode = r.str()
		case "missed":
			in.Missed = r.int()
		case "missed_since":
			in.MissedSince = r.time()
		case "agency_id":
			in.AgencyID = r.str()
		case "agency_name":
			in.AgencyName = r.str()
		case "other_agency":
			in.OtherAgency = r.str()
		case "contact_id":
			in.ContactID = r.str()
		case "locale":
			in.Locale = r.str()
		case "channels":
			in.Channels = r.strs()
		case "fallback":
			in.Fallback = r.strs()
		case "pager_action":
			in.PagerAction = r.str()
		default: // digest, or a key encoding/json would match otherwise
			r.ok = false
		}
	})
}

// decodeJobFast is decodeIntentFast for a queued job.
func decodeJobFast(b string, j *retryJob) bool {
	r := jsonReader{b: b, ok: true}
	r.object(func(key string) {
		switch key {
		case "intent":
			r.intent(&j.Intent)
		case "channel":
			j.Channel = r.str()
		case "attempt":
			j.Attempt = r.int()
		case "check":
			j.Check = r.str()
		case "sid":
			j.SID = r.str()
		default:
			r.ok = false
		}
	})
	return r.end()
}
