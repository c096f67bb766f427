package event

import (
	"bufio"
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The contract lives in three places besides this package: docs/events.md,
// docs/events.schema.json and deploy/examples/events.jsonl. These tests
// keep them in step with the decoder.

const (
	docsPath     = "../docs/events.md"
	schemaPath   = "../docs/events.schema.json"
	scenarioPath = "../deploy/examples/events.jsonl"
)

var jsonBlockRe = regexp.MustCompile("(?s)```json\n(.*?)```")

func TestDocsExamplesDecode(t *testing.T) {
	md, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	blocks := jsonBlockRe.FindAllSubmatch(md, -1)
	if len(blocks) == 0 {
		t.Fatal("no ```json blocks in docs/events.md")
	}
	perType := map[Type]int{}
	for i, m := range blocks {
		ev, err := DecodeInternal(m[1])
		if err != nil {
			t.Errorf("json block %d: %v\n%s", i+1, err, m[1])
			continue
		}
		if !ev.Type.IsInternal() {
			if _, err := Decode(m[1]); err != nil {
				t.Errorf("json block %d (%s): %v", i+1, ev.Type, err)
			}
			if !bytes.Contains(md, []byte("### "+string(ev.Type)+"\n")) {
				t.Errorf("no heading for %s", ev.Type)
			}
		}
		perType[ev.Type]++
	}
	for _, typ := range UpstreamTypes {
		if perType[typ] != 1 {
			t.Errorf("docs/events.md has %d examples of %s, want 1", perType[typ], typ)
		}
	}
	for _, name := range []string{"case-events", "case-events.dlq", "reason", "source_topic",
		"source_partition", "source_offset", "CRC32Balancer", "64 KiB"} {
		if !bytes.Contains(md, []byte("`"+name+"`")) && !bytes.Contains(md, []byte(name)) {
			t.Errorf("docs/events.md does not mention %s", name)
		}
	}
}

// jsonNames lists the JSON keys of a struct type, in field order.
func jsonNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out = append(out, name)
	}
	return out
}

// bodyTypes maps each upstream body field to its Go type, from Event.
func bodyTypes() map[string]reflect.Type {
	out := map[string]reflect.Type{}
	et := reflect.TypeFor[Event]()
	for i := range et.NumField() {
		f := et.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Type.Kind() == reflect.Pointer && name != "timer" && name != "ack" {
			out[name] = f.Type.Elem()
		}
	}
	return out
}

type schemaDoc map[string]any

func (s schemaDoc) obj(t *testing.T, path ...string) map[string]any {
	t.Helper()
	var cur any = map[string]any(s)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("schema: %s is not an object", strings.Join(path, "."))
		}
		cur = m[p]
	}
	m, ok := cur.(map[string]any)
	if !ok {
		t.Fatalf("schema: no object at %s", strings.Join(path, "."))
	}
	return m
}

// def follows a {"$ref": "#/$defs/x"} to its definition.
func (s schemaDoc) def(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	ref, ok := m["$ref"].(string)
	if !ok {
		return m
	}
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok {
		t.Fatalf("schema: unexpected $ref %q", ref)
	}
	return s.obj(t, "$defs", name)
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// TestSchemaMatchesDecoder checks the JSON Schema's structure against the
// Go types and the decoder's behaviour (no validator needed).
func TestSchemaMatchesDecoder(t *testing.T) {
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var s schemaDoc
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v, want draft 2020-12", s["$schema"])
	}
	if s["additionalProperties"] != false {
		t.Error("top level: additionalProperties is not false")
	}
	props := s.obj(t, "properties")

	// The type enum is exactly the upstream types.
	var types []Type
	for _, v := range strs(props["type"].(map[string]any)["enum"]) {
		types = append(types, Type(v))
	}
	if !slices.Equal(types, UpstreamTypes) {
		t.Errorf("schema type enum %v, want %v", types, UpstreamTypes)
	}

	// Top-level keys are Event's, minus the internal bodies.
	want := slices.DeleteFunc(jsonNames(reflect.TypeFor[Event]()), func(n string) bool { return n == "timer" || n == "ack" })
	slices.Sort(want)
	if got := sortedKeys(props); !slices.Equal(got, want) {
		t.Errorf("schema properties %v, want %v", got, want)
	}
	// Required envelope fields: those whose absence the decoder refuses.
	var required []string
	for _, name := range want {
		_, err := Decode(edited(t, CaseOpened, del(name)))
		if e, ok := err.(*Error); ok && e.Field == name {
			required = append(required, name)
		}
	}
	if got := slices.Sorted(slices.Values(strs(s["required"]))); !slices.Equal(got, required) {
		t.Errorf("schema required %v, want %v", got, required)
	}

	// Each body and the jurisdiction: same keys as the Go struct, closed.
	objects := bodyTypes()
	objects["jurisdiction"] = reflect.TypeFor[Jurisdiction]()
	for name, typ := range objects {
		d := s.def(t, props[name].(map[string]any))
		if d["additionalProperties"] != false {
			t.Errorf("%s: additionalProperties is not false", name)
		}
		want := jsonNames(typ)
		slices.Sort(want)
		if got := sortedKeys(d["properties"].(map[string]any)); !slices.Equal(got, want) {
			t.Errorf("%s: schema properties %v, want %v", name, got, want)
		}
	}
	to := s.def(t, s.def(t, props["relocation"].(map[string]any))["properties"].(map[string]any)["to"].(map[string]any))
	if !reflect.DeepEqual(to, s.obj(t, "$defs", "jurisdiction")) {
		t.Error("relocation.to is not the jurisdiction definition")
	}

	// Patterns and enums are the decoder's.
	for def, re := range map[string]*regexp.Regexp{"identifier": idRe, "municipality": municipalityRe} {
		if got := s.obj(t, "$defs", def)["pattern"]; got != re.String() {
			t.Errorf("$defs.%s pattern %v, want %v", def, got, re)
		}
	}
	jp := s.obj(t, "$defs", "jurisdiction", "properties")
	if got := s.def(t, jp["municipality"].(map[string]any))["pattern"]; got != municipalityRe.String() {
		t.Errorf("municipality pattern %v", got)
	}
	if got := jp["province"].(map[string]any)["pattern"]; got != provinceRe.String() {
		t.Errorf("province pattern %v, want %v", got, provinceRe)
	}
	if got := jp["region"].(map[string]any)["pattern"]; got != regionRe.String() {
		t.Errorf("region pattern %v, want %v", got, regionRe)
	}
	levels := append(slices.Clone(levelNames[1:]), "no_apreciado")
	if got := strs(s.obj(t, "$defs", "level")["enum"]); !slices.Equal(got, levels) {
		t.Errorf("level enum %v, want %v", got, levels)
	}
	enum := func(def, field string) []string {
		return strs(s.obj(t, "$defs", def, "properties", field)["enum"])
	}
	if got := enum("checkin", "kind"); !slices.Equal(got, []string{CheckinPhone, CheckinVisit, CheckinPatrol}) {
		t.Errorf("checkin kinds %v", got)
	}
	if got := enum("alarm", "kind"); !slices.Equal(got, []string{AlarmProximity, AlarmTamper, AlarmBattery, AlarmPanic}) {
		t.Errorf("alarm kinds %v", got)
	}

	// One if/then per type: its body required exactly when the decoder
	// requires it, and every other body forbidden.
	rules := map[Type]map[string]any{}
	for _, r := range s["allOf"].([]any) {
		rule := r.(map[string]any)
		c := rule["if"].(map[string]any)["properties"].(map[string]any)["type"].(map[string]any)["const"].(string)
		rules[Type(c)] = rule["then"].(map[string]any)
	}
	bodies := slices.Sorted(maps.Keys(bodyTypes()))
	for _, typ := range UpstreamTypes {
		then, ok := rules[typ]
		if !ok {
			t.Errorf("no if/then rule for %s", typ)
			continue
		}
		own := ""
		for _, b := range bodies {
			if _, err := Decode(edited(t, typ, set(b, map[string]any{}))); err == nil || err.(*Error).Field != b {
				own = b // the decoder does not refuse this body as foreign
			}
		}
		var forbidden []string
		for k, v := range then["properties"].(map[string]any) {
			if v != false {
				t.Errorf("%s: then.properties.%s is not false", typ, k)
			}
			forbidden = append(forbidden, k)
		}
		slices.Sort(forbidden)
		if want := slices.DeleteFunc(slices.Clone(bodies), func(b string) bool { return b == own }); !slices.Equal(forbidden, want) {
			t.Errorf("%s: schema forbids %v, decoder forbids %v", typ, forbidden, want)
		}
		_, err := Decode(edited(t, typ, del(own)))
		decoderRequires := err != nil && err.(*Error).Field == own
		schemaRequires := then["required"] != nil && slices.Equal(strs(then["required"]), []string{own})
		if decoderRequires != schemaRequires {
			t.Errorf("%s: %s required by decoder %v, by schema %v", typ, own, decoderRequires, schemaRequires)
		}
	}
}

func TestScenarioDecodes(t *testing.T) {
	f, err := os.Open(scenarioPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		lines     int
		seenID    = map[string]string{}
		duplicate bool
		stale     bool
		maxVer    = map[string]int64{}
		types     = map[Type]bool{}
		places    = map[string]bool{}
		alarms    = map[string]bool{}
		releaseTo string
		relocated bool
		levels    = map[Level]bool{}
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines++
		line := sc.Text()
		ev, err := Decode([]byte(line))
		if err != nil {
			t.Errorf("line %d: %v", lines, err)
			continue
		}
		if prev, ok := seenID[ev.ID]; ok {
			if prev != line {
				t.Errorf("line %d: id %s reused for a different event", lines, ev.ID)
			}
			duplicate = true
		} else {
			seenID[ev.ID] = line
			if ev.Version != 0 && ev.Version <= maxVer[ev.CaseID] {
				stale = true
			}
		}
		maxVer[ev.CaseID] = max(maxVer[ev.CaseID], ev.Version)
		types[ev.Type] = true
		places[ev.Jurisdiction.Municipality+"/"+ev.ResponsibleUnit] = true
		if ev.Alarm != nil {
			alarms[ev.Alarm.Kind] = true
			if ev.Alarm.Kind == AlarmProximity && ev.Alarm.DistanceM == nil {
				t.Errorf("line %d: proximity alarm without distance", lines)
			}
		}
		if ev.Release != nil {
			releaseTo = ev.Release.DestinationMunicipality
		}
		if ev.Relocation != nil && ev.Jurisdiction.Municipality == "07040" && ev.Relocation.To.Municipality == "13047" &&
			ev.Relocation.ResponsibleUnit != ev.ResponsibleUnit {
			relocated = true
		}
		if ev.Risk != nil {
			levels[ev.Risk.Level] = true
		}
		if ev.OccurredAt.Year() != 2026 {
			t.Errorf("line %d: occurred_at %v is not in 2026", lines, ev.OccurredAt)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if lines < 30 || lines > 40 {
		t.Errorf("%d lines, want 30-40", lines)
	}
	for _, typ := range UpstreamTypes {
		if !types[typ] {
			t.Errorf("no %s in the scenario", typ)
		}
	}
	for _, p := range []string{"13047/gc-ciudad-real", "07040/pn-illes-balears"} {
		if !places[p] {
			t.Errorf("no event for %s", p)
		}
	}
	for _, k := range []string{AlarmProximity, AlarmTamper, AlarmBattery} {
		if !alarms[k] {
			t.Errorf("no %s alarm", k)
		}
	}
	for _, l := range []Level{Medio, Alto, Extremo} {
		if !levels[l] {
			t.Errorf("no %v level", l)
		}
	}
	if releaseTo != "07040" {
		t.Errorf("release destination %q, want 07040", releaseTo)
	}
	if !relocated {
		t.Error("no relocation from Palma to Herencia with a change of unit")
	}
	if !duplicate {
		t.Error("no repeated event (same id)")
	}
	if !stale {
		t.Error("no stale event (an older version after a newer one)")
	}
}
