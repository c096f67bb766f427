package dispatcher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/rules"
)

// An escalation record (case:{C}:esc:<alert>) is written in a compact
// form: times as Unix milliseconds, and nothing the key already says (the
// escalation and alert ids, the case). With a million open escalations
// its size is most of Redis's memory (issue 9). Version 4 is a
// positional record (positional.go: `[4,"event-id",...]`, escRecord4),
// with the event type as its number and the event's and due times as
// spans from the opening (compact), and what the escalation shares with
// others of its rule (the rule, severity, template, flags and policy
// snapshot) by reference to its profile (escProfile): about 130 bytes
// for an open escalation, which Redis keeps in a 160-byte allocation.
// Version 3 (still read) held the rule's fields itself and referred to
// the policy snapshot alone: about 175 bytes. Version 2, written with
// REDIS_WRITE_FORMAT=previous, is a JSON object with one-or-two-letter
// field names (about 280 bytes: a 320-byte allocation). Records written by earlier versions (the Escalation
// struct's own JSON, with the policy inline or by reference) are still
// read: decodeEscalation tells them apart by what opens them.
//
// Version 2's number is written under "id", the key under which earlier
// versions read the escalation's id, a string. So during a rolling
// upgrade an instance of an earlier version given a compact record fails
// to decode it (an error: its batch is retried, nothing committed, until
// a new instance takes the partition) instead of reading an escalation
// with no state, which it would take for finished and skip its timeout.
// Given version 3, an array, every earlier version fails the same way.
const (
	escRecordVersion = 4
	escRecordV3      = 3
	escRecordV2      = 2
)

// escRecordPrefix opens every compact record (a digit follows); an
// earlier version's record opens with `{"id":"`.
var escRecordPrefix = []byte(`{"id":`)

func isCompactRecord(b []byte) bool { return versioned(b, escRecordPrefix) }

// versioned reports whether b opens with prefix and a digit: the version
// of a compact record, under a key where earlier versions read a string.
func versioned(b, prefix []byte) bool {
	return bytes.HasPrefix(b, prefix) && len(b) > len(prefix) && b[len(prefix)] >= '0' && b[len(prefix)] <= '9'
}

// escRecord is the compact record of versions 2 and 3, and what version
// 4 is read into. Every field of Escalation and of rules.Alert has its
// place here (TestEscalationRecordRoundTrip fills each one through
// reflection and reads it back), except the policy snapshot, which is
// stored once by reference (PolicyRef).
type escRecord struct {
	V int `json:"id"` // the format version: see escRecordVersion
	// Version 3 writes the fields in this order (positional.go): the ones
	// an open escalation fills first; new fields go at the end.
	Rule      string      `json:"r,omitempty"`
	Severity  string      `json:"sv,omitempty"`
	Template  string      `json:"t,omitempty"`
	EventID   string      `json:"ev,omitempty"`
	Event     recEvent    `json:"-"` // version 3: EventType's number
	Occurred  *recSpan    `json:"-"` // version 3: OccurredAt after OpenedAt
	Place     recPlace    `json:"j,omitzero"`
	Unit      string      `json:"ru,omitempty"`
	AckCode   string      `json:"c,omitempty"`
	OpenedAt  recTime     `json:"o,omitzero"`
	Due       *recSpan    `json:"-"` // version 3: DueAt after OpenedAt
	Notified  []string    `json:"n,omitempty"`
	PolicyRef string      `json:"p,omitempty"`
	Level     event.Level `json:"l,omitzero"`
	Critical  bool        `json:"cr,omitempty"`
	// State is left out when it is EscOpen, as most records are.
	State         string         `json:"s,omitempty"`
	Step          int            `json:"st,omitempty"`
	Round         int            `json:"rn,omitempty"`
	LastCheckin   recTime        `json:"lc,omitzero"`
	PrevLevel     event.Level    `json:"pl,omitzero"`
	Skipped       []int          `json:"x,omitempty"`
	AckedBy       string         `json:"ab,omitempty"`
	AckedAt       recTime        `json:"aa,omitzero"`
	AckVia        string         `json:"av,omitempty"`
	AckedOperator string         `json:"ao,omitempty"`
	Merged        []string       `json:"m,omitempty"`
	SuppressFor   rules.Duration `json:"sf,omitempty"`
	Missed        int            `json:"mi,omitempty"`
	MissedSince   recTime        `json:"ms,omitzero"`
	PrevPlace     recPlace       `json:"pj,omitzero"`
	PrevUnit      string         `json:"pu,omitempty"`
	ReleaseTo     string         `json:"rd,omitempty"`
	Unrouted      bool           `json:"u,omitempty"`
	// AlertID and AlertCase are written only when they differ from the
	// escalation's id and case (the key's); nil means equal.
	AlertID   *string `json:"ai,omitempty"`
	AlertCase *string `json:"ac,omitempty"`
	// SuppressKey is written only when it is not the one the rules
	// engine makes (rule/case, plus /level for a critical rule); nil means
	// that one.
	SuppressKey *string `json:"sk,omitempty"`
	// Version 2 writes these; version 3 only when Event, Occurred and Due
	// cannot say them (a type this version has no number for, a time
	// with an offset or with no OpenedAt to count from).
	EventType  event.Type `json:"et,omitempty"`
	OccurredAt recTime    `json:"oc,omitzero"`
	DueAt      recTime    `json:"d,omitzero"`
}

// escRecord4 is version 4's positional layout: escRecord's fields of the
// same names and types, less those the escalation's profile holds (Rule,
// Severity, Template, Critical, SuppressFor and the policy snapshot,
// PolicyRef), with Profile, the profile's reference, in their place. The
// levels are their numbers (event.Level: 1 bajo to 4 extremo), and a
// notified agency that is the alert's responsible unit is written "".
// The fields an open escalation fills come first; new fields go at the
// end.
type escRecord4 struct {
	V             int
	EventID       string
	Event         recEvent
	Occurred      *recSpan
	Place         recPlace
	Unit          string
	AckCode       string
	OpenedAt      recTime
	Due           *recSpan
	Notified      []string
	Profile       string
	Level         int8
	State         string
	Step          int
	Round         int
	LastCheckin   recTime
	PrevLevel     int8
	Skipped       []int
	AckedBy       string
	AckedAt       recTime
	AckVia        string
	AckedOperator string
	Merged        []string
	Missed        int
	MissedSince   recTime
	PrevPlace     recPlace
	PrevUnit      string
	ReleaseTo     string
	Unrouted      bool
	AlertID       *string
	AlertCase     *string
	SuppressKey   *string
	EventType     event.Type
	OccurredAt    recTime
	DueAt         recTime
}

// copyFields sets each field of the struct dst points to from the field
// of src (a struct) with the same name and type; other fields are left
// (TestRecordLayoutsFrozen checks which).
func copyFields(dst, src any) {
	d, sv := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src)
	for i := range d.NumField() {
		if f := sv.FieldByName(d.Type().Field(i).Name); f.IsValid() && f.Type() == d.Field(i).Type() {
			d.Field(i).Set(f)
		}
	}
}

// toV4 is r (compacted) in version 4's layout, referring to profile.
func (r *escRecord) toV4(profile string) escRecord4 {
	var r4 escRecord4
	copyFields(&r4, *r)
	r4.Profile, r4.Level, r4.PrevLevel = profile, int8(r.Level), int8(r.PrevLevel)
	r4.Notified = slices.Clone(r.Notified)
	for i, n := range r4.Notified {
		if n == r.Unit {
			r4.Notified[i] = ""
		}
	}
	return r4
}

// fromV4 reads a version 4 record into r (to be expanded).
func (r *escRecord) fromV4(r4 escRecord4) error {
	copyFields(r, r4)
	for _, l := range []int8{r4.Level, r4.PrevLevel} {
		if l < int8(event.LevelNone) || l > int8(event.Extremo) {
			return fmt.Errorf("level number %d unknown to this version", l)
		}
	}
	r.Level, r.PrevLevel = event.Level(r4.Level), event.Level(r4.PrevLevel)
	for i, n := range r.Notified {
		if n == "" {
			r.Notified[i] = r.Unit
		}
	}
	return nil
}

// compact moves what version 3 writes shorter from the version 2 fields
// to the version 3 ones: the event type to its number, the event's time
// and the due time to milliseconds after the opening.
func (r *escRecord) compact() {
	if n := slices.Index(recEventTypes, r.EventType); n >= 0 {
		r.Event, r.EventType = recEvent(n+1), ""
	}
	if d, ok := spanFrom(time.Time(r.OpenedAt), time.Time(r.OccurredAt)); ok {
		r.Occurred, r.OccurredAt = &d, recTime{}
	}
	if d, ok := spanFrom(time.Time(r.OpenedAt), time.Time(r.DueAt)); ok {
		r.Due, r.DueAt = &d, recTime{}
	}
}

// expand is compact undone, after a version 3 record is read.
func (r *escRecord) expand() error {
	if r.Event != 0 {
		if r.Event < 0 || int(r.Event) > len(recEventTypes) {
			return fmt.Errorf("event type number %d unknown to this version", r.Event)
		}
		r.EventType = recEventTypes[r.Event-1]
	}
	if r.Occurred != nil {
		r.OccurredAt = recTime(time.Time(r.OpenedAt).Add(time.Duration(*r.Occurred)).UTC())
	}
	if r.Due != nil {
		r.DueAt = recTime(time.Time(r.OpenedAt).Add(time.Duration(*r.Due)).UTC())
	}
	return nil
}

// recEventTypes numbers event types in version 3 records (recEvent): the
// number is the place in this list, counted from 1. Append only: a
// number, once written, names its type for as long as records live.
var recEventTypes = []event.Type{
	event.CaseOpened, event.RiskAssessed, event.IncidentReported, event.CheckinRecorded,
	event.ProtectionOrderIssued, event.ProtectionOrderExpired, event.BreachReported,
	event.PenitentiaryRelease, event.DeviceAlarm, event.CaseRelocated, event.CaseClosed, event.CaseReactivated,
	event.CheckinMissed, event.ReassessmentOverdue, event.EscalationTimeout, event.EscalationAcknowledged,
}

// recEvent is an event type's number in recEventTypes; 0 means none.
type recEvent int

// recSpan is a time in a record as the time from its escalation's
// opening, written as recTime writes a time: milliseconds, with the
// nanoseconds below one as a fraction of 6 digits when there are any; it
// may be negative (an event happens before its escalation opens).
type recSpan time.Duration

// spanFrom is t as a span from base, when base is set and t is a UTC time
// (a time with an offset keeps it, written absolute) the span can say.
func spanFrom(base, t time.Time) (recSpan, bool) {
	if base.IsZero() || t.IsZero() {
		return 0, false
	}
	if _, off := t.Zone(); off != 0 {
		return 0, false
	}
	d := t.Sub(base)
	if !base.Add(d).Equal(t) { // beyond 292 years: Sub saturates
		return 0, false
	}
	return recSpan(d), true
}

func (d recSpan) MarshalJSON() ([]byte, error) {
	if d < 0 {
		return appendMillis([]byte{'-'}, -uint64(d)), nil // -uint64 of math.MinInt64 is 2^63
	}
	return appendMillis(nil, uint64(d)), nil
}

func (d *recSpan) UnmarshalJSON(b []byte) error {
	digits, neg := bytes.CutPrefix(b, []byte("-"))
	ns, err := parseMillis(digits)
	if err == nil && !neg && ns > math.MaxInt64 {
		err = fmt.Errorf("out of range")
	}
	if err != nil {
		return fmt.Errorf("record span %q: %w", b, err)
	}
	if neg {
		*d = recSpan(-int64(ns)) // 2^63 wraps to math.MinInt64, its own negation
		return nil
	}
	*d = recSpan(ns)
	return nil
}

// defaultSuppressKey is the suppression key the record leaves out: the
// one rules.Engine gives an alert.
func defaultSuppressKey(a rules.Alert) string {
	if a.Critical {
		return a.Rule + "/" + a.CaseID + "/" + a.Level.String()
	}
	return a.Rule + "/" + a.CaseID
}

// encodeEscalation writes e's compact record, in version 2 when f is
// WritePrevious; e.Alert.Policy must already be replaced by e.PolicyRef
// (Save does it).
func encodeEscalation(e *Escalation, f WriteFormat) ([]byte, error) {
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
	var b []byte
	var err error
	if f == WritePrevious {
		r.V = escRecordV2
		b, err = json.Marshal(r)
	} else {
		if e.profileRef == "" {
			return nil, fmt.Errorf("encode escalation %s: the profile must be stored by reference", e.ID)
		}
		r.compact()
		b, err = appendPositional(make([]byte, 0, 192), r.toV4(e.profileRef))
	}
	if err != nil {
		return nil, fmt.Errorf("encode escalation %s: %w", e.ID, err)
	}
	return b, nil
}

// decodeEscalation reads a record of escalation alertID of caseRef in any
// form: compact (version 3 or 2) or the Escalation's own JSON written by
// earlier versions. The policy snapshot is not resolved here.
func decodeEscalation(caseRef, alertID string, b []byte) (*Escalation, error) {
	var r escRecord
	profile := ""
	switch {
	case len(b) > 0 && b[0] == '[':
		var err error
		if profile, err = decodePositionalRecord(b, &r); err != nil {
			return nil, fmt.Errorf("decode escalation %s: %w", alertID, err)
		}
	case isCompactRecord(b):
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("decode escalation %s: %w", alertID, err)
		}
		if r.V != escRecordV2 {
			return nil, fmt.Errorf("decode escalation %s: record version %d unknown to this version", alertID, r.V)
		}
	default:
		var e Escalation
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("decode escalation %s (earlier format): %w", alertID, err)
		}
		return &e, nil
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
	e := &Escalation{ID: alertID, CaseRef: caseRef,
		AckCode: r.AckCode, State: r.State, Step: r.Step, Round: r.Round,
		OpenedAt: time.Time(r.OpenedAt), DueAt: time.Time(r.DueAt), Notified: r.Notified, Skipped: r.Skipped,
		LastCheckin: time.Time(r.LastCheckin), AckedBy: r.AckedBy, AckedAt: time.Time(r.AckedAt), AckVia: r.AckVia,
		AckedOperator: r.AckedOperator, Merged: r.Merged, PolicyRef: r.PolicyRef, profileRef: profile,
	}
	switch {
	case r.SuppressKey != nil:
		a.SuppressKey = *r.SuppressKey
	case profile != "": // the rule is in the profile: EscalationStore.decode
		e.defaultSuppress = true
	default:
		a.SuppressKey = defaultSuppressKey(a)
	}
	e.Alert = a
	return e, nil
}

// decodePositionalRecord reads a positional record (version 4 or 3) into
// r and returns the reference of its profile (version 4).
func decodePositionalRecord(b []byte, r *escRecord) (profile string, err error) {
	var r4 escRecord4
	switch v, err := peekVersion(b); {
	case err != nil:
		return "", err
	case v == escRecordVersion:
		if _, err := decodePositional(b, &r4); err != nil {
			return "", err
		}
		if r4.Profile == "" {
			return "", fmt.Errorf("record version 4 without its profile")
		}
		if err := r.fromV4(r4); err != nil {
			return "", err
		}
	case v == escRecordV3:
		if _, err := decodePositional(b, r); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("record version %d unknown to this version", v)
	}
	return r4.Profile, r.expand()
}

// peekVersion reads a positional record's version: the number its array
// opens with.
func peekVersion(b []byte) (int, error) {
	end := bytes.IndexAny(b, ",]")
	if len(b) < 2 || b[0] != '[' || end < 0 {
		return 0, fmt.Errorf("not a positional record")
	}
	v, err := strconv.Atoi(string(bytes.TrimSpace(b[1:end])))
	if err != nil {
		return 0, fmt.Errorf("version %q: %w", b[1:end], err)
	}
	return v, nil
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
	return appendMillis(nil, uint64(tt.UnixNano())), nil
}

// appendMillis writes ns nanoseconds as parseMillis reads them.
func appendMillis(b []byte, ns uint64) []byte {
	b = strconv.AppendUint(b, ns/1e6, 10)
	if sub := ns % 1e6; sub != 0 {
		b = fmt.Appendf(b, ".%06d", sub)
	}
	return b
}

func (t *recTime) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return (*time.Time)(t).UnmarshalJSON(b)
	}
	ns, err := parseMillis(b)
	if err != nil || ns > math.MaxInt64 {
		return fmt.Errorf("record time %q: not milliseconds since 1970 (%v)", b, err)
	}
	*t = recTime(time.Unix(0, int64(ns)).UTC())
	return nil
}

// parseMillis reads the digits recTime and recSpan write, milliseconds
// with an optional fraction of exactly 6 digits, as nanoseconds: no sign,
// at most 2^63.
func parseMillis(b []byte) (uint64, error) {
	msPart, subPart, frac := strings.Cut(string(b), ".")
	msv, err := strconv.ParseUint(msPart, 10, 64)
	if err != nil {
		return 0, err
	}
	var sub uint64
	if frac {
		if len(subPart) != 6 {
			return 0, fmt.Errorf("want 6 digits below the millisecond")
		}
		if sub, err = strconv.ParseUint(subPart, 10, 64); err != nil {
			return 0, err
		}
	}
	if msv > (1<<63-sub)/1e6 {
		return 0, fmt.Errorf("out of range")
	}
	return msv*1e6 + sub, nil
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
