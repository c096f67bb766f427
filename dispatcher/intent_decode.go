package dispatcher

import (
	"time"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/jsonfast"
)

// The deliver stage decodes every intent it takes from Kafka and every job
// it claims from the queue (an intent inside); encoding/json's reflection
// and validation pass were about a tenth of the stage's CPU. The decoders
// here read the shape appendIntent and json.Marshal write, without
// reflection, and give up on anything else (escapes, null but as a list,
// unknown or differently cased keys, fractions, a digest, trailing data):
// the caller then decodes with encoding/json, so the result is always what
// json.Unmarshal gives (TestIntentFastDecodeMatchesEncodingJSON).

// decodeIntentFast fills in from b; false means "use encoding/json" (in
// may then hold part of b).
func decodeIntentFast(b string, in *Intent) bool {
	r := jsonfast.NewReader(b)
	readIntent(&r, in)
	return r.End()
}

func readTime(r *jsonfast.Reader) time.Time {
	var t time.Time
	tok := r.Raw()
	if r.OK() && t.UnmarshalJSON([]byte(tok)) != nil {
		r.Fail()
	}
	return t
}

func readLevel(r *jsonfast.Reader) event.Level {
	s := r.Str()
	if !r.OK() || s == "" {
		return event.LevelNone
	}
	l, err := event.ParseLevel(s)
	if err != nil {
		r.Fail()
	}
	return l
}

func readIntent(r *jsonfast.Reader, in *Intent) {
	r.Object(func(key string) {
		switch key {
		case "id":
			in.ID = r.Str()
		case "kind":
			in.Kind = r.Str()
		case "alert_id":
			in.AlertID = r.Str()
		case "rule":
			in.Rule = r.Str()
		case "template":
			in.Template = r.Str()
		case "severity":
			in.Severity = r.Str()
		case "critical":
			in.Critical = r.Bool()
		case "unrouted":
			in.Unrouted = r.Bool()
		case "case_ref":
			in.CaseRef = r.Str()
		case "event_id":
			in.EventID = r.Str()
		case "event_type":
			in.EventType = event.Type(r.Str())
		case "level":
			in.Level = readLevel(r)
		case "prev_level":
			in.PrevLevel = readLevel(r)
		case "occurred_at":
			in.OccurredAt = readTime(r)
		case "decided_at":
			in.DecidedAt = readTime(r)
		case "step":
			in.Step = r.Int()
		case "round":
			in.Round = r.Int()
		case "deadline":
			in.Deadline = readTime(r)
		case "ack_code":
			in.AckCode = r.Str()
		case "missed":
			in.Missed = r.Int()
		case "missed_since":
			in.MissedSince = readTime(r)
		case "agency_id":
			in.AgencyID = r.Str()
		case "agency_name":
			in.AgencyName = r.Str()
		case "other_agency":
			in.OtherAgency = r.Str()
		case "contact_id":
			in.ContactID = r.Str()
		case "locale":
			in.Locale = r.Str()
		case "channels":
			in.Channels = r.Strs()
		case "fallback":
			in.Fallback = r.Strs()
		case "pager_action":
			in.PagerAction = r.Str()
		default: // digest, or a key encoding/json would match otherwise
			r.Fail()
		}
	})
}

// decodeJobFast is decodeIntentFast for a queued job.
func decodeJobFast(b string, j *retryJob) bool {
	r := jsonfast.NewReader(b)
	r.Object(func(key string) {
		switch key {
		case "intent":
			readIntent(&r, &j.Intent)
		case "channel":
			j.Channel = r.Str()
		case "attempt":
			j.Attempt = r.Int()
		case "check":
			j.Check = r.Str()
		case "sid":
			j.SID = r.Str()
		default:
			r.Fail()
		}
	})
	return r.End()
}
