package dispatcher

import (
	"encoding/json"
	"fmt"
	"time"
)

// A sent-marker (case:{C}:sent:<intent>:<channel>) holds the audit record
// of an accepted send, so a replayed intent re-emits it instead of sending
// again, and the console shows when and how it went. It is written in a
// compact form, version 2, like the escalation record (escalation_record.go):
// one-or-two-letter field names, the time as Unix milliseconds, empty
// fields left out, and nothing the key already says (the intent id, the
// case and the channel) nor the outcome when it is "sent" (markSent only
// ever writes sent results). Markers written by earlier versions (the
// Result's own JSON, the audit message) are still read: decodeSent tells
// them apart by what opens them.
//
// The version number is written under "kind", a key under which earlier
// versions read a string (Result.Kind; the kind itself is under "k"). So
// during a rolling upgrade an instance of an earlier version given a
// compact marker fails to decode it (begin returns an error: the job runs
// again later, until a new instance takes it) instead of reading a Result
// with every field empty, which it would re-emit as a blank audit record.
// It never takes a marker it cannot read for "not sent".
const sentRecordVersion = 2

// sentRecordPrefix opens every compact marker (a digit follows); an
// earlier version's marker opens with `{"intent_id":`.
var sentRecordPrefix = []byte(`{"kind":`)

// sentRecord is the compact marker. Every field of Result has its place
// here (TestSentRecordRoundTrip fills each one through reflection, nested
// SilenceRecord included, and reads it back).
type sentRecord struct {
	V int `json:"kind"` // the format version: see sentRecordVersion
	// IntentID, CaseRef and Channel are written only when they differ
	// from the key's; nil means equal.
	IntentID  *string `json:"i,omitempty"`
	CaseRef   *string `json:"cr,omitempty"`
	Channel   *string `json:"ch,omitempty"`
	AlertID   string  `json:"a,omitempty"`
	Rule      string  `json:"r,omitempty"`
	Kind      string  `json:"k,omitempty"`
	Step      int     `json:"s,omitempty"`
	Round     int     `json:"rn,omitempty"`
	AgencyID  string  `json:"g,omitempty"`
	ContactID string  `json:"c,omitempty"`
	Operator  string  `json:"op,omitempty"`
	// Note and silence fields belong to the console's audit records,
	// never to a sent-marker today; kept so that none is lost.
	NoteID     string `json:"ni,omitempty"`
	NoteSHA256 string `json:"nh,omitempty"`
	NoteLength int    `json:"nl,omitempty"`
	// Silence is stored as its own JSON (it has no personal data: matchers
	// and times).
	Silence *SilenceRecord `json:"si,omitempty"`
	Attempt int            `json:"n,omitempty"`
	// Outcome is written only when it is not OutcomeSent; nil means sent.
	Outcome    *string `json:"o,omitempty"`
	ProviderID string  `json:"p,omitempty"`
	ErrorClass string  `json:"ec,omitempty"`
	ErrorCode  string  `json:"ed,omitempty"`
	Error      string  `json:"e,omitempty"`
	At         recTime `json:"t,omitzero"`
	LatencyMS  int64   `json:"l,omitempty"`
}

// encodeSent writes r's compact marker for the key of caseRef, intentID
// and channel.
func encodeSent(caseRef, intentID, channel string, r Result) ([]byte, error) {
	rec := sentRecord{V: sentRecordVersion,
		AlertID: r.AlertID, Rule: r.Rule, Kind: r.Kind, Step: r.Step, Round: r.Round,
		AgencyID: r.AgencyID, ContactID: r.ContactID, Operator: r.Operator,
		NoteID: r.NoteID, NoteSHA256: r.NoteSHA256, NoteLength: r.NoteLength, Silence: r.Silence,
		Attempt: r.Attempt, ProviderID: r.ProviderID, ErrorClass: r.ErrorClass, ErrorCode: r.ErrorCode,
		Error: r.Error, At: recTime(r.At), LatencyMS: r.LatencyMS,
	}
	if r.IntentID != intentID {
		rec.IntentID = &r.IntentID
	}
	if r.CaseRef != caseRef {
		rec.CaseRef = &r.CaseRef
	}
	if r.Channel != channel {
		rec.Channel = &r.Channel
	}
	if r.Outcome != OutcomeSent {
		rec.Outcome = &r.Outcome
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode sent-marker of intent %s: %w", intentID, err)
	}
	return b, nil
}

// decodeSent reads the sent-marker of caseRef, intentID and channel in
// either form: compact (version 2) or the Result's own JSON written by
// earlier versions. A marker that does not decode is an error, never
// "not sent".
func decodeSent(caseRef, intentID, channel string, b []byte) (Result, error) {
	if !versioned(b, sentRecordPrefix) {
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return Result{}, fmt.Errorf("decode sent-marker of intent %s (earlier format): %w", intentID, err)
		}
		return r, nil
	}
	var rec sentRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return Result{}, fmt.Errorf("decode sent-marker of intent %s: %w", intentID, err)
	}
	if rec.V != sentRecordVersion {
		return Result{}, fmt.Errorf("decode sent-marker of intent %s: record version %d unknown to this version", intentID, rec.V)
	}
	r := Result{IntentID: intentID, AlertID: rec.AlertID, CaseRef: caseRef, Rule: rec.Rule, Kind: rec.Kind,
		Step: rec.Step, Round: rec.Round, AgencyID: rec.AgencyID, ContactID: rec.ContactID, Channel: channel,
		Operator: rec.Operator, NoteID: rec.NoteID, NoteSHA256: rec.NoteSHA256, NoteLength: rec.NoteLength,
		Silence: rec.Silence, Attempt: rec.Attempt, Outcome: OutcomeSent, ProviderID: rec.ProviderID,
		ErrorClass: rec.ErrorClass, ErrorCode: rec.ErrorCode, Error: rec.Error, At: time.Time(rec.At),
		LatencyMS: rec.LatencyMS,
	}
	if rec.IntentID != nil {
		r.IntentID = *rec.IntentID
	}
	if rec.CaseRef != nil {
		r.CaseRef = *rec.CaseRef
	}
	if rec.Channel != nil {
		r.Channel = *rec.Channel
	}
	if rec.Outcome != nil {
		r.Outcome = *rec.Outcome
	}
	return r, nil
}
