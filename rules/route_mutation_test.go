package rules

import (
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/event"
)

// Tests written to kill mutants of the routing context that survived
// `make mutate` (docs/testing.md): no test built a RouteContext from a case
// without a place or unit, or from a relocation that changes only one of
// them.

func TestRouteContextFallsBackToTheEvent(t *testing.T) {
	e := ev(event.BreachReported, caseAt(herencia, "gc-ciudad-real", event.Alto))
	// A case the state stage knows nothing of: the event's place and unit.
	rc := NewRouteContext(e, event.Transition{}, event.Case{})
	if rc.Jurisdiction != herencia || rc.ResponsibleUnit != "gc-ciudad-real" {
		t.Errorf("empty case: %+v", rc)
	}
	// A known case: its own place and unit, whatever the event says.
	e.Jurisdiction, e.ResponsibleUnit = madrid, "pn-madrid"
	rc = NewRouteContext(e, event.Transition{}, caseAt(herencia, "gc-ciudad-real", event.Alto))
	if rc.Jurisdiction != herencia || rc.ResponsibleUnit != "gc-ciudad-real" || rc.PreviousUnit != "" {
		t.Errorf("known case: %+v", rc)
	}
	if rc.moved() {
		t.Errorf("known case reported moved: %+v", rc)
	}
}

func TestRouteContextOfARelocation(t *testing.T) {
	c := caseAt(herencia, "gc-ciudad-real", event.Alto)
	reloc := func(to event.Jurisdiction, unit string) event.Event {
		e := ev(event.CaseRelocated, c)
		e.Relocation = &event.Relocation{To: to, ResponsibleUnit: unit}
		return e
	}
	for _, tc := range []struct {
		name     string
		e        event.Event
		place    event.Jurisdiction
		unit     string
		prevUnit string
		moved    bool
	}{
		{"same place and unit", reloc(herencia, "gc-ciudad-real"), herencia, "gc-ciudad-real", "", false},
		{"unit only", reloc(event.Jurisdiction{}, "pl-herencia"), herencia, "pl-herencia", "gc-ciudad-real", true},
		{"same place, new unit", reloc(herencia, "pl-herencia"), herencia, "pl-herencia", "gc-ciudad-real", true},
		{"place only", reloc(palma, ""), palma, "gc-ciudad-real", "gc-ciudad-real", true},
		{"place and unit", reloc(palma, "pn-illes-balears"), palma, "pn-illes-balears", "gc-ciudad-real", true},
	} {
		rc := NewRouteContext(tc.e, event.Transition{}, c)
		if rc.Jurisdiction != tc.place || rc.ResponsibleUnit != tc.unit || rc.PreviousUnit != tc.prevUnit || rc.moved() != tc.moved {
			t.Errorf("%s: %+v (moved %v), want place %v unit %q previous unit %q moved %v",
				tc.name, rc, rc.moved(), tc.place, tc.unit, tc.prevUnit, tc.moved)
		}
		if tc.moved && tc.place != herencia && (rc.PreviousJurisdiction != herencia || !rc.placeChanged()) {
			t.Errorf("%s: previous place %+v, placeChanged %v", tc.name, rc.PreviousJurisdiction, rc.placeChanged())
		}
	}
}

func TestPlaceChanged(t *testing.T) {
	for _, tc := range []struct {
		prev event.Jurisdiction
		want bool
	}{
		{event.Jurisdiction{}, false},
		{herencia, false},
		{palma, true},
		{event.Jurisdiction{Municipality: "07040"}, true},
		{event.Jurisdiction{Province: "07"}, true},
		{event.Jurisdiction{Region: "IB"}, true},
	} {
		rc := RouteContext{Jurisdiction: herencia, ResponsibleUnit: "u", PreviousJurisdiction: tc.prev, PreviousUnit: "u"}
		if got := rc.placeChanged(); got != tc.want {
			t.Errorf("previous %+v: placeChanged = %v, want %v", tc.prev, got, tc.want)
		}
	}
}

// A schedule addressed to one agency by id reaches that agency's contacts.
func TestRecipientsOfOneAgency(t *testing.T) {
	cfg, err := Parse([]byte(baseConfig), "test.yaml", testOpts)
	if err != nil {
		t.Fatal(err)
	}
	s := &Schedule{To: ScheduleTarget{Agency: "center", Role: "duty"}, Via: []string{"email"}}
	got := cfg.Recipients(s)
	if len(got) != 1 || got[0].AgencyID != "center" || got[0].ContactID != "center-duty" {
		t.Errorf("Recipients = %+v, want center/center-duty", got)
	}
}

// The alert's case id falls back to the event's; transition.level to the
// case's level when the event changes none; release.temporary follows until.
func TestAlertAndEnvFallbacks(t *testing.T) {
	cfg := loadExample(t)
	eng := NewEngine(cfg)
	hc := caseAt(herencia, "gc-ciudad-real", event.Medio)
	e := withTimer(ev(event.CheckinMissed, hc))
	e.CaseID = "case-from-event"
	hc.ID = ""
	alerts, err := eng.Evaluate(e, event.Transition{}, hc)
	if err != nil || len(alerts) != 1 || alerts[0].CaseID != "case-from-event" {
		t.Fatalf("alerts %+v, %v: want one with the event's case id", alerts, err)
	}

	rc := RouteContext{Jurisdiction: herencia}
	c := caseAt(herencia, "gc-ciudad-real", event.Alto)
	if env := newEnv(&e, &event.Transition{}, &c, &rc, &cfg.dir); env.Transition.Level != int(event.Alto) {
		t.Errorf("no transition: transition.level = %d, want the case's %d", env.Transition.Level, event.Alto)
	}
	tr := event.NewTransition(event.Alto, event.Extremo)
	if env := newEnv(&e, &tr, &c, &rc, &cfg.dir); env.Transition.Level != int(event.Extremo) {
		t.Errorf("rise: transition.level = %d, want %d", env.Transition.Level, event.Extremo)
	}

	until := t0.Add(72 * time.Hour)
	r := ev(event.PenitentiaryRelease, c)
	r.Release = &event.Release{DestinationMunicipality: "13047", EffectiveAt: t0}
	if env := eventEnv(&r); !env.Release.Present || env.Release.Temporary {
		t.Errorf("release without until: %+v", env.Release)
	}
	r.Release.Until = &until
	if env := eventEnv(&r); !env.Release.Temporary {
		t.Errorf("release with until: %+v", env.Release)
	}
}
