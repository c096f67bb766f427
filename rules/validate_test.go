package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// baseConfig is the smallest valid configuration; each test breaks it in
// one place.
const baseConfig = `fallback_agency: center
agencies:
  - id: center
    name: Coordination center
    kind: coordinating_center
    serves: {regions: [CM]}
    contacts:
      - {id: center-duty, role: duty, email: duty@example.org, sms: "+34600000099"}
  - id: unit
    name: Police unit
    kind: responsible_unit
    serves: {provinces: ["13"]}
    contacts:
      - {id: unit-oncall, role: on_call, sms: "+34600000098", pager_key_env: PD_UNIT}
policies:
  - id: page
    steps:
      - notify:
          - {agency: responsible, role: on_call, via: [pager, sms]}
        ack_within: 10m
      - notify:
          - {agency: center, role: duty, via: [email]}
rules:
  - id: rise
    when: 'event.type == "risk.assessed" && transition.rising'
    policy: page
    template: risk_rise
    suppress_for: 30m
schedules:
  - {id: digest, cron: "0 7 * * *", digest: {levels: [alto]}, to: {agency: coordinating_center, role: duty}, via: [email]}
`

func templatesKnown(names ...string) func(string) bool {
	return func(n string) bool {
		for _, x := range names {
			if x == n {
				return true
			}
		}
		return false
	}
}

var testOpts = LoadOptions{Templates: templatesKnown("risk_rise", "patrol_digest")}

// edit replaces exactly one occurrence of old in baseConfig.
func edit(t *testing.T, old, new string) string {
	t.Helper()
	if strings.Count(baseConfig, old) != 1 {
		t.Fatalf("edit: %q occurs %d times in baseConfig", old, strings.Count(baseConfig, old))
	}
	return strings.Replace(baseConfig, old, new, 1)
}

// lineOf is the 1-based line where marker (which may span lines) starts.
func lineOf(t *testing.T, src, marker string) int {
	t.Helper()
	i := strings.Index(src, marker)
	if i < 0 {
		t.Fatalf("marker %q not in source", marker)
	}
	return strings.Count(src[:i], "\n") + 1
}

// colOf is the 1-based column where marker starts.
func colOf(t *testing.T, src, marker string) int {
	t.Helper()
	i := strings.Index(src, marker)
	return i - strings.LastIndex(src[:i], "\n")
}

func parseErrs(t *testing.T, src string) ValidationErrors {
	t.Helper()
	_, err := Parse([]byte(src), "test.yaml", testOpts)
	if err == nil {
		t.Fatalf("Parse succeeded, want errors")
	}
	var ves ValidationErrors
	if !errors.As(err, &ves) {
		t.Fatalf("error is %T, want ValidationErrors: %v", err, err)
	}
	return ves
}

func TestBaseConfigIsValid(t *testing.T) {
	if _, err := Parse([]byte(baseConfig), "test.yaml", testOpts); err != nil {
		t.Fatal(err)
	}
}

// TestValidationErrorClasses checks one error of each class: its line,
// path and message.
func TestValidationErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		src    string
		marker string // the reported line contains it
		path   string
		msg    string
	}{
		{"unknown key", edit(t, "suppress_for: 30m", "supress_for: 30m"), "supress_for", "rules[0].supress_for", `unknown key "supress_for" (did you mean "suppress_for"?)`},
		{"unknown top-level key", "dedup_ttl: 1h\n" + baseConfig, "dedup_ttl", "dedup_ttl", `unknown key "dedup_ttl"`},
		{"duplicate key", edit(t, "    template: risk_rise\n", "    template: risk_rise\n    template: risk_rise2\n"), "risk_rise2", "rules[0].template", `duplicate key "template" (first at line 27)`},
		{"missing required key", edit(t, "    template: risk_rise\n", ""), "- id: rise", "rules[0].template", "required key is missing or empty"},
		{"unknown policy", edit(t, "    policy: page\n", "    policy: pager\n"), "policy: pager", "rules[0].policy", `unknown policy "pager"`},
		{"unknown agency", edit(t, "{agency: center, role: duty", "{agency: centre, role: duty"), "agency: centre", "policies[0].steps[1].notify[0].agency", `unknown agency or kind "centre"`},
		{"unknown kind in selector", edit(t, "{agency: responsible, role: on_call", "{agency: \"previous:local_police\", role: on_call"), "previous:local_police", "policies[0].steps[0].notify[0].agency", `unknown agency kind "local_police"`},
		{"unknown template", edit(t, "template: risk_rise", "template: risk_rize"), "risk_rize", "rules[0].template", `unknown template "risk_rize"`},
		{"unknown contact", edit(t, "{agency: center, role: duty, via: [email]}", "{contact: center-night, via: [email]}"), "center-night", "policies[0].steps[1].notify[0].contact", `unknown contact "center-night"`},
		{"unknown fallback agency", edit(t, "fallback_agency: center", "fallback_agency: nobody"), "fallback_agency", "fallback_agency", `unknown agency "nobody"`},
		{"bad duration", edit(t, "suppress_for: 30m", "suppress_for: 30x"), "suppress_for", "rules[0].suppress_for", `invalid duration "30x"`},
		{"negative duration", edit(t, "ack_within: 10m", "ack_within: -10m"), "ack_within", "policies[0].steps[0].ack_within", "must not be negative"},
		{"bad cron", edit(t, `cron: "0 7 * * *"`, `cron: "0 25 * * *"`), "cron:", "schedules[0].cron", `invalid cron expression "0 25 * * *"`},
		{"cron with zone prefix", edit(t, `cron: "0 7 * * *"`, `cron: "CRON_TZ=UTC 0 7 * * *"`), "cron:", "schedules[0].cron", "no TZ= prefix"},
		{"bad zone", edit(t, `cron: "0 7 * * *",`, `cron: "0 7 * * *", zone: Europe/Madird,`), "Madird", "schedules[0].zone", `unknown time zone "Europe/Madird"`},
		{"bad agency zone", edit(t, "kind: coordinating_center\n", "kind: coordinating_center\n    time_zone: Atlantic/Canarias\n"), "Canarias", "agencies[0].time_zone", `unknown time zone "Atlantic/Canarias"`},
		{"agency zone Local", edit(t, "kind: coordinating_center\n", "kind: coordinating_center\n    time_zone: Local\n"), "time_zone: Local", "agencies[0].time_zone", `unknown time zone "Local"`},
		{"bad top-level zone", "timezone: Mars/Olympus\n" + baseConfig, "timezone", "timezone", `unknown time zone "Mars/Olympus"`},
		{"expr unknown name", edit(t, `&& transition.rising'`, `&& evnt.rising'`), "evnt", "rules[0].when", "condition does not compile: unknown name evnt (expression 1:34)"},
		{"expr type error", edit(t, `&& transition.rising'`, `&& transition.to >= "alto"'`), "when:", "rules[0].when", "condition does not compile: invalid operation: >= (mismatched types int and string)"},
		{"expr not boolean", edit(t, `'event.type == "risk.assessed" && transition.rising'`, `'transition.to'`), "when:", "rules[0].when", "condition does not compile: expected bool"},
		{"missing role", edit(t, "{agency: responsible, role: on_call, via: [pager, sms]}", "{agency: responsible, role: supervisor, via: [pager, sms]}"), "contacts:\n      - {id: unit-oncall", "agencies[1].contacts", `agency "unit" has no contact with role supervisor reachable by pager, sms, needed by policies[0].steps[0].notify[0]`},
		{"role not reachable by channels", edit(t, "{agency: center, role: duty, via: [email]}", "{agency: center, role: duty, via: [pager]}"), "contacts:\n      - {id: center-duty", "agencies[0].contacts", `agency "center" has no contact with role duty reachable by pager`},
		{"schedule missing role", edit(t, "to: {agency: coordinating_center, role: duty}", "to: {agency: coordinating_center, role: on_call}"), "contacts:\n      - {id: center-duty", "agencies[0].contacts", `no contact with role on_call reachable by email, needed by schedules[0].to`},
		{"schedule relative selector", edit(t, "to: {agency: coordinating_center, role: duty}", "to: {agency: responsible, role: on_call}"), "- {id: digest", "schedules[0].to.agency", "relative to a case"},
		{"duplicate agency id", edit(t, "  - id: unit\n", "  - id: center\n"), "  - id: center\n    name: Police", "agencies[1].id", `duplicate agency id "center" (first at line 3)`},
		{"duplicate contact id", edit(t, "{id: unit-oncall,", "{id: center-duty,"), "{id: center-duty, role: on_call", "agencies[1].contacts[0].id", `duplicate contact id "center-duty"`},
		{"duplicate rule id", edit(t, "schedules:\n", "  - {id: rise, when: 'true', policy: page, template: risk_rise}\nschedules:\n"), "{id: rise, when: 'true'", "rules[1].id", `duplicate rule id "rise" (first at line`},
		{"bad phone", edit(t, `sms: "+34600000098"`, `sms: "600 000 098"`), "600 000 098", "agencies[1].contacts[0].sms", `invalid phone number "600 000 098": want E.164`},
		{"bad email", edit(t, "email: duty@example.org", "email: duty.example.org"), "duty.example.org", "agencies[0].contacts[0].email", `invalid email address "duty.example.org"`},
		{"bad env var name", edit(t, "pager_key_env: PD_UNIT", "pager_key_env: pd-unit"), "pd-unit", "agencies[1].contacts[0].pager_key_env", `invalid environment variable name "pd-unit"`},
		{"bad token hash", edit(t, "    serves: {provinces: [\"13\"]}\n", "    serves: {provinces: [\"13\"]}\n    tokens_sha256: [abc123]\n"), "tokens_sha256", "agencies[1].tokens_sha256[0]", "want a SHA-256 hash of 64 hex characters, got 6 characters"},
		{"bad municipality code", edit(t, `serves: {provinces: ["13"]}`, `serves: {municipalities: [7040]}`), "7040", "agencies[1].serves.municipalities[0]", `invalid code "7040"`},
		{"unknown region", edit(t, "serves: {regions: [CM]}", "serves: {regions: [CLM]}"), "CLM", "agencies[0].serves.regions[0]", `unknown region "CLM"`},
		{"unknown channel", edit(t, "via: [pager, sms]", "via: [pager, fax]"), "fax", "policies[0].steps[0].notify[0].via[1]", `unknown channel "fax"`},
		{"unknown schedule channel", edit(t, "role: duty}, via: [email]}", "role: duty}, via: [mail]}"), "via: [mail]", "schedules[0].via[0]", `unknown channel "mail"`},
		{"list expected", edit(t, "role: duty, via: [email]}\n", "role: duty, via: email}\n"), "via: email", "policies[0].steps[1].notify[0].via", `want a list, got "email"`},
		{"bad severity", edit(t, "    template: risk_rise\n", "    template: risk_rise\n    severity: urgent\n"), "urgent", "rules[0].severity", `unknown severity "urgent"`},
		{"bad level", edit(t, "levels: [alto]", "levels: [high]"), "levels", "schedules[0].digest.levels[0]", `unknown risk level "high"`},
		{"wrong type", edit(t, "ack_within: 10m\n", "ack_within: 10m\n        repeat: twice\n"), "repeat: twice", "policies[0].steps[0].repeat", `want a whole number, got "twice"`},
		{"step never reached", edit(t, "        ack_within: 10m\n", ""), "- notify:", "policies[0].steps[0].ack_within", "needs ack_within"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := parseErrs(t, tc.src)
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1:\n%v", len(errs), errs)
			}
			e := errs[0]
			wantLine := lineOf(t, tc.src, tc.marker)
			if e.File != "test.yaml" || e.Line != wantLine || e.Path != tc.path || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("got  %s\nwant test.yaml:%d:*: %s: ...%s...", e, wantLine, tc.path, tc.msg)
			}
			if !strings.HasPrefix(e.Error(), fmt.Sprintf("test.yaml:%d:%d: %s: ", e.Line, e.Col, e.Path)) {
				t.Errorf("Error() = %q, want file:line:col: path: message", e.Error())
			}
		})
	}
}

func TestExprErrorColumn(t *testing.T) {
	src := edit(t, `&& transition.rising'`, `&& evnt.rising'`)
	e := parseErrs(t, src)[0]
	if want := colOf(t, src, "evnt"); e.Col != want {
		t.Errorf("column %d, want %d (the position of evnt): %s", e.Col, want, e)
	}
	// A literal block: the error's line is the expression's own line.
	src = edit(t, `    when: 'event.type == "risk.assessed" && transition.rising'`,
		"    when: |\n      event.type == \"risk.assessed\"\n        && evnt.rising")
	e = parseErrs(t, src)[0]
	if e.Line != lineOf(t, src, "&& evnt") || e.Col != colOf(t, src, "evnt") {
		t.Errorf("got %d:%d, want %d:%d: %s", e.Line, e.Col, lineOf(t, src, "&& evnt"), colOf(t, src, "evnt"), e)
	}
}

func TestEveryErrorReportedAtOnce(t *testing.T) {
	src := baseConfig
	for _, r := range [][2]string{
		{"suppress_for: 30m", "supress_for: 30m"},         // unknown key
		{`sms: "+34600000098"`, `sms: "12345"`},           // bad phone
		{"ack_within: 10m", "ack_within: soon"},           // bad duration
		{`cron: "0 7 * * *"`, `cron: "61 7 * * *"`},       // bad cron
		{"&& transition.rising'", "&& transition.risen'"}, // expr error
	} {
		src = strings.Replace(src, r[0], r[1], 1)
	}
	errs := parseErrs(t, src)
	if len(errs) != 5 {
		t.Fatalf("got %d errors, want 5:\n%v", len(errs), errs)
	}
	t.Logf("\n%v", errs)
	for i := 1; i < len(errs); i++ {
		if errs[i].Line < errs[i-1].Line {
			t.Errorf("errors not in file order:\n%v", errs)
		}
	}
	if n := strings.Count(errs.Error(), "\n") + 1; n != len(errs) {
		t.Errorf("Error() has %d lines, want %d", n, len(errs))
	}
}

func TestYAMLSyntaxError(t *testing.T) {
	src := edit(t, "    policy: page\n", "    policy: [page\n")
	errs := parseErrs(t, src)
	line, col := lineOf(t, src, "policy: [page"), colOf(t, src, "policy: [page")+len("policy: ")
	if len(errs) != 1 || errs[0].Line != line || errs[0].Col != col ||
		!strings.Contains(errs[0].Msg, "YAML syntax error: did not find expected ',' or ']'") {
		t.Fatalf("got %v, want line %d col %d", errs, line, col)
	}
}

func TestEmptyConfig(t *testing.T) {
	errs := parseErrs(t, "")
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, "empty") {
		t.Fatalf("got %v", errs)
	}
	errs = parseErrs(t, "{}\n")
	if len(errs) != 4 { // fallback_agency, agencies, policies, rules
		t.Fatalf("got %d errors, want 4:\n%v", len(errs), errs)
	}
}

func TestTemplatesNotCheckedWithoutCallback(t *testing.T) {
	src := edit(t, "template: risk_rise", "template: anything")
	if _, err := Parse([]byte(src), "test.yaml", LoadOptions{}); err != nil {
		t.Fatal(err)
	}
}
