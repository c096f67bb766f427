package rules

import (
	"strings"
	"testing"
)

// A configuration the loader accepts must not fail at run time for a
// reason the file holds: every value the delivery stage acts on is held
// to what the channels and templates accept, and the rules that the
// dispatcher refuses to run (suppress_for on a critical rule) are refused
// here, at the line and column an operator looks at.

// refusal is one bad edit of baseConfig and the one error it must give.
type refusal struct {
	name   string
	src    string
	marker string // the error is at the line and column where marker starts
	path   string
	msg    string
}

// addContact appends a contact to the center agency.
func addContact(t *testing.T, fields string) string {
	return edit(t, "      - {id: center-duty, role: duty, email: duty@example.org, sms: \"+34600000099\"}\n",
		"      - {id: center-duty, role: duty, email: duty@example.org, sms: \"+34600000099\"}\n      - {id: center-extra, role: desk, "+fields+"}\n")
}

// addAgency appends an agency with one contact.
func addAgency(t *testing.T, fields string) string {
	return edit(t, "policies:\n", "  - id: extra\n    name: Extra agency\n"+fields+"    contacts:\n      - {id: extra-duty, role: duty, email: extra@example.org}\npolicies:\n")
}

func TestLoadRefusesWhatRunWouldFail(t *testing.T) {
	critical := edit(t, "    suppress_for: 30m\n", "    suppress_for: 30m\n    critical: true\n")
	for _, tc := range []refusal{
		// Webhook URLs: the webhook channel sends to https only.
		{"http webhook", addContact(t, `webhook_url: "http://hooks.example.org/viogen"`), `webhook_url: "http:`, "agencies[0].contacts[1].webhook_url",
			"invalid webhook URL: http:// is refused: the webhook channel sends only to https:// URLs"},
		{"ftp webhook", addContact(t, `webhook_url: "ftp://hooks.example.org/viogen"`), "webhook_url", "agencies[0].contacts[1].webhook_url",
			`invalid webhook URL: scheme "ftp" is refused: want https://`},
		{"relative webhook", addContact(t, `webhook_url: "hooks.example.org/viogen"`), "webhook_url", "agencies[0].contacts[1].webhook_url",
			"invalid webhook URL: want an absolute https:// URL with a host"},
		{"webhook without host", addContact(t, `webhook_url: "https:///viogen"`), "webhook_url", "agencies[0].contacts[1].webhook_url",
			"want an absolute https:// URL with a host"},
		// Phone numbers: E.164, as the sms channel sends.
		{"phone with spaces", addContact(t, `sms: "+34 600 000 001"`), "sms: \"+34 600", "agencies[0].contacts[1].sms", `invalid phone number "+34 600 000 001": want E.164`},
		{"phone with 00 prefix", addContact(t, `sms: "0034600000001"`), "sms: \"0034", "agencies[0].contacts[1].sms", `invalid phone number "0034600000001"`},
		{"phone too long", addContact(t, `sms: "+3460000000112345"`), "sms: \"+3460000000112", "agencies[0].contacts[1].sms", "want E.164"},
		// Email: a bare address that go-mail's parser (net/mail) reads back.
		{"email leading dot", addContact(t, `email: .desk@example.org`), "email: .desk", "agencies[0].contacts[1].email", `invalid email address ".desk@example.org"`},
		{"email double dot", addContact(t, `email: desk..night@example.org`), "email: desk..", "agencies[0].contacts[1].email", `invalid email address "desk..night@example.org"`},
		{"email with name", addContact(t, `email: "Desk <desk@example.org>"`), "email: \"Desk", "agencies[0].contacts[1].email", "want a bare address"},
		{"email without domain dot", addContact(t, `email: desk@example`), "email: desk@example}", "agencies[0].contacts[1].email", "invalid email address"},
		// Environment variable names.
		{"pager env lower case", addContact(t, `pager_key_env: pd_desk`), "pager_key_env", "agencies[0].contacts[1].pager_key_env", `invalid environment variable name "pd_desk"`},
		{"pager env leading digit", addContact(t, `pager_key_env: 1PD`), "pager_key_env", "agencies[0].contacts[1].pager_key_env", `invalid environment variable name "1PD"`},
		{"webhook secret env", addContact(t, `webhook_url: "https://hooks.example.org/v", webhook_secret_env: WEBHOOK-SECRET`), "webhook_secret_env", "agencies[0].contacts[1].webhook_secret_env", `invalid environment variable name "WEBHOOK-SECRET"`},
		// Locales: only those the templates have.
		{"unknown top-level locale", "locale: fr\n" + baseConfig, "locale", "locale", `unknown locale "fr": the templates have es, ca, en`},
		{"unknown agency locale", addAgency(t, "    kind: victim_support\n    locale: fr-FR\n"), "locale: fr-FR", "agencies[2].locale", `unknown locale "fr-FR"`},
		{"malformed locale", "locale: ES\n" + baseConfig, "locale", "locale", `invalid locale "ES"`},
		// Kinds: a typo of a known kind.
		{"kind centre", addAgency(t, "    kind: coordinating_centre\n"), "kind: coordinating_centre", "agencies[2].kind",
			`unknown agency kind "coordinating_centre" (did you mean "coordinating_center"?)`},
		{"kind local_polic", addAgency(t, "    kind: local_polic\n"), "kind: local_polic", "agencies[2].kind",
			`unknown agency kind "local_polic" (did you mean "local_police"?)`},
		{"kind singular", addAgency(t, "    kind: social_service\n"), "kind: social_service", "agencies[2].kind",
			`(did you mean "social_services"?)`},
		{"kind not snake case", addAgency(t, "    kind: Local-Police\n"), "kind: Local-Police", "agencies[2].kind",
			`invalid kind "Local-Police": use lower_snake_case (did you mean "local_police"?)`},
		{"selector typo", edit(t, "to: {agency: coordinating_center,", "to: {agency: coordinating_centre,"), "agency: coordinating_centre", "schedules[0].to.agency",
			`unknown agency or kind "coordinating_centre" (did you mean "coordinating_center"?)`},
		{"previous selector typo", edit(t, "{agency: responsible, role: on_call", `{agency: "previous:responsible_unti", role: on_call`), `agency: "previous:`, "policies[0].steps[0].notify[0].agency",
			`unknown agency kind "responsible_unti" in selector "previous:responsible_unti" (did you mean "responsible_unit"?)`},
		// Critical rules take no suppression window.
		{"suppress_for on critical rule", critical, "suppress_for: 30m", "rules[0].suppress_for",
			"suppress_for is refused on a critical rule: critical alerts are never suppressed by a time window"},
	} {
		t.Run(tc.name, func(t *testing.T) { assertRefusal(t, tc, testOpts) })
	}
}

func assertRefusal(t *testing.T, tc refusal, opts LoadOptions) {
	t.Helper()
	_, err := Parse([]byte(tc.src), "test.yaml", opts)
	if err == nil {
		t.Fatalf("Parse accepted it, want %s: %s", tc.path, tc.msg)
	}
	errs, ok := err.(ValidationErrors)
	if !ok || len(errs) != 1 {
		t.Fatalf("want exactly one error, got %d:\n%v", len(errs), err)
	}
	e := errs[0]
	line, col := lineOf(t, tc.src, tc.marker), colOf(t, tc.src, tc.marker)
	if e.File != "test.yaml" || e.Line != line || e.Col != col || e.Path != tc.path || !strings.Contains(e.Msg, tc.msg) {
		t.Errorf("got  %s\nwant test.yaml:%d:%d: %s: ...%s...", e, line, col, tc.path, tc.msg)
	}
}

// The schedule's kind selector, left without its agency by a typo'd kind,
// is reported too, without suggesting the typo back.
func TestKindTypoNotSuggested(t *testing.T) {
	src := edit(t, "    kind: coordinating_center\n", "    kind: coordinating_centre\n")
	errs := parseErrs(t, src)
	if len(errs) != 2 || errs[0].Path != "agencies[0].kind" || errs[1].Path != "schedules[0].to.agency" {
		t.Fatalf("got %v", errs)
	}
	if strings.Contains(errs[1].Msg, "did you mean") {
		t.Errorf("suggests the typo: %s", errs[1])
	}
}

// A template without a version for a channel a policy sends on fails
// every such send; with the templates' HasChannel the loader refuses it.
func TestTemplateChannelRefused(t *testing.T) {
	opts := testOpts
	opts.TemplateChannel = func(name, ch string) bool { return !(name == "risk_rise" && ch == "pager") }
	assertRefusal(t, refusal{"risk_rise without pager", baseConfig, "template: risk_rise", "rules[0].template",
		`template "risk_rise" has no pager version, yet policy page sends on pager`}, opts)
	opts.TemplateChannel = func(name, ch string) bool { return !(name == "patrol_digest" && ch == "email") }
	assertRefusal(t, refusal{"digest without email", baseConfig, "{id: digest", "schedules[0].template",
		`template "patrol_digest" has no email version, yet schedule digest sends on email`}, opts)
	opts.TemplateChannel = func(string, string) bool { return true }
	if _, err := Parse([]byte(baseConfig), "test.yaml", opts); err != nil {
		t.Fatal(err)
	}
}

// Locales given through LoadOptions (template overrides may add one)
// replace the embedded list.
func TestLocalesOption(t *testing.T) {
	opts := testOpts
	opts.Locales = []string{"es", "fr"}
	if _, err := Parse([]byte("locale: fr\n"+baseConfig), "test.yaml", opts); err != nil {
		t.Fatal(err)
	}
	assertRefusal(t, refusal{"en not in the set", "locale: en\n" + baseConfig, "locale", "locale", `unknown locale "en": the templates have es, fr`}, opts)
}

// The inverse: values at the edge of what is accepted still load.
func TestLoadAcceptsValidValues(t *testing.T) {
	for _, tc := range []struct{ name, src string }{
		{"https webhook with port and query", addContact(t, `webhook_url: "https://hooks.example.org:8443/v1/viogen?src=dispatcher"`)},
		{"https webhook with secret", addContact(t, `webhook_url: "https://hooks.example.org/v", webhook_secret_env: WEBHOOK_SECRET_DESK`)},
		{"15-digit phone", addContact(t, `sms: "+346000000011234"`)},
		{"email with plus and subdomain", addContact(t, `email: desk+night@mail.example.org`)},
		{"locale ca", "locale: ca\n" + baseConfig},
		{"locale en-GB", "locale: en-GB\n" + baseConfig},
		{"agency locale es-ES", addAgency(t, "    kind: victim_support\n    locale: es-ES\n")},
		{"every known kind", addAgency(t, "    kind: island_council\n")},
		{"own kind far from known ones", addAgency(t, "    kind: victim_support\n")},
		{"critical rule without window", edit(t, "    suppress_for: 30m\n", "    critical: true\n")},
		{"critical rule with window 0", edit(t, "    suppress_for: 30m\n", "    suppress_for: 0s\n    critical: true\n")},
		{"severity critical, not a critical rule", edit(t, "    suppress_for: 30m\n", "    severity: critical\n    suppress_for: 30m\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.src), "test.yaml", testOpts); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// YAML syntax errors are reported at the line (and column) of the
// problem, not where yaml.v3 says the enclosing block began.
func TestYAMLSyntaxErrorLines(t *testing.T) {
	for _, tc := range []struct {
		name, src, marker, msg string
		colOffset              int // from the marker's start
	}{
		{"tab indentation", edit(t, "    policy: page\n", "\tpolicy: page\n"), "\tpolicy: page", "(a tab in the indentation: indent with spaces, never tabs)", 0},
		{"tab deep in a list", edit(t, "        ack_within: 10m\n", "  \t      ack_within: 10m\n"), "  \t      ack_within", "(a tab in the indentation", 2},
		{"tab after a key", edit(t, "    policy: page\n", "    policy:\n\t page\n"), "\t page", "(a tab in the indentation", 0},
		{"unclosed double quote at the end", edit(t, "role: duty}, via: [email]}", "role: duty}, via: [\"email]}"), "[\"email", "found unexpected end of stream (an unclosed quote?)", 1},
		{"unclosed single quote", edit(t, `when: 'event.type == "risk.assessed" && transition.rising'`, `when: 'event.type == "risk.assessed" && transition.rising`), "'event.type", "(an unclosed quote?)", 0},
		{"unclosed flow mapping", edit(t, "to: {agency: coordinating_center, role: duty}", "to: {agency: coordinating_center, role: duty"), "{id: digest", "did not find expected ',' or '}' (an unclosed bracket?)", 0},
		{"unclosed quote running on", edit(t, "    template: risk_rise\n", "    template: \"risk_rise\n"), "    template: \"risk_rise", "an unclosed quote? The quoted value that starts here runs on to line 30", len("    template: ")},
		{"mis-indented list item", edit(t, "    name: Police unit\n", "     name: Police unit\n"), "     name: Police unit", "", len("     ")},
		{"unknown anchor", edit(t, "    policy: page\n", "    policy: *pages\n"), "*pages", "unknown anchor 'pages' referenced", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := parseErrs(t, tc.src)
			if len(errs) != 1 {
				t.Fatalf("got %d errors:\n%v", len(errs), errs)
			}
			e := errs[0]
			line, col := lineOf(t, tc.src, tc.marker), colOf(t, tc.src, tc.marker)+tc.colOffset
			if e.Line != line || e.Col != col || !strings.HasPrefix(e.Msg, "YAML syntax error: ") || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("got  %s\nwant test.yaml:%d:%d: YAML syntax error: ...%s...", e, line, col, tc.msg)
			}
		})
	}
}
