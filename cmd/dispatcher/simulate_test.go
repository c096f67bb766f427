package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
)

// simulate prints the timeline of the example scenario: decisions,
// notifications, suppressions, timers, escalation steps and digests, in
// the configuration's zone, and never an address.
func TestSimulateExampleScenario(t *testing.T) {
	code, out, errOut := run(t, "", noEnv, "simulate", "--config", exampleConfig, "--events", exampleEvents,
		"--from", "2026-03-09T00:00:00+01:00", "--until", "3d")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"2026-03-09 10:05 CET (+01:00)  decision      C-PMI-0001  rule risk-rises-to-alto  notify  (policy risk-alto)",
		"2026-03-09 10:05 CET (+01:00)  escalation    C-PMI-0001  rule risk-rises-to-alto  opened  step 1  (policy risk-alto, ack due 2026-03-09 10:35 CET (+01:00))",
		"2026-03-09 10:35 CET (+01:00)  timer         C-PMI-0001  escalation.timeout",
		"rule risk-rises-to-alto  climbed  step 2",
		"digest         pl-palma/pl-palma-sala (duty)  via email  template patrol_digest  schedule patrol-reminders  cases C-PMI-0001",
		"  suppressed    ",
		"  checkin.missed  ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
	if !strings.Contains(errOut, "simulated 72h0m0s") || !strings.Contains(errOut, "notifications") {
		t.Errorf("summary: %q", errOut)
	}
	assertNoAddresses(t, "simulate output", out)
}

func TestSimulateJSON(t *testing.T) {
	events := `{"id":"t-1","type":"device.alarm","case_id":"C-PMI-T1","occurred_at":"2026-03-11T18:42:00+01:00","source":"cometa","jurisdiction":{"municipality":"07040","province":"07","region":"IB"},"responsible_unit":"pn-illes-balears","alarm":{"kind":"tamper"}}
{"at":"2026-03-11T18:44:00+01:00","sms_ack":{"case":"C-PMI-T1","contact":"pl-palma-guardia"}}
`
	code, out, errOut := run(t, events, noEnv, "simulate", "--config", exampleConfig, "--events", "-",
		"--from", "2026-03-11 18:00", "--until", "1h", "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	kinds := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r struct {
			At, Kind, Action, Agency string
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("not JSON: %q: %v", sc.Text(), err)
		}
		kinds[r.Kind+"/"+r.Action]++
		if r.Kind == "escalation" && r.Action == "acknowledged" && !strings.HasPrefix(r.At, "2026-03-11T18:44:00+01:00") {
			t.Errorf("acknowledged at %s", r.At)
		}
	}
	if kinds["notification/"] != 2 || kinds["escalation/opened"] != 1 || kinds["escalation/acknowledged"] != 1 || kinds["pager_update/acknowledge"] != 2 {
		t.Errorf("records by kind: %v", kinds)
	}
}

func TestSimulateRefusesBadInput(t *testing.T) {
	code, _, errOut := run(t, `{"id":"x","type":"risk.assessed"}`+"\n", noEnv, "simulate", "--config", exampleConfig,
		"--events", "-", "--from", "2026-03-11 18:00", "--until", "1h")
	if code != 1 || !strings.Contains(errOut, "stdin:1: ") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := run(t, "", noEnv, "simulate", "--config", exampleConfig); code != 2 {
		t.Errorf("missing flags: exit %d, want 2", code)
	}
}
