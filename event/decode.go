package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// MaxSize is the largest message the decoder accepts.
const MaxSize = 64 << 10

// Error is a decoding or validation failure; Field names the offending
// field as a JSON path (e.g. "risk.level"), or "$" for the whole message.
// Error texts end up in logs and dead-letter headers, so they never
// repeat input: Field holds only contract field names (an unknown key is
// named by its position in its object, in Reason), and Reason says what
// is expected, never what was found.
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) *Error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, args...)}
}

var (
	municipalityRe = regexp.MustCompile(`^[0-9]{5}$`)
	provinceRe     = regexp.MustCompile(`^[0-9]{2}$`)
	regionRe       = regexp.MustCompile(`^[A-Z]{2}$`)
	// idRe keeps identifiers opaque and log-safe: no spaces, no '@', no '+'.
	idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$`)
)

// The patterns above are the contract (docs/events.md prints them); every
// event is checked against them with these byte loops instead, which
// match exactly the same strings (TestPatternMatchersAgreeWithRegexps) at
// a tenth of the cost.

func isID(v string) bool {
	if len(v) == 0 || len(v) > 128 || !isAlnum(v[0]) {
		return false
	}
	for i := 1; i < len(v); i++ {
		if c := v[i]; !isAlnum(c) && c != '.' && c != '_' && c != ':' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// isDigits reports whether v is exactly n ASCII digits.
func isNDigits(v string, n int) bool {
	if len(v) != n {
		return false
	}
	for i := 0; i < n; i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

func isRegion(v string) bool {
	return len(v) == 2 && 'A' <= v[0] && v[0] <= 'Z' && 'A' <= v[1] && v[1] <= 'Z'
}

// Decode reads one upstream event. It is strict: unknown fields, unknown
// or internal types, missing required fields, bad levels, codes or times,
// and messages over MaxSize are errors of type *Error naming the field.
func Decode(b []byte) (Event, error) { return decode(b, false) }

// DecodeInternal also accepts the dispatcher's own internal event types.
func DecodeInternal(b []byte) (Event, error) { return decode(b, true) }

func decode(b []byte, internal bool) (Event, error) {
	var ev Event
	if len(b) > MaxSize {
		return ev, fieldErr("$", "message is %d bytes, over the %d-byte limit", len(b), MaxSize)
	}
	// encoding/json alone matches keys case-insensitively, keeps the last
	// of duplicate keys, names an unknown nested key without its path and
	// lets a stray '}' or ']' trail the object: checkKeys closes those gaps.
	// keysOK is the fast path; checkKeys decides (and explains) the rest,
	// and explains a message the fast path let through and the typed
	// decode refuses, so every error is the one checkKeys would give.
	fast := keysOK(b)
	if !fast {
		if err := checkKeys(b); err != nil {
			return ev, err
		}
	}
	var w wire
	if fast && fillWire(b, &w) {
		return w.event(internal)
	}
	w = wire{}
	var err error
	if fast {
		// Every key is the contract's: no unknown field to refuse, and
		// Unmarshal spares the Decoder's copy of the message.
		err = json.Unmarshal(b, &w)
	} else {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		err = dec.Decode(&w)
	}
	if err != nil {
		if fast {
			if kerr := checkKeys(b); kerr != nil {
				return ev, kerr
			}
		}
		return ev, jsonErr(err)
	}
	return w.event(internal)
}

// shape lists the keys a JSON object may hold, each with the shape of its
// value; a nil shape accepts any value (the typed decode checks it).
type shape map[string]shape

// wireShape is derived from the wire struct tags, so it cannot drift.
var wireShape = shapeOf(reflect.TypeFor[wire]())

func shapeOf(t reflect.Type) shape {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	s := shape{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		s[name] = shapeOf(f.Type)
	}
	return s
}

// checkKeys walks the message's tokens: it must be one JSON object whose
// keys, at every level, are exactly the contract's (case-sensitive, each
// at most once), followed by nothing but white space.
func checkKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return syntaxErr(err)
	}
	if tok != json.Delim('{') {
		return fieldErr("$", "must be a JSON object")
	}
	if err := walkObject(dec, wireShape, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fieldErr("$", "trailing data after the JSON object")
	}
	return nil
}

// walkObject checks the keys of an object whose '{' was just read.
func walkObject(dec *json.Decoder, s shape, path string) error {
	seen := make(map[string]bool, len(s))
	for n := 1; dec.More(); n++ {
		tok, err := dec.Token()
		if err != nil {
			return syntaxErr(err)
		}
		key, _ := tok.(string)
		child, ok := s[key]
		if !ok {
			// The key itself is never repeated: it may be personal data.
			where := "at top level"
			if path != "" {
				where = "in this object"
			}
			return fieldErr(objectField(path), "unknown key #%d %s (the contract is strict and case-sensitive; see docs/events.md)", n, where)
		}
		field := joinField(path, key)
		if seen[key] {
			return fieldErr(field, "appears more than once")
		}
		seen[key] = true
		if err := walkValue(dec, child, field); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return syntaxErr(err)
	}
	return nil
}

// walkValue reads one value, checking its keys if s describes an object.
func walkValue(dec *json.Decoder, s shape, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return syntaxErr(err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if d == '{' && s != nil {
		return walkObject(dec, s, path)
	}
	// Skip a value nobody checks the keys of, without recursion.
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return syntaxErr(err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

// joinField makes the JSON path of a known key (a contract field name).
func joinField(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// objectField is the Field of an error about the object at path.
func objectField(path string) string {
	if path == "" {
		return "$"
	}
	return path
}

// syntaxErr reports invalid JSON by byte offset: encoding/json's own
// texts quote the offending input.
func syntaxErr(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return fieldErr("$", "invalid JSON: unexpected end of input")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fieldErr("$", "invalid JSON at byte %d", se.Offset)
	}
	return fieldErr("$", "invalid JSON")
}

// jsonErr turns encoding/json's errors into *Error with a field name.
func jsonErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		// checkKeys let only contract keys through, so the path is made
		// of field names; keep only the known ones all the same.
		f := knownPath(te.Field)
		got, _, _ := strings.Cut(te.Value, " ") // "number 1.5": keep the kind, not the value
		switch got {
		case "string", "number", "bool", "array", "object", "null":
		default:
			got = "value of another type"
		}
		return fieldErr(f, "must be %s, got a JSON %s", jsonKind(te.Type), got)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return syntaxErr(err)
	}
	// Unknown fields were refused by checkKeys (by position); whatever
	// else encoding/json reports may quote input.
	return fieldErr("$", "invalid JSON")
}

// knownPath keeps a dotted path only if each part is a contract field
// (an index such as [1] is allowed after one), else "$".
func knownPath(p string) string {
	if p == "" {
		return "$"
	}
	s := wireShape
	for _, part := range strings.Split(p, ".") {
		name, _, _ := strings.Cut(part, "[")
		child, ok := s[name]
		if !ok {
			return "$"
		}
		s = child
	}
	return p
}

// jsonKind names the JSON a Go type reads, for error reasons.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another JSON type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number in range (no fraction or exponent)"
	case reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "another JSON type"
}

// wire mirrors the JSON with strings where we validate ourselves, so
// every error can name its field.
type wire struct {
	ID              string        `json:"id"`
	Type            string        `json:"type"`
	CaseID          string        `json:"case_id"`
	OccurredAt      string        `json:"occurred_at"`
	Source          string        `json:"source"`
	Jurisdiction    *Jurisdiction `json:"jurisdiction"`
	ResponsibleUnit string        `json:"responsible_unit"`
	Version         *int64        `json:"version"`

	Risk            *wireRisk            `json:"risk"`
	Incident        *wireIncident        `json:"incident"`
	Checkin         *Checkin             `json:"checkin"`
	ProtectionOrder *wireProtectionOrder `json:"protection_order"`
	Breach          *Breach              `json:"breach"`
	Release         *wireRelease         `json:"release"`
	Alarm           *Alarm               `json:"alarm"`
	Relocation      *wireRelocation      `json:"relocation"`
	Closure         *Closure             `json:"closure"`
	Timer           *wireTimer           `json:"timer"`
	Ack             *Ack                 `json:"ack"`
}

type wireRisk struct {
	Level    json.RawMessage `json:"level"`
	Previous json.RawMessage `json:"previous"`
	Manual   bool            `json:"manual"`
}

type wireIncident struct {
	Kind              string `json:"kind"`
	ReassessmentDueBy string `json:"reassessment_due_by"`
}

type wireProtectionOrder struct {
	Court      string   `json:"court"`
	Measures   []string `json:"measures"`
	ValidUntil string   `json:"valid_until"`
}

type wireRelease struct {
	EffectiveAt             string `json:"effective_at"`
	Until                   string `json:"until"`
	DestinationMunicipality string `json:"destination_municipality"`
}

type wireRelocation struct {
	To              *Jurisdiction `json:"to"`
	ResponsibleUnit string        `json:"responsible_unit"`
}

type wireTimer struct {
	DueAt        string `json:"due_at"`
	EscalationID string `json:"escalation_id"`
	Step         int    `json:"step"`
	Round        int    `json:"round"`
}

func (w *wire) event(internal bool) (Event, error) {
	ev := Event{
		ID: w.ID, Type: Type(w.Type), CaseID: w.CaseID, Source: w.Source,
		ResponsibleUnit: w.ResponsibleUnit,
		Checkin:         w.Checkin, Breach: w.Breach, Alarm: w.Alarm, Closure: w.Closure, Ack: w.Ack,
	}
	if err := w.envelope(&ev, internal); err != nil {
		return Event{}, err
	}
	if err := w.body(&ev); err != nil {
		return Event{}, err
	}
	return ev, nil
}

func (w *wire) envelope(ev *Event, internal bool) error {
	if err := checkID("id", w.ID); err != nil {
		return err
	}
	if w.Type == "" {
		return fieldErr("type", "is required")
	}
	if !ev.Type.Known() || (ev.Type.IsInternal() && !internal) {
		return fieldErr("type", "unknown event type (see docs/events.md for the list)")
	}
	if err := checkID("case_id", w.CaseID); err != nil {
		return err
	}
	t, err := parseTime("occurred_at", w.OccurredAt, true)
	if err != nil {
		return err
	}
	ev.OccurredAt = t
	if w.Source == "" {
		return fieldErr("source", "is required")
	}
	if err := checkText("source", w.Source, 64); err != nil {
		return err
	}
	if w.Jurisdiction == nil {
		return fieldErr("jurisdiction", "is required")
	}
	if err := checkJurisdiction("jurisdiction", *w.Jurisdiction); err != nil {
		return err
	}
	ev.Jurisdiction = *w.Jurisdiction
	if err := checkID("responsible_unit", w.ResponsibleUnit); err != nil {
		return err
	}
	if w.Version != nil {
		if *w.Version <= 0 {
			return fieldErr("version", "must be a positive integer")
		}
		ev.Version = *w.Version
	}
	return nil
}

// body validates the type-specific part: the field the type requires, and
// no field that belongs to another type.
func (w *wire) body(ev *Event) error {
	if err := w.forbidOthers(ev.Type); err != nil {
		return err
	}
	switch ev.Type {
	case CaseOpened:
		return w.risk(ev, false)
	case RiskAssessed:
		return w.risk(ev, true)
	case IncidentReported:
		return w.incident(ev)
	case CheckinRecorded:
		return checkCheckin(w.Checkin)
	case ProtectionOrderIssued, ProtectionOrderExpired:
		return w.order(ev)
	case BreachReported:
		if w.Breach != nil {
			return checkText("breach.channel", w.Breach.Channel, 64)
		}
	case CaseClosed, CaseReactivated:
		if w.Closure != nil {
			return checkText("closure.reason", w.Closure.Reason, 128)
		}
	case PenitentiaryRelease:
		return w.release(ev)
	case DeviceAlarm:
		return checkAlarm(w.Alarm)
	case CaseRelocated:
		return w.relocation(ev)
	case CheckinMissed, ReassessmentOverdue, EscalationTimeout:
		return w.timer(ev)
	case EscalationAcknowledged:
		return checkAck(w.Ack)
	}
	return nil
}

// allowed maps each body field to the types that may carry it.
var allowed = map[string][]Type{
	"risk":             {CaseOpened, RiskAssessed},
	"incident":         {IncidentReported},
	"checkin":          {CheckinRecorded},
	"protection_order": {ProtectionOrderIssued, ProtectionOrderExpired},
	"breach":           {BreachReported},
	"release":          {PenitentiaryRelease},
	"alarm":            {DeviceAlarm},
	"relocation":       {CaseRelocated},
	"closure":          {CaseClosed, CaseReactivated},
	"timer":            {CheckinMissed, ReassessmentOverdue, EscalationTimeout},
	"ack":              {EscalationAcknowledged},
}

// bodyFields orders the body fields so the error names the same one each run.
var bodyFields = []string{"risk", "incident", "checkin", "protection_order", "breach",
	"release", "alarm", "relocation", "closure", "timer", "ack"}

// present says, in bodyFields order, which body fields the message has.
func (w *wire) present() [11]bool {
	return [...]bool{w.Risk != nil, w.Incident != nil, w.Checkin != nil, w.ProtectionOrder != nil, w.Breach != nil,
		w.Release != nil, w.Alarm != nil, w.Relocation != nil, w.Closure != nil, w.Timer != nil, w.Ack != nil}
}

func (w *wire) forbidOthers(t Type) error {
	present := w.present()
	for i, field := range bodyFields {
		if !present[i] {
			continue
		}
		ok := false
		for _, at := range allowed[field] {
			ok = ok || at == t
		}
		if !ok {
			return fieldErr(field, "is not allowed on a %s event", t)
		}
	}
	return nil
}

func (w *wire) risk(ev *Event, required bool) error {
	if w.Risk == nil {
		if required {
			return fieldErr("risk", "is required on a %s event", ev.Type)
		}
		return nil
	}
	lvl, err := wireLevel("risk.level", w.Risk.Level)
	if err != nil {
		return err
	}
	if lvl == LevelNone {
		return fieldErr("risk.level", "is required")
	}
	r := &Risk{Level: lvl, Manual: w.Risk.Manual}
	if r.Previous, err = wireLevel("risk.previous", w.Risk.Previous); err != nil {
		return err
	}
	ev.Risk = r
	return nil
}

// wireLevel reads an optional level name; absent, null or "" is LevelNone.
func wireLevel(field string, raw json.RawMessage) (Level, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return LevelNone, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return LevelNone, fieldErr(field, "must be a string such as \"alto\"")
	}
	if s == "" {
		return LevelNone, nil
	}
	l, err := ParseLevel(s)
	if err != nil {
		return LevelNone, fieldErr(field, "unknown risk level (want bajo, medio, alto or extremo)")
	}
	return l, nil
}

func (w *wire) incident(ev *Event) error {
	if w.Incident == nil {
		ev.Incident = &Incident{}
		return nil
	}
	in := &Incident{Kind: w.Incident.Kind}
	if err := checkText("incident.kind", in.Kind, 64); err != nil {
		return err
	}
	if w.Incident.ReassessmentDueBy != "" {
		t, err := parseTime("incident.reassessment_due_by", w.Incident.ReassessmentDueBy, true)
		if err != nil {
			return err
		}
		in.ReassessmentDueBy = &t
	}
	ev.Incident = in
	return nil
}

func checkCheckin(c *Checkin) error {
	if c == nil {
		return fieldErr("checkin", "is required on a checkin.recorded event")
	}
	switch c.Kind {
	case CheckinPhone, CheckinVisit, CheckinPatrol:
	case "":
		return fieldErr("checkin.kind", "is required")
	default:
		return fieldErr("checkin.kind", "unknown kind (want phone, visit or patrol)")
	}
	return checkID("checkin.unit", c.Unit)
}

func (w *wire) order(ev *Event) error {
	po := &ProtectionOrder{}
	if w.ProtectionOrder != nil {
		po.Court = w.ProtectionOrder.Court
		if err := checkText("protection_order.court", po.Court, 128); err != nil {
			return err
		}
		if len(w.ProtectionOrder.Measures) > maxMeasures {
			return fieldErr("protection_order.measures", "has more than %d items", maxMeasures)
		}
		for i, m := range w.ProtectionOrder.Measures {
			if err := checkText(fmt.Sprintf("protection_order.measures[%d]", i), m, 64); err != nil {
				return err
			}
		}
		if len(w.ProtectionOrder.Measures) > 0 { // [] reads as absent, as Encode writes it
			po.Measures = w.ProtectionOrder.Measures
		}
		if w.ProtectionOrder.ValidUntil != "" {
			t, err := parseTime("protection_order.valid_until", w.ProtectionOrder.ValidUntil, true)
			if err != nil {
				return err
			}
			po.ValidUntil = &t
		}
	}
	ev.ProtectionOrder = po
	return nil
}

func (w *wire) release(ev *Event) error {
	r := w.Release
	if r == nil {
		return fieldErr("release", "is required on a penitentiary.release event")
	}
	from, err := parseTime("release.effective_at", r.EffectiveAt, true)
	if err != nil {
		return err
	}
	out := &Release{EffectiveAt: from, DestinationMunicipality: r.DestinationMunicipality}
	if r.Until != "" {
		until, err := parseTime("release.until", r.Until, true)
		if err != nil {
			return err
		}
		out.Until = &until
	}
	if !isNDigits(r.DestinationMunicipality, 5) {
		return fieldErr("release.destination_municipality", "must be a 5-digit INE code")
	}
	ev.Release = out
	return nil
}

func checkAlarm(a *Alarm) error {
	if a == nil {
		return fieldErr("alarm", "is required on a device.alarm event")
	}
	switch a.Kind {
	case AlarmProximity, AlarmTamper, AlarmBattery, AlarmPanic:
	case "":
		return fieldErr("alarm.kind", "is required")
	default:
		return fieldErr("alarm.kind", "unknown kind (want proximity, tamper, battery or panic)")
	}
	if a.DistanceM != nil && *a.DistanceM < 0 {
		return fieldErr("alarm.distance_m", "must not be negative")
	}
	return nil
}

func (w *wire) relocation(ev *Event) error {
	r := w.Relocation
	if r == nil {
		return fieldErr("relocation", "is required on a case.relocated event")
	}
	if r.To == nil {
		return fieldErr("relocation.to", "is required")
	}
	if err := checkJurisdiction("relocation.to", *r.To); err != nil {
		return err
	}
	if err := checkID("relocation.responsible_unit", r.ResponsibleUnit); err != nil {
		return err
	}
	ev.Relocation = &Relocation{To: *r.To, ResponsibleUnit: r.ResponsibleUnit}
	return nil
}

func (w *wire) timer(ev *Event) error {
	if w.Timer == nil {
		return fieldErr("timer", "is required on a %s event", ev.Type)
	}
	due, err := parseTime("timer.due_at", w.Timer.DueAt, true)
	if err != nil {
		return err
	}
	if err := checkText("timer.escalation_id", w.Timer.EscalationID, 128); err != nil {
		return err
	}
	if ev.Type == EscalationTimeout && w.Timer.EscalationID == "" {
		return fieldErr("timer.escalation_id", "is required on an escalation.timeout event")
	}
	ev.Timer = &Timer{DueAt: due, EscalationID: w.Timer.EscalationID, Step: w.Timer.Step, Round: w.Timer.Round}
	return nil
}

func checkAck(a *Ack) error {
	if a == nil {
		return fieldErr("ack", "is required on an escalation.acknowledged event")
	}
	if err := checkID("ack.escalation_id", a.EscalationID); err != nil {
		return err
	}
	if err := checkText("ack.agency", a.Agency, 128); err != nil {
		return err
	}
	if a.Via == "" {
		return fieldErr("ack.via", "is required")
	}
	if err := checkText("ack.via", a.Via, 64); err != nil {
		return err
	}
	return nil
}

// maxMeasures bounds protection_order.measures; with the text limits it
// keeps every accepted event well under MaxSize once re-encoded.
const maxMeasures = 32

// checkText bounds a free-text field: short codes are what the contract
// wants there, and length is where stray personal data would creep in.
func checkText(field, v string, max int) error {
	if len(v) > max {
		return fieldErr(field, "is longer than %d bytes", max)
	}
	return nil
}

func checkID(field, v string) error {
	if v == "" {
		return fieldErr(field, "is required")
	}
	if !isID(v) {
		return fieldErr(field, "must be 1-128 characters of letters, digits, '.', '_', ':' or '-'")
	}
	return nil
}

func checkJurisdiction(field string, j Jurisdiction) error {
	if !isNDigits(j.Municipality, 5) {
		return fieldErr(field+".municipality", "must be a 5-digit INE code")
	}
	if !isNDigits(j.Province, 2) {
		return fieldErr(field+".province", "must be a 2-digit province code")
	}
	if j.Municipality[:2] != j.Province {
		return fieldErr(field+".province", "does not match the municipality (INE codes start with the province)")
	}
	if !isRegion(j.Region) {
		return fieldErr(field+".region", "must be a 2-letter region code such as IB or CM")
	}
	return nil
}

func parseTime(field, v string, required bool) (time.Time, error) {
	if v == "" {
		if required {
			return time.Time{}, fieldErr(field, "is required")
		}
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fieldErr(field, "must be an RFC 3339 time such as 2026-03-01T10:00:00Z")
	}
	// A year outside this range is a mistake, and past 9999 (or before 0
	// once in UTC) Encode could not write it back.
	if t = t.UTC(); t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, fieldErr(field, "must be a time between 1970 and 9999")
	}
	return t, nil
}

// Encode writes an event as the contract's JSON (used by publish and by
// the dispatcher's own internal events).
func Encode(ev Event) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	return b, nil
}
