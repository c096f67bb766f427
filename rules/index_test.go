package rules

import (
	"reflect"
	"testing"

	"github.com/viogen-alerts/dispatcher/event"
)

func TestEventTypes(t *testing.T) {
	for _, tc := range []struct {
		cond  string
		types []string // nil: unrestricted
	}{
		{`event.type == "risk.assessed"`, []string{"risk.assessed"}},
		{`"device.alarm" == event.type && event.alarm.kind == "panic"`, []string{"device.alarm"}},
		{`case.active && event.type in ["a", "b"]`, []string{"a", "b"}},
		{`event.type == "a" || event.type == "b"`, []string{"a", "b"}},
		{`event.type == "a" || case.active`, nil},
		{`event.type not in ["case.closed"] && !case.unit_known`, nil},
		{`!(event.type == "a")`, nil},
		{`event.type != "a"`, nil},
		{`event.type in ["a", event.source]`, nil},
		{`case.level >= ALTO`, nil},
		{`true`, nil},
	} {
		got, ok := eventTypes(tc.cond)
		if ok != (tc.types != nil) || !reflect.DeepEqual(got, tc.types) {
			t.Errorf("%s: got %v %v, want %v", tc.cond, got, ok, tc.types)
		}
	}
}

// TestIndexAgreesWithFullScan runs every rule on every event and checks
// the type index skips only rules that could not match.
func TestIndexAgreesWithFullScan(t *testing.T) {
	cfg := loadExample(t)
	indexed := NewEngine(cfg)
	full := NewEngine(cfg)
	full.index = ruleIndex{byType: map[event.Type][]*Rule{}}
	for i := range cfg.Rules {
		full.index.any = append(full.index.any, &cfg.Rules[i])
	}
	for _, tc := range evalCases() {
		for _, typ := range append(append([]event.Type{"unknown.type"}, event.UpstreamTypes...), event.InternalTypes...) {
			e := tc.ev
			e.Type = typ
			a, err1 := indexed.Evaluate(e, tc.tr, tc.c)
			b, err2 := full.Evaluate(e, tc.tr, tc.c)
			if err1 != nil || err2 != nil || ruleIDs(a) != ruleIDs(b) {
				t.Errorf("%s as %s: indexed %q, full %q (%v %v)", tc.name, typ, ruleIDs(a), ruleIDs(b), err1, err2)
			}
		}
	}
}
