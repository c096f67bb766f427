package dispatcher

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// appendIntent appends the intent's JSON, byte for byte what json.Marshal
// writes (TestIntentEncodingMatchesEncodingJSON), without reflection: the
// decide stage encodes one per target of every alert. ok is false for
// what it leaves to json.Marshal: a digest, a string needing escapes, or a
// time json.Marshal would refuse or write otherwise.
func appendIntent(b []byte, in *Intent) (_ []byte, ok bool) {
	if len(in.Digest) > 0 {
		return b, false
	}
	w := jsonAppender{b: b, ok: true}
	w.raw(`{"id":`)
	w.str(in.ID)
	w.raw(`,"kind":`)
	w.str(in.Kind)
	w.raw(`,"alert_id":`)
	w.str(in.AlertID)
	w.raw(`,"rule":`)
	w.str(in.Rule)
	w.raw(`,"template":`)
	w.str(in.Template)
	w.raw(`,"severity":`)
	w.str(in.Severity)
	if in.Critical {
		w.raw(`,"critical":true`)
	}
	if in.Unrouted {
		w.raw(`,"unrouted":true`)
	}
	w.raw(`,"case_ref":`)
	w.str(in.CaseRef)
	w.raw(`,"event_id":`)
	w.str(in.EventID)
	w.raw(`,"event_type":`)
	w.str(string(in.EventType))
	if in.Level != 0 {
		w.raw(`,"level":`)
		w.str(in.Level.String())
	}
	if in.PrevLevel != 0 {
		w.raw(`,"prev_level":`)
		w.str(in.PrevLevel.String())
	}
	w.raw(`,"occurred_at":`)
	w.time(in.OccurredAt)
	w.raw(`,"decided_at":`)
	w.time(in.DecidedAt)
	w.raw(`,"step":`)
	w.b = strconv.AppendInt(w.b, int64(in.Step), 10)
	w.raw(`,"round":`)
	w.b = strconv.AppendInt(w.b, int64(in.Round), 10)
	if !in.Deadline.IsZero() {
		w.raw(`,"deadline":`)
		w.time(in.Deadline)
	}
	w.optStr(`,"ack_code":`, in.AckCode)
	if in.Missed != 0 {
		w.raw(`,"missed":`)
		w.b = strconv.AppendInt(w.b, int64(in.Missed), 10)
	}
	if !in.MissedSince.IsZero() {
		w.raw(`,"missed_since":`)
		w.time(in.MissedSince)
	}
	w.raw(`,"agency_id":`)
	w.str(in.AgencyID)
	w.raw(`,"agency_name":`)
	w.str(in.AgencyName)
	w.optStr(`,"other_agency":`, in.OtherAgency)
	w.raw(`,"contact_id":`)
	w.str(in.ContactID)
	w.raw(`,"locale":`)
	w.str(in.Locale)
	w.raw(`,"channels":`)
	w.strs(in.Channels)
	if len(in.Fallback) > 0 {
		w.raw(`,"fallback":`)
		w.strs(in.Fallback)
	}
	w.optStr(`,"pager_action":`, in.PagerAction)
	w.raw(`}`)
	return w.b, w.ok
}

type jsonAppender struct {
	b  []byte
	ok bool
}

func (w *jsonAppender) raw(s string) { w.b = append(w.b, s...) }

// str writes a string that needs no escaping: ASCII from the space up
// other than '"', '\\' and the HTML characters json.Marshal escapes, and
// valid UTF-8 beyond ASCII other than U+2028 and U+2029 (agency names are
// Spanish); any other string makes the whole encoding fall back.
func (w *jsonAppender) str(s string) {
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 0x80:
			ascii = false
		case c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&':
			w.ok = false
			return
		}
	}
	if !ascii && (!utf8.ValidString(s) || strings.Contains(s, "\u2028") || strings.Contains(s, "\u2029")) {
		w.ok = false
		return
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, s...)
	w.b = append(w.b, '"')
}

// optStr writes key and s unless s is empty (omitempty).
func (w *jsonAppender) optStr(key, s string) {
	if s != "" {
		w.raw(key)
		w.str(s)
	}
}

func (w *jsonAppender) strs(ss []string) {
	if ss == nil {
		w.raw("null")
		return
	}
	w.b = append(w.b, '[')
	for i, s := range ss {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.str(s)
	}
	w.b = append(w.b, ']')
}

// time writes RFC 3339 with nanoseconds, as time.Time.MarshalJSON does for
// years 0-9999 and whole-minute offsets (the others fall back).
func (w *jsonAppender) time(t time.Time) {
	if _, off := t.Zone(); t.Year() < 0 || t.Year() > 9999 || off%60 != 0 {
		w.ok = false
		return
	}
	w.b = append(w.b, '"')
	w.b = t.AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
}

// encodeIntent is Intent.Encode into a reused buffer.
func encodeIntent(b []byte, in *Intent) ([]byte, error) {
	if out, ok := appendIntent(b, in); ok {
		return out, nil
	}
	j, err := json.Marshal(*in)
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}
