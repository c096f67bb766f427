package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// op edits a decoded example before it is encoded again.
type op func(m map[string]any)

// set puts v at a dotted path, creating objects on the way.
func set(path string, v any) op {
	return func(m map[string]any) {
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[keys[len(keys)-1]] = v
	}
}

// del removes the key at a dotted path.
func del(path string) op {
	return func(m map[string]any) {
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			m = m[k].(map[string]any)
		}
		delete(m, keys[len(keys)-1])
	}
}

// edited returns the example of type typ with ops applied.
func edited(t testing.TB, typ Type, ops ...op) []byte {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(example(t, typ)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	for _, o := range ops {
		o(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeWith(internal bool) func([]byte) (Event, error) {
	if internal {
		return DecodeInternal
	}
	return Decode
}

func TestDecodeValidExamples(t *testing.T) {
	for typ := range upstreamExamples {
		t.Run(string(typ), func(t *testing.T) {
			for _, internal := range []bool{false, true} {
				ev, err := decodeWith(internal)(example(t, typ))
				if err != nil {
					t.Fatalf("internal=%v: %v", internal, err)
				}
				if ev.Type != typ {
					t.Fatalf("type %q, want %q", ev.Type, typ)
				}
				checkEnvelope(t, ev)
			}
		})
	}
	for typ := range internalExamples {
		t.Run(string(typ), func(t *testing.T) {
			ev, err := DecodeInternal(example(t, typ))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type != typ {
				t.Fatalf("type %q, want %q", ev.Type, typ)
			}
			checkEnvelope(t, ev)
		})
	}
}

func checkEnvelope(t *testing.T, ev Event) {
	t.Helper()
	if ev.ID == "" || ev.CaseID == "" || ev.Source == "" || ev.ResponsibleUnit == "" {
		t.Errorf("envelope not filled: %+v", ev)
	}
	if ev.OccurredAt.IsZero() || ev.OccurredAt.Location() != time.UTC {
		t.Errorf("occurred_at %v, want a UTC time", ev.OccurredAt)
	}
	if ev.Jurisdiction.Municipality[:2] != ev.Jurisdiction.Province {
		t.Errorf("jurisdiction %+v", ev.Jurisdiction)
	}
}

func TestExamplesCoverEveryType(t *testing.T) {
	for _, typ := range UpstreamTypes {
		if _, ok := upstreamExamples[typ]; !ok {
			t.Errorf("no upstream example for %s", typ)
		}
	}
	for _, typ := range InternalTypes {
		if _, ok := internalExamples[typ]; !ok {
			t.Errorf("no internal example for %s", typ)
		}
	}
	if len(upstreamExamples) != len(UpstreamTypes) || len(internalExamples) != len(InternalTypes) {
		t.Errorf("examples of unknown types")
	}
}

func TestDecodeFields(t *testing.T) {
	ev, err := Decode(example(t, PenitentiaryRelease))
	if err != nil {
		t.Fatal(err)
	}
	want := Event{
		ID: "evt-pmi-0102", Type: PenitentiaryRelease, CaseID: "C-PMI-0001",
		OccurredAt: time.Date(2026, 3, 6, 8, 0, 0, 0, time.UTC), Source: "penitentiary",
		Jurisdiction:    Jurisdiction{Municipality: "07040", Province: "07", Region: "IB"},
		ResponsibleUnit: "pn-illes-balears", Version: 4,
		Release: &Release{
			EffectiveAt:             time.Date(2026, 3, 7, 8, 0, 0, 0, time.UTC), // 09:00+01:00
			Until:                   ptr(time.Date(2026, 3, 10, 19, 0, 0, 0, time.UTC)),
			DestinationMunicipality: "07040",
		},
	}
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("got  %+v\nwant %+v", ev, want)
	}

	ev, err = Decode(example(t, DeviceAlarm))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Version != 0 {
		t.Errorf("version %d, want 0 (absent)", ev.Version)
	}
	if ev.Alarm == nil || ev.Alarm.Kind != AlarmProximity || ev.Alarm.DistanceM == nil || *ev.Alarm.DistanceM != 350 {
		t.Errorf("alarm %+v", ev.Alarm)
	}
	if want := time.Date(2026, 3, 6, 20, 10, 30, 250e6, time.UTC); !ev.OccurredAt.Equal(want) {
		t.Errorf("occurred_at %v, want %v", ev.OccurredAt, want)
	}

	ev, err = Decode(example(t, RiskAssessed))
	if err != nil {
		t.Fatal(err)
	}
	if want := (&Risk{Level: Alto, Previous: Medio, Manual: true}); !reflect.DeepEqual(ev.Risk, want) {
		t.Errorf("risk %+v, want %+v", ev.Risk, want)
	}
}

func ptr[T any](v T) *T { return &v }

// TestDecodeOptionalBodies: bodies that are optional decode when absent,
// and the type's own body is filled so consumers need not nil-check.
func TestDecodeOptionalBodies(t *testing.T) {
	cases := []struct {
		typ  Type
		body string
	}{
		{CaseOpened, "risk"},
		{IncidentReported, "incident"},
		{ProtectionOrderIssued, "protection_order"},
		{ProtectionOrderExpired, "protection_order"},
		{BreachReported, "breach"},
		{CaseClosed, "closure"},
		{CaseReactivated, "closure"},
	}
	for _, c := range cases {
		ev, err := Decode(edited(t, c.typ, del(c.body), del("version")))
		if err != nil {
			t.Errorf("%s without %s: %v", c.typ, c.body, err)
			continue
		}
		if ev.Version != 0 {
			t.Errorf("%s: version %d", c.typ, ev.Version)
		}
		if c.typ == IncidentReported && ev.Incident == nil {
			t.Errorf("incident.reported without incident: Incident is nil")
		}
		if (c.typ == ProtectionOrderIssued || c.typ == ProtectionOrderExpired) && ev.ProtectionOrder == nil {
			t.Errorf("%s without protection_order: ProtectionOrder is nil", c.typ)
		}
	}
	// Optional members may also be null or empty.
	for _, msg := range [][]byte{
		edited(t, DeviceAlarm, del("alarm.distance_m")),
		edited(t, DeviceAlarm, set("alarm.distance_m", nil)),
		edited(t, DeviceAlarm, set("alarm.distance_m", 0)),
		edited(t, RiskAssessed, del("risk.previous"), del("risk.manual")),
		edited(t, RiskAssessed, set("risk.previous", nil)),
		edited(t, RiskAssessed, set("risk.previous", "")),
		edited(t, PenitentiaryRelease, del("release.until")),
		edited(t, IncidentReported, set("incident", map[string]any{})),
		edited(t, ProtectionOrderIssued, set("protection_order.measures", []string{})),
		edited(t, RiskAssessed, set("version", nil)),
		edited(t, CaseOpened, set("occurred_at", "2026-03-02T09:15:00.123456789+01:00")),
	} {
		if _, err := Decode(msg); err != nil {
			t.Errorf("%s: %v", msg, err)
		}
	}
}

// errRow is one malformed message and the field its error must name.
type errRow struct {
	name     string
	base     Type                // the example to edit
	ops      []op                // edits to the example
	mangle   func([]byte) []byte // applied to the encoded message, if set
	raw      string              // used as is, instead of base, when set
	internal bool                // decode with DecodeInternal
	field    string
	reason   string // a prefix the Reason must have, when set
}

func (r errRow) message(t testing.TB) []byte {
	if r.raw != "" {
		return []byte(r.raw)
	}
	b := edited(t, r.base, r.ops...)
	if r.mangle != nil {
		b = r.mangle(b)
	}
	return b
}

var palma = map[string]any{"municipality": "07040", "province": "07", "region": "IB"}

func errRows() []errRow {
	long := strings.Repeat("x", 129)
	return []errRow{
		// Envelope: each required field missing.
		{name: "missing id", base: CaseOpened, ops: []op{del("id")}, field: "id"},
		{name: "missing type", base: CaseOpened, ops: []op{del("type")}, field: "type"},
		{name: "missing case_id", base: CaseOpened, ops: []op{del("case_id")}, field: "case_id"},
		{name: "missing occurred_at", base: CaseOpened, ops: []op{del("occurred_at")}, field: "occurred_at"},
		{name: "missing source", base: CaseOpened, ops: []op{del("source")}, field: "source"},
		{name: "missing jurisdiction", base: CaseOpened, ops: []op{del("jurisdiction")}, field: "jurisdiction"},
		{name: "null jurisdiction", base: CaseOpened, ops: []op{set("jurisdiction", nil)}, field: "jurisdiction"},
		{name: "missing municipality", base: CaseOpened, ops: []op{del("jurisdiction.municipality")}, field: "jurisdiction.municipality"},
		{name: "missing province", base: CaseOpened, ops: []op{del("jurisdiction.province")}, field: "jurisdiction.province"},
		{name: "missing region", base: CaseOpened, ops: []op{del("jurisdiction.region")}, field: "jurisdiction.region"},
		{name: "missing responsible_unit", base: CaseOpened, ops: []op{del("responsible_unit")}, field: "responsible_unit"},
		{name: "empty id", base: CaseOpened, ops: []op{set("id", "")}, field: "id"},
		{name: "null id", base: CaseOpened, ops: []op{set("id", nil)}, field: "id"},

		// Identifiers: opaque, log-safe, bounded.
		{name: "id with space", base: CaseOpened, ops: []op{set("id", "evt 1")}, field: "id"},
		{name: "id with @", base: CaseOpened, ops: []op{set("id", "evt@upstream")}, field: "id"},
		{name: "id starting with -", base: CaseOpened, ops: []op{set("id", "-evt")}, field: "id"},
		{name: "id too long", base: CaseOpened, ops: []op{set("id", long)}, field: "id"},
		{name: "case_id looks like a name", base: CaseOpened, ops: []op{set("case_id", "María López")}, field: "case_id"},
		{name: "case_id with slash", base: CaseOpened, ops: []op{set("case_id", "C/HER/1")}, field: "case_id"},
		{name: "responsible_unit with space", base: CaseOpened, ops: []op{set("responsible_unit", "gc ciudad real")}, field: "responsible_unit"},
		{name: "source too long", base: CaseOpened, ops: []op{set("source", strings.Repeat("s", 65))}, field: "source"},

		// Type.
		{name: "unknown type", base: CaseOpened, ops: []op{set("type", "case.deleted")}, field: "type"},
		{name: "type in other case", base: CaseOpened, ops: []op{set("type", "Case.Opened")}, field: "type"},
		{name: "internal type via Decode", base: CheckinMissed, field: "type"},
		{name: "internal ack via Decode", base: EscalationAcknowledged, field: "type"},

		// Times.
		{name: "occurred_at not RFC 3339", base: CaseOpened, ops: []op{set("occurred_at", "2026-03-02 09:15:00")}, field: "occurred_at"},
		{name: "occurred_at without zone", base: CaseOpened, ops: []op{set("occurred_at", "2026-03-02T09:15:00")}, field: "occurred_at"},
		{name: "occurred_at month 13", base: CaseOpened, ops: []op{set("occurred_at", "2026-13-02T09:15:00Z")}, field: "occurred_at"},
		{name: "occurred_at date only", base: CaseOpened, ops: []op{set("occurred_at", "2026-03-02")}, field: "occurred_at"},
		{name: "occurred_at as number", base: CaseOpened, ops: []op{set("occurred_at", 1772442900)}, field: "occurred_at"},
		{name: "occurred_at before 1970", base: CaseOpened, ops: []op{set("occurred_at", "1969-12-31T23:59:59Z")}, field: "occurred_at"},
		{name: "occurred_at year 0 in UTC", base: CaseOpened, ops: []op{set("occurred_at", "0000-01-01T00:30:00+01:00")}, field: "occurred_at"},
		{name: "occurred_at past 9999 in UTC", base: CaseOpened, ops: []op{set("occurred_at", "9999-12-31T23:30:00-01:00")}, field: "occurred_at"},

		// Jurisdiction codes.
		{name: "municipality 4 digits", base: CaseOpened, ops: []op{set("jurisdiction.municipality", "7040")}, field: "jurisdiction.municipality"},
		{name: "municipality with letter", base: CaseOpened, ops: []op{set("jurisdiction.municipality", "13O47")}, field: "jurisdiction.municipality"},
		{name: "municipality as number", base: CaseOpened, ops: []op{set("jurisdiction.municipality", 13047)}, field: "jurisdiction.municipality"},
		{name: "province 1 digit", base: PenitentiaryRelease, ops: []op{set("jurisdiction.province", "7")}, field: "jurisdiction.province"},
		{name: "province not matching municipality", base: CaseOpened, ops: []op{set("jurisdiction.province", "07")}, field: "jurisdiction.province"},
		{name: "region lower case", base: CaseOpened, ops: []op{set("jurisdiction.region", "cm")}, field: "jurisdiction.region"},
		{name: "region 3 letters", base: CaseOpened, ops: []op{set("jurisdiction.region", "CLM")}, field: "jurisdiction.region"},

		// Risk.
		{name: "bad level", base: RiskAssessed, ops: []op{set("risk.level", "high")}, field: "risk.level"},
		{name: "level with space", base: RiskAssessed, ops: []op{set("risk.level", "no apreciado")}, field: "risk.level"},
		{name: "level upper case", base: RiskAssessed, ops: []op{set("risk.level", "ALTO")}, field: "risk.level"},
		{name: "level as number", base: RiskAssessed, ops: []op{set("risk.level", 3)}, field: "risk.level"},
		{name: "level as object", base: RiskAssessed, ops: []op{set("risk.level", map[string]any{"name": "alto"})}, field: "risk.level"},
		{name: "level missing", base: RiskAssessed, ops: []op{del("risk.level")}, field: "risk.level"},
		{name: "level empty", base: RiskAssessed, ops: []op{set("risk.level", "")}, field: "risk.level"},
		{name: "level null", base: RiskAssessed, ops: []op{set("risk.level", nil)}, field: "risk.level"},
		{name: "bad previous level", base: RiskAssessed, ops: []op{set("risk.previous", "muy_alto")}, field: "risk.previous"},
		{name: "bad level on case.opened", base: CaseOpened, ops: []op{set("risk.level", "maximo")}, field: "risk.level"},
		{name: "missing risk on risk.assessed", base: RiskAssessed, ops: []op{del("risk")}, field: "risk"},
		{name: "null risk on risk.assessed", base: RiskAssessed, ops: []op{set("risk", nil)}, field: "risk"},
		{name: "manual as string", base: RiskAssessed, ops: []op{set("risk.manual", "yes")}, field: "risk.manual"},

		// Incident.
		{name: "bad reassessment_due_by", base: IncidentReported, ops: []op{set("incident.reassessment_due_by", "tomorrow")}, field: "incident.reassessment_due_by"},
		{name: "incident kind too long", base: IncidentReported, ops: []op{set("incident.kind", strings.Repeat("k", 65))}, field: "incident.kind"},

		// Check-in.
		{name: "missing checkin", base: CheckinRecorded, ops: []op{del("checkin")}, field: "checkin"},
		{name: "bad checkin kind", base: CheckinRecorded, ops: []op{set("checkin.kind", "email")}, field: "checkin.kind"},
		{name: "missing checkin kind", base: CheckinRecorded, ops: []op{del("checkin.kind")}, field: "checkin.kind"},
		{name: "missing checkin unit", base: CheckinRecorded, ops: []op{del("checkin.unit")}, field: "checkin.unit"},
		{name: "bad checkin unit", base: CheckinRecorded, ops: []op{set("checkin.unit", "agent 4521")}, field: "checkin.unit"},

		// Protection order.
		{name: "bad valid_until", base: ProtectionOrderIssued, ops: []op{set("protection_order.valid_until", "2026-09-05")}, field: "protection_order.valid_until"},
		{name: "measures as string", base: ProtectionOrderIssued, ops: []op{set("protection_order.measures", "alejamiento")}, field: "protection_order.measures"},
		{name: "measure too long", base: ProtectionOrderIssued, ops: []op{set("protection_order.measures", []string{"ok", strings.Repeat("m", 65)})}, field: "protection_order.measures[1]"},
		{name: "too many measures", base: ProtectionOrderIssued, ops: []op{set("protection_order.measures", slices.Repeat([]string{"m"}, 33))}, field: "protection_order.measures"},
		{name: "court too long", base: ProtectionOrderIssued, ops: []op{set("protection_order.court", strings.Repeat("c", 129))}, field: "protection_order.court"},

		// Breach and closure.
		{name: "breach channel too long", base: BreachReported, ops: []op{set("breach.channel", strings.Repeat("c", 65))}, field: "breach.channel"},
		{name: "closure reason too long", base: CaseClosed, ops: []op{set("closure.reason", strings.Repeat("r", 129))}, field: "closure.reason"},

		// Release.
		{name: "missing release", base: PenitentiaryRelease, ops: []op{del("release")}, field: "release"},
		{name: "missing destination", base: PenitentiaryRelease, ops: []op{del("release.destination_municipality")}, field: "release.destination_municipality"},
		{name: "bad destination", base: PenitentiaryRelease, ops: []op{set("release.destination_municipality", "PALMA")}, field: "release.destination_municipality"},
		{name: "missing effective_at", base: PenitentiaryRelease, ops: []op{del("release.effective_at")}, field: "release.effective_at"},
		{name: "bad effective_at", base: PenitentiaryRelease, ops: []op{set("release.effective_at", "07/03/2026 09:00")}, field: "release.effective_at"},
		{name: "bad until", base: PenitentiaryRelease, ops: []op{set("release.until", "2026-03-10T25:00:00Z")}, field: "release.until"},

		// Alarm.
		{name: "missing alarm", base: DeviceAlarm, ops: []op{del("alarm")}, field: "alarm"},
		{name: "bad alarm kind", base: DeviceAlarm, ops: []op{set("alarm.kind", "fall")}, field: "alarm.kind"},
		{name: "missing alarm kind", base: DeviceAlarm, ops: []op{del("alarm.kind")}, field: "alarm.kind"},
		{name: "negative distance", base: DeviceAlarm, ops: []op{set("alarm.distance_m", -5)}, field: "alarm.distance_m"},
		{name: "fractional distance", base: DeviceAlarm, ops: []op{set("alarm.distance_m", 12.5)}, field: "alarm.distance_m"},
		{name: "distance as string", base: DeviceAlarm, ops: []op{set("alarm.distance_m", "350")}, field: "alarm.distance_m"},

		// Relocation.
		{name: "missing relocation", base: CaseRelocated, ops: []op{del("relocation")}, field: "relocation"},
		{name: "missing relocation.to", base: CaseRelocated, ops: []op{del("relocation.to")}, field: "relocation.to"},
		{name: "bad relocation.to municipality", base: CaseRelocated, ops: []op{set("relocation.to.municipality", "130470")}, field: "relocation.to.municipality"},
		{name: "relocation.to province mismatch", base: CaseRelocated, ops: []op{set("relocation.to.province", "07")}, field: "relocation.to.province"},
		{name: "bad relocation.to region", base: CaseRelocated, ops: []op{set("relocation.to.region", "Castilla-La Mancha")}, field: "relocation.to.region"},
		{name: "relocation.to as string", base: CaseRelocated, ops: []op{set("relocation.to", "13047")}, field: "relocation.to"},
		{name: "missing relocation unit", base: CaseRelocated, ops: []op{del("relocation.responsible_unit")}, field: "relocation.responsible_unit"},

		// A field of another type.
		{name: "alarm on risk.assessed", base: RiskAssessed, ops: []op{set("alarm", map[string]any{"kind": "panic"})}, field: "alarm"},
		{name: "risk on device.alarm", base: DeviceAlarm, ops: []op{set("risk", map[string]any{"level": "alto"})}, field: "risk"},
		{name: "relocation on case.closed", base: CaseClosed, ops: []op{set("relocation", map[string]any{"to": palma, "responsible_unit": "pn-illes-balears"})}, field: "relocation"},
		{name: "timer on upstream event", base: CaseClosed, ops: []op{set("timer", map[string]any{"due_at": "2026-03-08T09:00:00Z"})}, field: "timer"},
		{name: "ack on upstream event", base: BreachReported, ops: []op{set("ack", map[string]any{"escalation_id": "esc-1", "via": "sms"})}, field: "ack"},

		// Unknown fields: a stray personal-data field is refused, not carried.
		{name: "victim_name", base: CaseOpened, ops: []op{set("victim_name", "María López")}, field: "$", reason: "unknown key #10 at top level"},
		{name: "unknown nested field", base: CaseOpened, ops: []op{set("jurisdiction.address", "Calle Mayor 1")}, field: "jurisdiction", reason: "unknown key #1 in this object"},
		{name: "unknown field in body", base: RiskAssessed, ops: []op{set("risk.phone", "600000000")}, field: "risk", reason: "unknown key #3 in this object"},
		{name: "unknown field in relocation.to", base: CaseRelocated, ops: []op{set("relocation.to.street", "x")}, field: "relocation.to", reason: "unknown key #4 in this object"},
		{name: "key in other case", base: CaseOpened, ops: []op{del("case_id"), set("Case_ID", "C-HER-0001")}, field: "$", reason: "unknown key #1 at top level"},
		{name: "key folding to a known one", base: CaseOpened, ops: []op{del("source"), set("ſource", "viogen")}, field: "$", reason: "unknown key #9 at top level"},
		{name: "empty key", base: CaseOpened, ops: []op{set("", 1)}, field: "$", reason: "unknown key #1 at top level"},
		{name: "dotted key", base: CaseOpened, ops: []op{set("jurisdiction", map[string]any{"a.b": 1})}, field: "jurisdiction", reason: "unknown key #1 in this object"},
		{name: "duplicate key", base: CaseOpened, mangle: func(b []byte) []byte {
			return bytes.Replace(b, []byte(`{`), []byte(`{"case_id":"C-PMI-0001",`), 1)
		}, field: "case_id"},
		{name: "duplicate nested key", base: RiskAssessed, mangle: func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"risk":{`), []byte(`"risk":{"level":"bajo",`), 1)
		}, field: "risk.level"},

		// Wrong JSON types.
		{name: "id as number", base: CaseOpened, ops: []op{set("id", 12)}, field: "id"},
		{name: "jurisdiction as string", base: CaseOpened, ops: []op{set("jurisdiction", "13047")}, field: "jurisdiction"},
		{name: "checkin as array", base: CheckinRecorded, ops: []op{set("checkin", []string{"visit"})}, field: "checkin"},
		{name: "version as string", base: CaseOpened, ops: []op{set("version", "1")}, field: "version"},
		{name: "version fractional", base: CaseOpened, ops: []op{set("version", 1.5)}, field: "version"},
		{name: "version overflows int64", base: CaseOpened, ops: []op{set("version", json.Number("9223372036854775808"))}, field: "version"},

		// Version.
		{name: "version zero", base: CaseOpened, ops: []op{set("version", 0)}, field: "version"},
		{name: "version negative", base: CaseOpened, ops: []op{set("version", -3)}, field: "version"},

		// Not one JSON object.
		{name: "empty message", raw: " ", field: "$"},
		{name: "not JSON", raw: "case.opened C-HER-0001", field: "$"},
		{name: "truncated", base: CaseOpened, mangle: func(b []byte) []byte { return b[:len(b)/2] }, field: "$"},
		{name: "missing comma", raw: `{"id":"e1" "type":"case.opened"}`, field: "$"},
		{name: "array", raw: `[{"id":"e1"}]`, field: "$"},
		{name: "string", raw: `"case.opened"`, field: "$"},
		{name: "null", raw: `null`, field: "$"},
		{name: "trailing object", base: CaseOpened, mangle: func(b []byte) []byte { return append(b, ` {}`...) }, field: "$"},
		{name: "trailing brace", base: CaseOpened, mangle: func(b []byte) []byte { return append(b, '}') }, field: "$"},
		{name: "trailing bracket", base: CaseOpened, mangle: func(b []byte) []byte { return append(b, ']') }, field: "$"},
		{name: "trailing text", base: CaseOpened, mangle: func(b []byte) []byte { return append(b, " x"...) }, field: "$"},
		{name: "trailing NUL", base: CaseOpened, mangle: func(b []byte) []byte { return append(b, 0) }, field: "$"},
		{name: "over 64 KiB", base: CaseOpened, mangle: func(b []byte) []byte {
			return append(b, bytes.Repeat([]byte(" "), MaxSize+1-len(b))...)
		}, field: "$"},

		// Internal bodies, through DecodeInternal.
		{name: "missing timer", base: CheckinMissed, ops: []op{del("timer")}, internal: true, field: "timer"},
		{name: "missing timer.due_at", base: ReassessmentOverdue, ops: []op{del("timer.due_at")}, internal: true, field: "timer.due_at"},
		{name: "timeout without escalation_id", base: EscalationTimeout, ops: []op{del("timer.escalation_id")}, internal: true, field: "timer.escalation_id"},
		{name: "missing ack", base: EscalationAcknowledged, ops: []op{del("ack")}, internal: true, field: "ack"},
		{name: "bad ack.escalation_id", base: EscalationAcknowledged, ops: []op{set("ack.escalation_id", "esc 1")}, internal: true, field: "ack.escalation_id"},
		{name: "missing ack.via", base: EscalationAcknowledged, ops: []op{del("ack.via")}, internal: true, field: "ack.via"},
		{name: "risk on internal event", base: CheckinMissed, ops: []op{set("risk", map[string]any{"level": "alto"})}, internal: true, field: "risk"},
		{name: "unknown internal type", base: CheckinMissed, ops: []op{set("type", "checkin.late")}, internal: true, field: "type"},
		{name: "internal envelope still checked", base: EscalationTimeout, ops: []op{set("jurisdiction.region", "")}, internal: true, field: "jurisdiction.region"},
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, r := range errRows() {
		t.Run(r.name, func(t *testing.T) {
			msg := r.message(t)
			decoders := []bool{r.internal}
			if !r.internal && r.base != CheckinMissed && r.base != EscalationAcknowledged {
				decoders = append(decoders, true) // upstream errors are errors internally too
			}
			for _, internal := range decoders {
				ev, err := decodeWith(internal)(msg)
				if err == nil {
					t.Fatalf("internal=%v: no error, decoded %+v\nmessage: %.300s", internal, ev, msg)
				}
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error %T %v is not an *Error", err, err)
				}
				if e.Field != r.field {
					t.Errorf("internal=%v: Field %q, want %q (error: %v)", internal, e.Field, r.field, err)
				}
				if e.Reason == "" {
					t.Errorf("empty Reason")
				}
				if !strings.HasPrefix(e.Reason, r.reason) {
					t.Errorf("internal=%v: Reason %q, want prefix %q", internal, e.Reason, r.reason)
				}
				if err.Error() != e.Field+": "+e.Reason {
					t.Errorf("Error() = %q", err.Error())
				}
				if !reflect.DeepEqual(ev, Event{}) {
					t.Errorf("an error returned a non-zero event: %+v", ev)
				}
			}
		})
	}
}

// TestErrorReasonsDoNotEchoValues: reasons end up in logs and dead-letter
// headers, so they describe what is wanted and never repeat the value.
func TestErrorReasonsDoNotEchoValues(t *testing.T) {
	const secret = "Maria Lopez 600000000"
	for _, o := range []op{
		set("id", secret), set("case_id", secret), set("type", secret),
		set("occurred_at", secret), set("jurisdiction.municipality", secret),
		set("jurisdiction.province", secret), set("jurisdiction.region", secret),
		set("risk.level", secret), set("risk.previous", secret), set("responsible_unit", secret),
	} {
		_, err := Decode(edited(t, CaseOpened, o))
		if err == nil || strings.Contains(err.Error(), "Maria") || strings.Contains(err.Error(), "600000000") {
			t.Errorf("error %v", err)
		}
	}
	for _, msg := range [][]byte{
		edited(t, CheckinRecorded, set("checkin.kind", secret)),
		edited(t, CheckinRecorded, set("checkin.unit", secret)),
		edited(t, DeviceAlarm, set("alarm.kind", secret)),
		edited(t, PenitentiaryRelease, set("release.destination_municipality", secret)),
		edited(t, PenitentiaryRelease, set("release.effective_at", secret)),
	} {
		_, err := Decode(msg)
		if err == nil || strings.Contains(err.Error(), "Maria") {
			t.Errorf("error %v", err)
		}
	}
}

func TestDecodeSizeLimit(t *testing.T) {
	b := example(t, CaseOpened)
	b = append(b, bytes.Repeat([]byte(" "), MaxSize-len(b))...)
	if len(b) != MaxSize {
		t.Fatalf("len %d", len(b))
	}
	if _, err := Decode(b); err != nil {
		t.Errorf("a message of exactly MaxSize bytes: %v", err)
	}
	if MaxSize != 64*1024 {
		t.Errorf("MaxSize = %d, want 64 KiB", MaxSize)
	}
}

func TestNoApreciadoReadsAsBajo(t *testing.T) {
	ev, err := Decode(edited(t, RiskAssessed, set("risk.level", "no_apreciado"), set("risk.previous", "no_apreciado")))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Risk.Level != Bajo || ev.Risk.Previous != Bajo {
		t.Errorf("risk %+v, want bajo/bajo", ev.Risk)
	}
	ev, err = Decode(edited(t, CaseOpened, set("risk.level", "no_apreciado")))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Risk.Level != Bajo {
		t.Errorf("case.opened level %v, want bajo", ev.Risk.Level)
	}
	b, err := Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"risk":{"level":"bajo"}`)) {
		t.Errorf("encoded as %s, want level bajo", b)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	all := map[Type]bool{}
	for typ := range upstreamExamples {
		all[typ] = false
	}
	for typ := range internalExamples {
		all[typ] = true
	}
	for typ, internal := range all {
		t.Run(string(typ), func(t *testing.T) {
			dec := decodeWith(internal)
			ev, err := dec(example(t, typ))
			if err != nil {
				t.Fatal(err)
			}
			b, err := Encode(ev)
			if err != nil {
				t.Fatal(err)
			}
			back, err := dec(b)
			if err != nil {
				t.Fatalf("decode of encoded %s: %v", b, err)
			}
			if !reflect.DeepEqual(back, ev) {
				t.Errorf("round trip changed the event\n got %+v\nwant %+v", back, ev)
			}
			again, err := Encode(back)
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("Encode is not stable: %s vs %s (%v)", again, b, err)
			}
		})
	}
}

func TestEncodeWritesContractJSON(t *testing.T) {
	d := 120
	ev := Event{
		ID: "evt-pmi-0200", Type: DeviceAlarm, CaseID: "C-PMI-0001",
		OccurredAt: time.Date(2026, 3, 7, 21, 3, 0, 0, time.UTC), Source: "cometa",
		Jurisdiction:    Jurisdiction{Municipality: "07040", Province: "07", Region: "IB"},
		ResponsibleUnit: "pn-illes-balears",
		Alarm:           &Alarm{Kind: AlarmTamper, DistanceM: &d},
	}
	b, err := Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"evt-pmi-0200","type":"device.alarm","case_id":"C-PMI-0001","occurred_at":"2026-03-07T21:03:00Z","source":"cometa","jurisdiction":{"municipality":"07040","province":"07","region":"IB"},"responsible_unit":"pn-illes-balears","alarm":{"kind":"tamper","distance_m":120}}`
	if string(b) != want {
		t.Errorf("Encode:\n got %s\nwant %s", b, want)
	}
	back, err := Decode(b)
	if err != nil || !reflect.DeepEqual(back, ev) {
		t.Errorf("Decode(Encode(ev)) = %+v, %v", back, err)
	}
}

func TestTypeSets(t *testing.T) {
	for _, typ := range UpstreamTypes {
		if typ.IsInternal() || !typ.Known() {
			t.Errorf("%s: IsInternal=%v Known=%v", typ, typ.IsInternal(), typ.Known())
		}
	}
	for _, typ := range InternalTypes {
		if !typ.IsInternal() || !typ.Known() {
			t.Errorf("%s: IsInternal=%v Known=%v", typ, typ.IsInternal(), typ.Known())
		}
	}
	if Type("case.deleted").Known() || Type("").Known() {
		t.Error("unknown types reported as known")
	}
}
