package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/viogen-alerts/dispatcher/channels/email"
	"github.com/viogen-alerts/dispatcher/channels/sms"
	"github.com/viogen-alerts/dispatcher/channels/webhook"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
	"github.com/viogen-alerts/dispatcher/rules"
)

// check and run load a configuration through one validation path: what
// check refuses, run refuses with the same messages, and what check
// accepts, run loads and starts on.

// cfgEdit is one replacement in the example configuration.
type cfgEdit struct{ old, new string }

// exampleWith is the example configuration with each edit's old replaced
// by its new (the first occurrence), written to a temporary file.
func exampleWith(t *testing.T, edits ...cfgEdit) (path, src string) {
	t.Helper()
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	src = string(data)
	for _, e := range edits {
		if !strings.Contains(src, e.old) {
			t.Fatalf("%q not in the example configuration", e.old)
		}
		src = strings.Replace(src, e.old, e.new, 1)
	}
	path = filepath.Join(t.TempDir(), "viogen.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, src
}

// posOf is "LINE:COL" of the first occurrence of marker in src.
func posOf(t *testing.T, src, marker string) string {
	t.Helper()
	i := strings.Index(src, marker)
	if i < 0 {
		t.Fatalf("marker %q not in source", marker)
	}
	return fmt.Sprintf("%d:%d", strings.Count(src[:i], "\n")+1, i-strings.LastIndex(src[:i], "\n"))
}

// runLoadError runs `dispatcher run` with no broker or Redis settings: a
// configuration that loads gets as far as "REDIS_URL (or REDIS_ADDRS) is not set". It
// returns the error run logged as it stopped.
func runLoadError(t *testing.T, path string) (code int, errText string) {
	t.Helper()
	code, _, errOut := run(t, "", noEnv, "run", "--config", path, "--log-format", "json", "--http", "")
	sc := bufio.NewScanner(strings.NewReader(errOut))
	for sc.Scan() {
		var entry struct {
			Msg   string `json:"msg"`
			Error string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &entry) == nil && entry.Msg == "dispatcher stopped" {
			return code, entry.Error
		}
	}
	t.Fatalf("run logged no \"dispatcher stopped\" (exit %d):\n%s", code, errOut)
	return 0, ""
}

// cfgRefusal is one mistake in the example configuration and the error
// check and run must both give for it.
type cfgRefusal struct {
	name   string
	edit   cfgEdit
	marker string // the error is at the line and column of its first occurrence
	want   string // path: message, after FILE:LINE:COL:
}

// Loading (templates rendered and privacy-checked) takes about a second
// under -race: the value mistakes share one file, and the YAML syntax
// errors, which stop the parse, get one each.
func TestCheckAndRunRefuseTheSame(t *testing.T) {
	values := []cfgRefusal{
		{"http webhook", cfgEdit{`webhook_url: "https://pl-palma`, `webhook_url: "http://pl-palma`}, `webhook_url: "http://`,
			"agencies[6].contacts[3].webhook_url: invalid webhook URL: http:// is refused"},
		{"unknown locale", cfgEdit{"locale: es\n", "locale: fr\n"}, "locale: fr",
			`locale: unknown locale "fr": the templates have es, ca, en`},
		{"kind coordinating_centre", cfgEdit{"kind: coordinating_center\n", "kind: coordinating_centre\n"}, "kind: coordinating_centre",
			`agencies[0].kind: unknown agency kind "coordinating_centre" (did you mean "coordinating_center"?)`},
		{"kind local_polic", cfgEdit{"kind: local_police\n", "kind: local_polic\n"}, "kind: local_polic",
			`agencies[2].kind: unknown agency kind "local_polic" (did you mean "local_police"?)`},
		{"suppress_for on a critical rule", cfgEdit{"    severity: critical\n    critical: true\n", "    severity: critical\n    critical: true\n    suppress_for: 5m\n"}, "suppress_for: 5m",
			"rules[1].suppress_for: suppress_for is refused on a critical rule: critical alerts are never suppressed by a time window"},
		{"phone not E.164", cfgEdit{`sms: "+34600000001"`, `sms: "600 000 001"`}, `sms: "600`,
			`agencies[0].contacts[0].sms: invalid phone number "600 000 001": want E.164`},
		{"email go-mail cannot parse", cfgEdit{"email: sala.viogen@example.org", "email: sala..viogen@example.org"}, "email: sala..",
			`agencies[0].contacts[1].email: invalid email address "sala..viogen@example.org"`},
		{"pager key env name", cfgEdit{"pager_key_env: PD_SES_VIOGEN", "pager_key_env: pd-ses-viogen"}, "pager_key_env: pd",
			`agencies[0].contacts[0].pager_key_env: invalid environment variable name "pd-ses-viogen"`},
		{"webhook secret env name", cfgEdit{"webhook_secret_env: WEBHOOK_SECRET_PL_PALMA", "webhook_secret_env: WEBHOOK SECRET"}, "webhook_secret_env: WEBHOOK SECRET",
			`agencies[6].contacts[3].webhook_secret_env: invalid environment variable name "WEBHOOK SECRET"`},
	}
	syntax := []cfgRefusal{
		{"tab in the indentation", cfgEdit{"    kind: island_council\n", "\tkind: island_council\n"}, "\tkind: island_council",
			"YAML syntax error: found a tab character that violates indentation (a tab in the indentation: indent with spaces, never tabs)"},
		{"unclosed quote", cfgEdit{`name: Policía Local de Palma`, `name: "Policía Local de Palma`}, `"Policía Local de Palma`,
			"YAML syntax error: an unclosed quote? The quoted value that starts here runs on to line"},
	}
	var edits []cfgEdit
	for _, r := range values {
		edits = append(edits, r.edit)
	}
	t.Run("values", func(t *testing.T) { assertCheckAndRunRefuse(t, values, edits...) })
	for _, r := range syntax {
		t.Run(r.name, func(t *testing.T) { assertCheckAndRunRefuse(t, []cfgRefusal{r}, r.edit) })
	}
}

// assertCheckAndRunRefuse applies edits to the example configuration and
// checks that check exits 1 with exactly the errors of want, each at its
// place, and that run refuses the file with the same errors.
func assertCheckAndRunRefuse(t *testing.T, want []cfgRefusal, edits ...cfgEdit) {
	t.Helper()
	path, src := exampleWith(t, edits...)
	code, out, errOut := run(t, "", noEnv, "check", path)
	if code != 1 || out != "" {
		t.Fatalf("check: exit %d, stdout %q, want 1 and nothing", code, out)
	}
	// Every line but the last ("... is invalid: N errors") is an error.
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	checkErrs := lines[:len(lines)-1]
	if len(checkErrs) != len(want) {
		t.Errorf("check gave %d errors, want %d:\n%s", len(checkErrs), len(want), errOut)
	}
	for _, r := range want {
		line := path + ":" + posOf(t, src, r.marker) + ": " + r.want
		if !slices.ContainsFunc(checkErrs, func(s string) bool { return strings.HasPrefix(s, line) }) {
			t.Errorf("%s: check stderr lacks %q:\n%s", r.name, line, errOut)
		}
	}
	code, runErr := runLoadError(t, path)
	if code != 1 {
		t.Errorf("run: exit %d, want 1", code)
	}
	if runErr != strings.Join(checkErrs, "\n") {
		t.Errorf("run refused with\n%s\ncheck with\n%s", runErr, strings.Join(checkErrs, "\n"))
	}
}

// The inverse: a configuration check accepts is one run loads. Without
// broker and Redis, run gets past loading to its first infrastructure
// setting; with them, it starts, and stops cleanly on cancel.
func TestCheckAcceptedConfigRuns(t *testing.T) {
	// Values at the edge of what is accepted, in one file.
	edge := []cfgEdit{
		{`"https://pl-palma.example.org/hooks/viogen"`, `"https://pl-palma.example.org:8443/hooks/viogen?src=viogen"`},
		{"locale: es\n", "locale: ca-ES\n"},
		{"# Required police contact per level", "  - id: asociacion\n    name: Asociación de apoyo\n    kind: victim_support\n    locale: en\n" +
			"    contacts:\n      - {id: asociacion-atencion, role: duty, email: atencion+noche@mail.example.org, sms: \"+346000000999999\"}\n\n# Required police contact per level"},
		{"    severity: error\n    suppress_for: 30m\n", "    severity: critical\n    suppress_for: 30m\n"}, // severity alone is not a critical rule
		{"    severity: critical\n    critical: true\n", "    severity: critical\n    critical: true\n    suppress_for: 0s\n"},
	}
	edgePath, _ := exampleWith(t, edge...)
	getenv := envMap(map[string]string{"PD_SES_VIOGEN": "k"})
	for _, path := range []string{exampleConfig, edgePath} {
		if code, _, errOut := run(t, "", getenv, "check", path); code != 0 {
			t.Fatalf("check %s: exit %d:\n%s", path, code, errOut)
		}
		if code, runErr := runLoadError(t, path); code != 1 || runErr != "REDIS_URL (or REDIS_ADDRS) is not set" {
			t.Errorf("run %s stopped with exit %d, %q; want it past loading, at REDIS_URL", path, code, runErr)
		}
	}

	// The example configuration, all the way: run starts and stops.
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, devTopics...), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	rdb := testenv.StartRedis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, []string{"run", "--config", exampleConfig, "--brokers", strings.Join(broker.ListenAddrs(), ","),
			"--redis", rdb.URL(), "--http", "127.0.0.1:0", "--log-format", "json"},
			stdio{in: strings.NewReader(""), out: &bytes.Buffer{}, err: &stderr}, noEnv)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), `"msg":"dispatcher started"`) {
		select {
		case code := <-done:
			t.Fatalf("run ended with %d before starting:\n%s", code, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("run did not start in 20 s:\n%s", stderr.String())
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run exited %d after cancel:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not stop 30 s after cancel:\n%s", stderr.String())
	}
}

// The loader accepts no address its channel refuses: the rules package
// keeps its own checks (it imports no channel), held here to the
// channels' answers. Webhook URLs get the same answer both ways.
func TestLoadAcceptsOnlyWhatChannelsSend(t *testing.T) {
	const base = `fallback_agency: c
agencies:
  - id: c
    name: Centro
    kind: coordinating_center
    contacts:
      - {id: c-duty, role: duty, %s: %q}
policies:
  - id: p
    steps:
      - notify: [{agency: c, via: [sms, email, webhook]}]
rules:
  - {id: r, when: 'event.type == "risk.assessed"', policy: p, template: risk_rise}
`
	loads := func(key, val string) bool {
		_, err := rules.Parse([]byte(fmt.Sprintf(base, key, val)), "t.yaml", rules.LoadOptions{})
		return err == nil
	}
	for _, n := range []string{"+34600000001", "+346000000", "+3460000", "+1234567", "+123456789012345", "+1234567890123456",
		"+0346000000", "34600000001", "+34 600000001", "+34-600-000-001", "+34600000001 ", "0034600000001", "++34600000001"} {
		if loads("sms", n) && !sms.ValidNumber(n) {
			t.Errorf("sms %q loads, but the sms channel refuses it", n)
		}
	}
	for _, a := range []string{"sala@example.org", "sala.viogen@example.org", "sala+noche@mail.example.org", ".sala@example.org",
		"sala.@example.org", "sala..noche@example.org", "sala@example", "Sala <sala@example.org>", "sala@@example.org",
		"sala@-example.org", "sala@example.org.", "\"sala noche\"@example.org", "sala@exa_mple.org", "SALA@EXAMPLE.ORG"} {
		if loads("email", a) && !email.ValidRecipient(a) {
			t.Errorf("email %q loads, but the email channel refuses it", a)
		}
	}
	for _, u := range []string{"https://h.example.org/x", "http://h.example.org/x", "HTTPS://h.example.org/x", "https://h.example.org:8443/x?a=b",
		"ftp://h.example.org/x", "https:///x", "//h.example.org/x", "h.example.org/x", "https://user:pw@h.example.org/x",
		"https://h.example.org:99999/x", "https://[::1]/x", "https://h.example.org/%zz", "javascript:alert(1)"} {
		if got, want := loads("webhook_url", u), webhook.ValidateURL(u, false) == nil; got != want {
			t.Errorf("webhook_url %q: loads %v, the webhook channel (https only, as run builds it) accepts %v", u, got, want)
		}
	}
}

// rules.Locales, which the loader accepts, are the locales the embedded
// templates have.
func TestLocalesAreTheTemplates(t *testing.T) {
	entries, err := os.ReadDir("../../templates/default")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	got := slices.Sorted(slices.Values(rules.Locales))
	slices.Sort(dirs)
	if !slices.Equal(got, dirs) {
		t.Errorf("rules.Locales = %v, templates/default has %v", got, dirs)
	}
}
