package dispatcher

import (
	"encoding/json"
	"fmt"
	"time"
)

// A sent-marker (case:{C}:sent:<intent>:<channel>) holds the audit record
// of an accepted send, so a replayed intent re-emits it instead of sending
// again, and the console shows when and how it went. It is written in a
// compact form, like the escalation record (escalation_record.go):
// one-or-two-letter field names, the time as Unix milliseconds, empty
// fields left out, and nothing the key already says (the intent id, the
// case and the channel) nor the outcome when it is "sent" (markSent only
// ever writes sent results). Version 3 also leaves out what the intent
// id determines when the intent says the same (alert, rule, kind,
// contact, and the step and round when the id hashes them: idSays): every
// reader holds an intent of that id. A webhook's marker is about 75
// bytes where version 2 took 150. Markers of version 2 and
// of earlier versions (the Result's own JSON, the audit message) are
// still read: decodeSent tells them apart by what opens them.
//
// The version number is written under "kind", a key under which the
// first versions read a string (Result.Kind; the kind itself is under
// "k"). So during a rolling upgrade an instance of an earlier version
// given a marker of a later one fails to decode it (begin returns an
// error: the job runs again later, until a new instance takes it) instead
// of reading a Result with fields empty, which it would re-emit as a
// blank audit record. It never takes a marker it cannot read for "not
// sent".
//
// Version 4 says what version 3 says as a positional record
// (positional.go): `[4,"agency","provider-id",<ms>,<attempt>]`, about 40
// bytes for a webhook where version 3 took 75; it also leaves out the
// latency when it is the time from the intent's event to the marker's
// (latencyOf), as the send path writes it. Redis keeps a value of up to
// 44 bytes in one 64-byte allocation with its object header (version 3:
// 16 and 96 bytes). Every earlier version, given an array, fails to
// decode it as above.
const (
	sentRecordVersion = 4
	sentRecordV3      = 3
	// sentRecordV2 is the version that wrote the intent's fields; still
	// read, and written with REDIS_WRITE_FORMAT=previous.
	sentRecordV2 = 2
)

// sentRecordPrefix opens every compact marker (a digit follows); an
// earlier version's marker opens with `{"intent_id":`.
var sentRecordPrefix = []byte(`{"kind":`)

// sentRecord is the compact marker. Every field of Result has its place
// here (TestSentRecordRoundTrip fills each one through reflection, nested
// SilenceRecord included, and reads it back).
type sentRecord struct {
	V int `json:"kind"` // the format version: see sentRecordVersion
	// Version 4 writes the fields in this order (positional.go): the ones
	// markSent fills first; new fields go at the end.
	//
	// The intent's fields: in versions 3 and 4 written only when they
	// differ from the intent's, nil meaning equal (the agency is always
	// written); in version 2 written unless empty, nil meaning empty.
	AgencyID   *string `json:"g,omitempty"`
	ProviderID string  `json:"p,omitempty"`
	At         recTime `json:"t,omitzero"`
	Attempt    int     `json:"n,omitempty"`
	// LatencyMS: in version 4 written only when it is not latencyOf the
	// intent and At or the intent id does not hash the step (idSays), nil
	// meaning latencyOf; in versions 2 and 3 written unless 0, nil meaning
	// 0.
	LatencyMS *int64  `json:"l,omitempty"`
	Step      *int    `json:"s,omitempty"`
	Round     *int    `json:"rn,omitempty"`
	ContactID *string `json:"c,omitempty"`
	AlertID   *string `json:"a,omitempty"`
	Rule      *string `json:"r,omitempty"`
	Kind      *string `json:"k,omitempty"`
	// IntentID, CaseRef and Channel are written only when they differ
	// from the key's; nil means equal.
	IntentID *string `json:"i,omitempty"`
	CaseRef  *string `json:"cr,omitempty"`
	Channel  *string `json:"ch,omitempty"`
	// Outcome is written only when it is not OutcomeSent; nil means sent.
	Outcome    *string `json:"o,omitempty"`
	ErrorClass string  `json:"ec,omitempty"`
	ErrorCode  string  `json:"ed,omitempty"`
	Error      string  `json:"e,omitempty"`
	Operator   string  `json:"op,omitempty"`
	// Note and silence fields belong to the console's audit records,
	// never to a sent-marker today; kept so that none is lost.
	NoteID     string `json:"ni,omitempty"`
	NoteSHA256 string `json:"nh,omitempty"`
	NoteLength int    `json:"nl,omitempty"`
	// Silence is stored as its own JSON (it has no personal data: matchers
	// and times).
	Silence *SilenceRecord `json:"si,omitempty"`
}

// encodeSent writes r's compact marker for the key of intent in and
// channel, in version 2 (every field of the intent written unless empty)
// when f is WritePrevious.
func encodeSent(in Intent, channel string, r Result, f WriteFormat) ([]byte, error) {
	rec := sentRecord{V: sentRecordVersion,
		AlertID: differs(r.AlertID, in.AlertID), Rule: differs(r.Rule, in.Rule), Kind: differs(r.Kind, in.Kind),
		Step: &r.Step, Round: &r.Round, AgencyID: &r.AgencyID, ContactID: differs(r.ContactID, in.ContactID),
		IntentID: differs(r.IntentID, in.ID), CaseRef: differs(r.CaseRef, in.CaseRef), Channel: differs(r.Channel, channel),
		Operator: r.Operator, NoteID: r.NoteID, NoteSHA256: r.NoteSHA256, NoteLength: r.NoteLength, Silence: r.Silence,
		Attempt: r.Attempt, ProviderID: r.ProviderID, ErrorClass: r.ErrorClass, ErrorCode: r.ErrorCode,
		Error: r.Error, At: recTime(r.At), LatencyMS: differs(r.LatencyMS, latencyOf(in, r.At)),
	}
	if r.Outcome != OutcomeSent {
		rec.Outcome = &r.Outcome
	}
	switch {
	case f == WritePrevious:
		rec.V = sentRecordV2
		rec.AlertID, rec.Rule, rec.Kind = unlessZero(r.AlertID), unlessZero(r.Rule), unlessZero(r.Kind)
		rec.Step, rec.Round = unlessZero(r.Step), unlessZero(r.Round)
		rec.AgencyID, rec.ContactID = unlessZero(r.AgencyID), unlessZero(r.ContactID)
		rec.LatencyMS = unlessZero(r.LatencyMS)
	case idSays(in):
		rec.Step, rec.Round = differs(r.Step, in.Step), differs(r.Round, in.Round)
	default:
		// Intents that share an id without its hashing them (a notice's)
		// may carry another event time: the latency is kept as written.
		rec.LatencyMS = &r.LatencyMS
	}
	var b []byte
	var err error
	if rec.V == sentRecordV2 {
		b, err = json.Marshal(rec)
	} else {
		b, err = appendPositional(make([]byte, 0, 64), rec)
	}
	if err != nil {
		return nil, fmt.Errorf("encode sent-marker of intent %s: %w", in.ID, err)
	}
	return b, nil
}

// idSays reports whether the intent's id is the hash of its alert, step,
// round and contact (IntentID), so that every intent with this id has the
// same step and round. A notice's id is not (NoticeID: every notice of an
// alert to one contact shares it, whatever step failed): its marker keeps
// the step and round. The agency is always kept: a contact's agency comes
// from the configuration, which may change.
func idSays(in Intent) bool {
	return in.ID == IntentID(in.AlertID, in.Step, in.Round, in.ContactID)
}

// differs is v when it differs from what the key or the intent says,
// else nil.
func differs[T comparable](v, said T) *T {
	if v == said {
		return nil
	}
	return &v
}

// unlessZero is v, or nil when v is the zero value (version 2 left empty
// fields out).
func unlessZero[T comparable](v T) *T {
	var zero T
	return differs(v, zero)
}

// valueOr is *p, or def when p is nil.
func valueOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// decodeSent reads the sent-marker of intent in and channel in any form:
// compact (version 4, 3 or 2) or the Result's own JSON written by earlier
// versions. A marker that does not decode is an error, never "not sent".
func decodeSent(in Intent, channel string, b []byte) (Result, error) {
	var rec sentRecord
	switch {
	case len(b) > 0 && b[0] == '[':
		if _, err := decodePositional(b, &rec); err != nil { // its version is checked below
			return Result{}, fmt.Errorf("decode sent-marker of intent %s: %w", in.ID, err)
		}
	case versioned(b, sentRecordPrefix):
		if err := json.Unmarshal(b, &rec); err != nil {
			return Result{}, fmt.Errorf("decode sent-marker of intent %s: %w", in.ID, err)
		}
	default:
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return Result{}, fmt.Errorf("decode sent-marker of intent %s (earlier format): %w", in.ID, err)
		}
		return r, nil
	}
	said := in // versions 3 and 4: what the marker leaves out, the intent says
	var latency int64
	switch {
	case rec.V == sentRecordVersion && b[0] == '[':
		latency = latencyOf(in, time.Time(rec.At))
	case rec.V == sentRecordV3 && b[0] == '{':
	case rec.V == sentRecordV2 && b[0] == '{': // left out meant empty
		said = Intent{ID: in.ID, CaseRef: in.CaseRef}
	default:
		return Result{}, fmt.Errorf("decode sent-marker of intent %s: record version %d unknown to this version", in.ID, rec.V)
	}
	r := Result{IntentID: valueOr(rec.IntentID, in.ID), CaseRef: valueOr(rec.CaseRef, in.CaseRef), Channel: valueOr(rec.Channel, channel),
		AlertID: valueOr(rec.AlertID, said.AlertID), Rule: valueOr(rec.Rule, said.Rule), Kind: valueOr(rec.Kind, said.Kind),
		Step: valueOr(rec.Step, said.Step), Round: valueOr(rec.Round, said.Round),
		AgencyID: valueOr(rec.AgencyID, said.AgencyID), ContactID: valueOr(rec.ContactID, said.ContactID),
		Operator: rec.Operator, NoteID: rec.NoteID, NoteSHA256: rec.NoteSHA256, NoteLength: rec.NoteLength,
		Silence: rec.Silence, Attempt: rec.Attempt, Outcome: valueOr(rec.Outcome, OutcomeSent), ProviderID: rec.ProviderID,
		ErrorClass: rec.ErrorClass, ErrorCode: rec.ErrorCode, Error: rec.Error, At: time.Time(rec.At),
		LatencyMS: valueOr(rec.LatencyMS, latency),
	}
	return r, nil
}
