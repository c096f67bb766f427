package rules

import (
	"testing"

	"github.com/viogen-alerts/dispatcher/event"
)

// An alert from an event that changes no level carries the case's level
// (killed mutant: `level == event.LevelNone` negated gave such alerts no
// level, and rises the case's stale one).
func TestAlertLevelWithoutTransitionIsTheCases(t *testing.T) {
	eng := NewEngine(loadExample(t))
	hc := caseAt(herencia, "gc-ciudad-real", event.Medio)
	alerts, err := eng.Evaluate(withTimer(ev(event.CheckinMissed, hc)), event.Transition{}, hc)
	if err != nil || len(alerts) != 1 {
		t.Fatalf("%+v %v", alerts, err)
	}
	if alerts[0].Level != event.Medio {
		t.Errorf("level %v, want the case's %v", alerts[0].Level, event.Medio)
	}
}

// The alarm's distance reaches conditions only when the event has one
// (killed mutant: `a.DistanceM != nil` negated).
func TestAlarmDistanceInEnv(t *testing.T) {
	c := caseAt(herencia, "gc-ciudad-real", event.Alto)
	e := withAlarm(ev(event.DeviceAlarm, c), "proximity")
	env := eventEnv(&e)
	if !env.Alarm.Present || !env.Alarm.HasDistance || env.Alarm.DistanceM != 250 {
		t.Errorf("with a distance: %+v", env.Alarm)
	}
	e.Alarm.DistanceM = nil
	env = eventEnv(&e)
	if !env.Alarm.Present || env.Alarm.HasDistance || env.Alarm.DistanceM != 0 {
		t.Errorf("without a distance: %+v", env.Alarm)
	}
}
