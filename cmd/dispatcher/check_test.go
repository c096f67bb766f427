package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envMap(m map[string]string) env { return func(k string) string { return m[k] } }

func TestCheckValidExample(t *testing.T) {
	getenv := envMap(map[string]string{"PD_SES_VIOGEN": "routing-key-not-to-print"})
	code, out, errOut := run(t, "", getenv, "check", "--config", exampleConfig, "--now", "2026-03-10T12:00:00+01:00")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{
		exampleConfig + ": valid\n",
		"  timezone:   Europe/Madrid (locale es)\n",
		"  agencies:   9 (3 coordinating_center, 1 island_council, 2 local_police, 2 responsible_unit, 1 social_services)\n",
		"  contacts:   20\n",
		"  rules:      17 (4 critical)\n",
		"  schedules:  1\n",
		`    patrol-reminders  "0 7 * * *" in Europe/Madrid, next 2026-03-11 07:00 CET (+01:00)` + "\n",
		"  fallback:   ses-viogen (Centro de Coordinación VioGén (SES))\n",
		"  templates:  aggressor_release, breach, checkin_missed, device_alarm,",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{
		"warning: contact gc-cr-guardia: pager_key_env PD_GC_CIUDAD_REAL is not set",
		"warning: contact pl-palma-webhook: webhook_secret_env WEBHOOK_SECRET_PL_PALMA is not set",
		"warning: contact pl-palma-webhook (agency pl-palma, role integration) is not reached by any policy or schedule",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("warnings lack %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "PD_SES_VIOGEN") {
		t.Errorf("PD_SES_VIOGEN is set, yet warned about:\n%s", errOut)
	}
	if strings.Contains(out+errOut, "routing-key-not-to-print") {
		t.Error("check printed the value of an environment variable")
	}
	assertNoAddresses(t, "check output", out+errOut)
}

// The config path comes from DISPATCHER_CONFIG, and schedules fire in
// their own zone across the spring DST change (29 March 2026 in Madrid).
func TestCheckEnvConfigAndDST(t *testing.T) {
	code, out, errOut := run(t, "", envMap(map[string]string{"DISPATCHER_CONFIG": exampleConfig}), "check", "--now", "2026-03-28T08:00:00+01:00")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := "next 2026-03-29 07:00 CEST (+02:00)"; !strings.Contains(out, want) {
		t.Errorf("summary lacks %q:\n%s", want, out)
	}
}

func TestCheckBrokenConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broken.yaml")
	// Line numbers matter: the test expects errors at lines 7, 15, 19, 22.
	broken := `timezone: Europe/Madrid
fallback_agency: ses
agencies:
  - id: ses
    name: Centro de Coordinación
    kind: coordinating_center
    colour: blue
    contacts:
      - {id: ses-sala, role: duty, email: sala@example.org}
policies:
  - id: notify-ses
    steps:
      - notify:
          - {agency: ses, role: duty, via: [email]}
        ack_within: 10 minutes
rules:
  - id: r1
    when: 'event.type == "risk.assessed"'
    policy: no-such-policy
    template: risk_rise
  - id: r2
    when: 'event.typo == "x"'
    policy: notify-ses
    template: risk_rise
`
	if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "", noEnv, "check", "--config", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errOut)
	}
	if out != "" {
		t.Errorf("an invalid config printed a summary:\n%s", out)
	}
	for _, want := range []string{
		path + ":7:5: agencies[0].colour: unknown key",
		path + ":15:21: policies[0].steps[0].ack_within: invalid duration",
		path + ":19:5: rules[0].policy: unknown policy \"no-such-policy\"",
		path + ":22:18: rules[1].when: condition does not compile",
		"is invalid: 4 errors",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

// A valid file can still hold mistakes worth a warning: an agency no
// policy reaches, a pager key variable that is not set.
func TestCheckWarnings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "small.yaml")
	cfg := `fallback_agency: ses
agencies:
  - id: ses
    name: Centro de Coordinación
    kind: coordinating_center
    contacts:
      - {id: ses-sala, role: duty, email: sala@example.org, pager_key_env: PD_SES}
  - id: gc-toledo
    name: Guardia Civil - Comandancia de Toledo
    kind: responsible_unit
    serves: {provinces: ["45"]}
    contacts:
      - {id: gc-to-sala, role: duty, sms: "+34600000099"}
      - {id: gc-to-mando, role: supervisor, email: mando@example.org}
  - id: asociacion
    name: Asociación de apoyo
    kind: victim_support
    serves: {municipalities: ["45168"]}
    contacts:
      - {id: asociacion-atencion, role: duty, email: atencion@example.org}
policies:
  - id: p
    steps:
      - notify:
          - {agency: responsible, role: duty, via: [sms]}
rules:
  - id: r
    when: 'event.type == "risk.assessed"'
    policy: p
    template: risk_rise
`
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "", noEnv, "check", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "warning: agency asociacion (kind victim_support) is not reached by any policy or schedule\n" +
		"warning: contact gc-to-mando (agency gc-toledo, role supervisor) is not reached by any policy or schedule\n" +
		"warning: contact ses-sala: pager_key_env PD_SES is not set in this environment: pages to it will fail\n"
	if errOut != want {
		t.Errorf("warnings:\n%s\nwant:\n%s", errOut, want)
	}
	if !strings.Contains(out, "  warnings:   3\n") || !strings.Contains(out, "  schedules:  0\n") {
		t.Errorf("summary:\n%s", out)
	}
}

func TestCheckUnreadable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	tests := []struct {
		name   string
		args   []string
		getenv env
		code   int
		stderr string
	}{
		{"missing file", []string{"check", "--config", missing}, noEnv, 1, "read config: open " + missing},
		{"no config", []string{"check"}, noEnv, 1, "no configuration: pass --config or set DISPATCHER_CONFIG"},
		{"bad template dir", []string{"check", exampleConfig}, envMap(map[string]string{"TEMPLATE_DIR": missing}), 1, "templates:"},
		{"two files", []string{"check", exampleConfig, exampleConfig}, noEnv, 2, "Usage: dispatcher check"},
		{"bad now", []string{"check", "--now", "noon", exampleConfig}, noEnv, 2, "RFC 3339"},
		{"flag after file", []string{"check", exampleConfig, "--now", "noon"}, noEnv, 2, "RFC 3339"},
		{"help", []string{"check", "--help"}, noEnv, 0, "FILE:LINE:COL: PATH: MESSAGE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(t, "", tc.getenv, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Errorf("exit %d (want %d), stderr:\n%s\nwant it to contain %q", code, tc.code, errOut, tc.stderr)
			}
		})
	}
}

// A webhook secret the deliverer would refuse (shorter than the webhook
// channel's minimum) is warned about like an unset one; the value is
// never printed.
func TestCheckWarnsShortWebhookSecret(t *testing.T) {
	getenv := envMap(map[string]string{"PD_SES_VIOGEN": "k", "WEBHOOK_SECRET_PL_PALMA": "too-short"})
	code, _, errOut := run(t, "", getenv, "check", exampleConfig)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "warning: contact pl-palma-webhook: webhook_secret_env WEBHOOK_SECRET_PL_PALMA is shorter than 16 bytes in this environment: webhooks to it will fail"
	if !strings.Contains(errOut, want) || strings.Contains(errOut, "too-short") {
		t.Errorf("stderr:\n%s\nwant %q and not the value", errOut, want)
	}
}
