package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const shippedPolicyTests = "../../deploy/config/tests/*.yaml"

// TestPolicyTestsShipped is `dispatcher test deploy/config/tests/*.yaml`:
// the example configuration does what its policy tests say.
func TestPolicyTestsShipped(t *testing.T) {
	files, err := filepath.Glob(shippedPolicyTests)
	if err != nil || len(files) < 7 {
		t.Fatalf("policy tests: %v, %d files", err, len(files))
	}
	code, out, errOut := run(t, "", noEnv, append([]string{"test"}, files...)...)
	if code != 0 {
		t.Fatalf("dispatcher test exit %d\n%s%s", code, out, errOut)
	}
	for _, f := range files {
		if !strings.Contains(out, "ok    "+f+": ") {
			t.Errorf("no passing line for %s in:\n%s", f, out)
		}
	}
	assertNoAddresses(t, "dispatcher test output", out)
}

// A policy with a step removed fails its policy test, and the output says
// what was expected and not got, what was got instead, and when.
func TestPolicyTestBrokenPolicyFails(t *testing.T) {
	cfg, _ := exampleWith(t, cfgEdit{old: `      - notify:
          - {agency: responsible, role: duty, via: [sms]}
          - {agency: responsible, role: supervisor, via: [sms]}
          - {agency: local_police, role: supervisor, via: [sms], optional: true}
        ack_within: 10m
`, new: ""})
	test := copyPolicyTest(t, "palma-bracelet.yaml", filepath.Dir(cfg))
	code, out, errOut := run(t, "", noEnv, "test", test)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"FAIL  " + test + ": a bracelet alarm in Palma",
		"times in Europe/Madrid; - expected, not got; + got, not expected",
		// The step removed: its three notifications are missing.
		"  - 2026-03-11 18:57 CET (+01:00)  notification   rule bracelet-proximity  step 2  pn-illes-balears (duty)  via sms",
		"  - 2026-03-11 18:57 CET (+01:00)  notification   rule bracelet-proximity  step 2  pl-palma (supervisor)  via sms",
		"  - 2026-03-11 18:57 CET (+01:00)  escalation     rule bracelet-proximity  climbed  step 2",
		// The ladder runs out 10 minutes early: the center is told then.
		"  - 2026-03-11 19:07 CET (+01:00)  notification   rule bracelet-proximity  ibd/ibd-coordinacio  template escalation_unacked",
		"        got at 2026-03-11 18:57 CET (+01:00) instead",
		"  + 2026-03-11 18:57 CET (+01:00)  notification  C-PMI-T02  rule bracelet-proximity  step 2  ibd/ibd-coordinacio (duty)  via sms,email  template escalation_unacked",
		"timeline (Europe/Madrid):",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "1 of 1 files failed") {
		t.Errorf("stderr: %q", errOut)
	}
}

// A wrong agency in a step fails too, naming the agency that got it.
func TestPolicyTestWrongAgencyFails(t *testing.T) {
	cfg, _ := exampleWith(t, cfgEdit{old: `          - {agency: "release_destination:local_police", role: on_call, via: [sms], optional: true}`,
		new: `          - {agency: local_police, role: on_call, via: [sms], optional: true}`})
	test := copyPolicyTest(t, "release-other-municipality.yaml", filepath.Dir(cfg))
	code, out, _ := run(t, "", noEnv, "test", test)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		"  - 2026-03-13 09:00 CET (+01:00)  notification  C-PMI-T05  rule aggressor-release  step 1  pl-herencia (on_call)  via sms",
		"  + 2026-03-13 09:00 CET (+01:00)  notification  C-PMI-T05  rule aggressor-release  step 1  pl-palma/pl-palma-guardia (on_call)  via sms  template aggressor_release",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// copyPolicyTest copies a shipped policy test into dir, whose viogen.yaml
// it then tests.
func copyPolicyTest(t *testing.T, name, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../../deploy/config/tests", name))
	if err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(string(data), "config: ../viogen.yaml", "config: viogen.yaml", 1)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
