package policytest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runFile loads and runs one test file, failing the test if it cannot run.
func runFile(t *testing.T, path string) *Result {
	t.Helper()
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Both transitions, in Europe/Madrid and Atlantic/Canary: check-in
// periods and ack timeouts count real time, a 02:30 (or 01:30) schedule
// skipped by the spring jump fires at the jump, one shown twice in the
// autumn fires once, at its first showing. See the comments in each file.
func TestDSTTransitions(t *testing.T) {
	for _, name := range []string{"dst-march-madrid", "dst-march-canary", "dst-october-madrid", "dst-october-canary"} {
		t.Run(name, func(t *testing.T) {
			res := runFile(t, filepath.Join("testdata", name+".yaml"))
			if !res.Passed() {
				var b bytes.Buffer
				res.Write(&b)
				t.Fatal(b.String())
			}
			if res.Met < 7 {
				t.Errorf("only %d expectations met", res.Met)
			}
		})
	}
}

// A wrong expectation across the autumn change is reported with the time
// in the file's zone, its offset telling the two showings apart, and
// where the record was got instead.
func TestDSTFailureShowsOffsets(t *testing.T) {
	src, err := os.ReadFile("testdata/dst-october-madrid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Expect the climb an hour of wall clock after the miss, as a naive
	// reading of "30 minutes after 02:45" across the change would.
	s := strings.Replace(string(src), "  - at: 2026-10-25 02:15 +01:00\n    escalation: {case: C-HER-D4, rule: checkin-missed, action: climbed, step: 2}",
		"  - at: 2026-10-25 03:15 +01:00\n    escalation: {case: C-HER-D4, rule: checkin-missed, action: climbed, step: 2}", 1)
	path := filepath.Join(t.TempDir(), "dst.yaml")
	cfg, _ := filepath.Abs("testdata/dst-config.yaml")
	s = strings.Replace(s, "config: dst-config.yaml", "config: "+cfg, 1)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	res := runFile(t, path)
	var b bytes.Buffer
	res.Write(&b)
	out := b.String()
	for _, want := range []string{
		"FAIL  " + path,
		"- 2026-10-25 03:15 CET (+01:00)  escalation    C-HER-D4  rule checkin-missed  climbed  step 2  [line 29]",
		"got at 2026-10-25 02:15 CET (+01:00) instead",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// Mistakes in a test file are reported at their line and column.
func TestLoadErrors(t *testing.T) {
	head := "config: ../../deploy/config/viogen.yaml\nstart: 2026-03-10 09:00\nuntil: 1h\n"
	for _, c := range []struct{ name, src, want string }{
		{"syntax", head + "timeline:\n  - at: 0m\n\tevent: {}\n", ":6:1: YAML syntax error"},
		{"unknown key", head + "colour: red\n", ":4:1: unknown key \"colour\""},
		{"bad event", head + "timeline:\n  - at: 0m\n    event: {type: risk.assessed, case: C-X-1, risk: {level: enorme}}\n", ":6:12: event: "},
		{"bad time", head + "timeline:\n  - at: tomorrow\n    event: {type: case.opened}\n", ":5:9: invalid time \"tomorrow\""},
		{"two inputs", head + "timeline:\n  - at: 0m\n    ack: {case: C-1, agency: a}\n    sms_ack: {case: C-1, contact: b}\n", ":5:5: an input has exactly one of"},
		{"bad action", head + "expect:\n  - at: 0m\n    escalation: {action: climed}\n", ":6:26: unknown escalation action \"climed\""},
		{"nothing window", head + "expect:\n  - nothing: {from: 2h, until: 1h}\n", ":5:5: nothing: until must be after from"},
		{"missing start", "config: x.yaml\nuntil: 1h\n", ":1:1: start is required"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.yaml")
			if err := os.WriteFile(path, []byte(c.src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), path+c.want) {
				t.Errorf("got %v, want %s%s", err, path, c.want)
			}
		})
	}
}
