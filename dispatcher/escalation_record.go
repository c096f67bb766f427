package dispatcher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/rules"
)

// An escalation record (case:{C}:esc:<alert>) is written in a compact
// form, version 2: one-or-two-letter field names, times as Unix
// milliseconds, and nothing the key already says (the escalation and
// alert ids, the case). With a million open escalations its size is most
// of Redis's memory (issue 9). Records written by earlier versions (the
// Escalation struct's own JSON, with the policy inline or by reference)
// are still read: decodeEscalation tells them apart by what opens them.
//
// The version number is written under "id", the key under which earlier
// versions read the escalation's id, a string. So during a rolling
// upgrade an instance of an earlier version given a compact record fails
// to decode it (an error: its batch is retried, nothing committed, until
// a new instance takes the partition) instead of reading an escalation
// with no state, which it would take for finished and skip its timeout.
const escRecordVersion = 2

// escRecordPrefix opens every compact record (a digit follows); an
// earlier version's record opens with `{"id":"`.
var escRecordPrefix = []byte(`{"id":`)

func isCompactRecord(b []byte) bool { return versioned(b, escRecordPrefix) }

// versioned reports whether b opens with prefix and a digit: the version
// of a compact record, under a key where earlier versions read a string.
func versioned(b, prefix []byte) bool {
	return bytes.HasPrefix(b, prefix) && len(b) > len(prefix) && b[len(prefix)] >= '0' && b[len(prefix)] <= '9'
}

// escRecord is the compact record. Every field of Escalation and of
// rules.Alert has its place here (TestEscalationRecordRoundTrip fills
// each one through reflection and reads it back), except the policy
// snapshot, which is stored once by reference (PolicyRef).
type escRecord struct {
	V int `json:"id"` // the format version: see escRecordVersion
	// AlertID and AlertCase are written only when they differ from the
	// escalation's id and case (the key's); nil means equal.
	AlertID   *string `json:"ai,omitempty"`
	AlertCase *string `json:"ac,omitempty"`
	Rule      string  `json:"r,omitempty"`
	Severity  string  `json:"sv,omitempty"`
	Critical  bool    `json:"cr,omitempty"`
	Template  string  `json:"t,omitempty"`
	// SuppressKey is written only when it is not the one the rules
	// engine makes (rule/case, plus /level for a critical rule); nil means
	// that one.
	SuppressKey *string        `json:"sk,omitempty"`
	SuppressFor rules.Duration `json:"sf,omitempty"`
	Unrouted    bool           `json:"u,omitempty"`
	EventID     string         `json:"ev,omitempty"`
	EventType   event.Type     `json:"et,omitempty"`
	OccurredAt  recTime        `json:"oc,omitzero"`
	Level       event.Level    `json:"l,omitzero"`
	PrevLevel   event.Level    `json:"pl,omitzero"`
	Place       recPlace       `json:"j,omitzero"`
	Unit        string         `json:"ru,omitempty"`
	PrevPlace   recPlace       `json:"pj,omitzero"`
	PrevUnit    string         `json:"pu,omitempty"`
	ReleaseTo   string         `json:"rd,omitempty"`
	Missed      int            `json:"mi,omitempty"`
	MissedSince recTime        `json:"ms,omitzero"`

	AckCode string `json:"c,omitempty"`
	// State is left out when it is EscOpen, as most records are.
	State         string   `json:"s,omitempty"`
	Step          int      `json:"st,omitempty"`
	Round         int      `json:"rn,omitempty"`
	OpenedAt      recTime  `json:"o,omitzero"`
	DueAt         recTime  `json:"d,omitzero"`
	Notified      []string `json:"n,omitempty"`
	Skipped       []int    `json:"x,omitempty"`
	LastCheckin   recTime  `json:"lc,omitzero"`
	AckedBy       string   `json:"ab,omitempty"`
	AckedAt       recTime  `json:"aa,omitzero"`
	AckVia        string   `json:"av,omitempty"`
	AckedOperator string   `json:"ao,omitempty"`
	Merged        []string `json:"m,omitempty"`
	PolicyRef     string   `json:"p,omitempty"`
}

// defaultSuppressKey is the suppression key the record leaves out: the
// one rules.Engine gives an alert.
func defaultSuppressKey(a rules.Alert) string {
	if a.Critical {
		return a.Rule + "/" + a.CaseID + "/" + a.Level.String()
	}
	return a.Rule + "/" + a.CaseID
}

// encodeEscalation writes e's compact record; e.Alert.Policy must already
// be replaced by e.PolicyRef (Save does it).
func encodeEscalation(e *Escalation) ([]byte, error) {
	a := e.Alert
	r := escRecord{V: escRecordVersion,
		Rule: a.Rule, Severity: a.Severity, Critical: a.Critical, Template: a.Template,
		SuppressFor: a.SuppressFor, Unrouted: a.Unrouted, EventID: a.EventID, EventType: a.EventType,
		OccurredAt: recTime(a.OccurredAt), Level: a.Level, PrevLevel: a.PrevLevel,
		Place: recPlace(a.Route.Jurisdiction), Unit: a.Route.ResponsibleUnit,
		PrevPlace: recPlace(a.Route.PreviousJurisdiction), PrevUnit: a.Route.PreviousUnit,
		ReleaseTo: a.Route.ReleaseDestination, Missed: a.Missed, MissedSince: recTime(a.MissedSince),
		AckCode: e.AckCode, State: e.State, Step: e.Step, Round: e.Round,
		OpenedAt: recTime(e.OpenedAt), DueAt: recTime(e.DueAt), Notified: e.Notified, Skipped: e.Skipped,
		LastCheckin: recTime(e.LastCheckin), AckedBy: e.AckedBy, AckedAt: recTime(e.AckedAt), AckVia: e.AckVia,
		AckedOperator: e.AckedOperator, Merged: e.Merged, PolicyRef: e.PolicyRef,
	}
	if r.State == EscOpen {
		r.State = ""
	}
	if a.ID != e.ID {
		r.AlertID = &a.ID
	}
	if a.CaseID != e.CaseRef {
		r.AlertCase = &a.CaseID
	}
	if a.SuppressKey != defaultSuppressKey(a) {
		r.SuppressKey = &a.SuppressKey
	}
	if len(a.Policy.Steps) > 0 || a.Policy.ID != "" {
		return nil, fmt.Errorf("encode escalation %s: the policy snapshot must be stored by reference", e.ID)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode escalation %s: %w", e.ID, err)
	}
	return b, nil
}

// decodeEscalation reads a record of escalation alertID of caseRef in
// either form: compact (version 2) or the Escalation's own JSON written
// by earlier versions. The policy snapshot is not resolved here.
func decodeEscalation(caseRef, alertID string, b []byte) (*Escalation, error) {
	if !isCompactRecord(b) {
		var e Escalation
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("decode escalation %s (earlier format): %w", alertID, err)
		}
		return &e, nil
	}
	var r escRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode escalation %s: %w", alertID, err)
	}
	if r.V != escRecordVersion {
		return nil, fmt.Errorf("decode escalation %s: record version %d unknown to this version", alertID, r.V)
	}
	a := rules.Alert{ID: alertID, CaseID: caseRef,
		Rule: r.Rule, Severity: r.Severity, Critical: r.Critical, Template: r.Template,
		SuppressFor: r.SuppressFor, Unrouted: r.Unrouted, EventID: r.EventID, EventType: r.EventType,
		OccurredAt: time.Time(r.OccurredAt), Level: r.Level, PrevLevel: r.PrevLevel,
		Route: rules.RouteContext{Jurisdiction: event.Jurisdiction(r.Place), ResponsibleUnit: r.Unit,
			PreviousJurisdiction: event.Jurisdiction(r.PrevPlace), PreviousUnit: r.PrevUnit, ReleaseDestination: r.ReleaseTo},
		Missed: r.Missed, MissedSince: time.Time(r.MissedSince),
	}
	if r.AlertID != nil {
		a.ID = *r.AlertID
	}
	if r.AlertCase != nil {
		a.CaseID = *r.AlertCase
	}
	if r.State == "" {
		r.State = EscOpen
	}
	if r.SuppressKey != nil {
		a.SuppressKey = *r.SuppressKey
	} else {
		a.SuppressKey = defaultSuppressKey(a)
	}
	return &Escalation{ID: alertID, CaseRef: caseRef, Alert: a,
		AckCode: r.AckCode, State: r.State, Step: r.Step, Round: r.Round,
		OpenedAt: time.Time(r.OpenedAt), DueAt: time.Time(r.DueAt), Notified: r.Notified, Skipped: r.Skipped,
		LastCheckin: time.Time(r.LastCheckin), AckedBy: r.AckedBy, AckedAt: time.Time(r.AckedAt), AckVia: r.AckVia,
		AckedOperator: r.AckedOperator, Merged: r.Merged, PolicyRef: r.PolicyRef,
	}, nil
}

// recTime is a time in a record: Unix milliseconds, with the nanoseconds
// below a millisecond as a fraction of 6 digits when there are any
// (1773133200123 or 1773133200123.000456), for a UTC instant between 1970
// and 2262; any other time as RFC 3339 with its offset, as the
// Escalation's JSON writes it. Read back, the number is a UTC time.
type recTime time.Time

func (t recTime) IsZero() bool { return time.Time(t).IsZero() }

func (t recTime) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if _, off := tt.Zone(); off != 0 || tt.Year() < 1970 || tt.Year() > 2261 {
		return tt.MarshalJSON()
	}
	ns := tt.UnixNano()
	s := strconv.FormatInt(ns/1e6, 10)
	if sub := ns % 1e6; sub != 0 {
		s += fmt.Sprintf(".%06d", sub)
	}
	return []byte(s), nil
}

func (t *recTime) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return (*time.Time)(t).UnmarshalJSON(b)
	}
	msPart, subPart, frac := strings.Cut(string(b), ".")
	msv, err := strconv.ParseInt(msPart, 10, 64)
	if err != nil {
		return fmt.Errorf("record time %q: %w", b, err)
	}
	var sub int64
	if frac {
		if len(subPart) != 6 {
			return fmt.Errorf("record time %q: want 6 digits below the millisecond", b)
		}
		if sub, err = strconv.ParseInt(subPart, 10, 64); err != nil {
			return fmt.Errorf("record time %q: %w", b, err)
		}
	}
	*t = recTime(time.Unix(0, msv*1e6+sub).UTC())
	return nil
}

// recPlace is a jurisdiction in a record: [municipality, province, region].
type recPlace event.Jurisdiction

func (p recPlace) IsZero() bool { return p == recPlace{} }

func (p recPlace) MarshalJSON() ([]byte, error) {
	return json.Marshal([3]string{p.Municipality, p.Province, p.Region})
}

func (p *recPlace) UnmarshalJSON(b []byte) error {
	var a [3]string
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("record jurisdiction: %w", err)
	}
	*p = recPlace{Municipality: a[0], Province: a[1], Region: a[2]}
	return nil
}
