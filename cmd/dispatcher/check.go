package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/viogen-alerts/dispatcher/channels/webhook"
	"github.com/viogen-alerts/dispatcher/rules"
)

const checkHelp = `Usage: dispatcher check [flags] [FILE]

Validate a configuration file and its message templates without starting
anything, like 'amtool check-config'. FILE, when given, wins over --config.

Valid: exit 0 and a summary on stdout (agencies, contacts, policies, rules,
schedules with their next firing, templates used); warnings on stderr about
things that will not stop the dispatcher but are worth knowing (a pager
routing key or webhook secret variable unset in this environment, an agency
or contact no policy or schedule can reach). Only variable names are shown,
never their values.

Invalid: exit 1 and every problem on stderr, one per line, in file order:
  FILE:LINE:COL: PATH: MESSAGE

'run' loads the file through the same validation, with the same messages:
what check accepts, run loads, and what run would refuse or fail every send
on (an http:// webhook, a locale without templates, suppress_for on a
critical rule, ...), check refuses. YAML syntax errors are reported at the
line of the problem.

Environment (flags win):
  DISPATCHER_CONFIG    configuration file (YAML)
  TEMPLATE_DIR         directory of template overrides`

func cmdCheck(_ context.Context, args []string, io stdio, getenv env) int {
	fs := newFlagSet("check", checkHelp, io.err)
	config := fs.String("config", getenv("DISPATCHER_CONFIG"), "configuration file (env DISPATCHER_CONFIG)")
	tmplDir := fs.String("templates", getenv("TEMPLATE_DIR"), "directory of template overrides (env TEMPLATE_DIR)")
	nowFlag := fs.String("now", "", "RFC 3339 time schedules' next firings are computed from (default: the current time)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 { // FILE, then possibly more flags
		*config = fs.Arg(0)
		if code, done := parseFlags(fs, fs.Args()[1:]); done {
			return code
		}
		if fs.NArg() > 0 {
			fs.Usage()
			return 2
		}
	}
	now, err := parseNowFlag(*nowFlag)
	if err != nil {
		fmt.Fprintln(io.err, "dispatcher check:", err)
		return 2
	}
	a, err := loadApp(*config, *tmplDir)
	if err != nil {
		var verrs rules.ValidationErrors
		if errors.As(err, &verrs) {
			for _, e := range verrs {
				fmt.Fprintln(io.err, e.Error())
			}
			fmt.Fprintf(io.err, "dispatcher check: %s is invalid: %s\n", *config, pluralize(len(verrs), "error"))
			return 1
		}
		fmt.Fprintln(io.err, "dispatcher check:", err)
		return 1
	}
	warnings := checkWarnings(a, getenv)
	writeSummary(io.out, a, now, len(warnings))
	for _, w := range warnings {
		fmt.Fprintln(io.err, "warning:", w)
	}
	return 0
}

// parseNowFlag reads a --now flag; "" is the current time.
func parseNowFlag(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--now %q: want an RFC 3339 time such as 2026-03-10T12:00:00+01:00", s)
	}
	return t, nil
}

func writeSummary(w io.Writer, a *app, now time.Time, warnings int) {
	cfg := a.cfg
	kinds := map[string]int{}
	contacts := 0
	for _, ag := range cfg.Agencies {
		kinds[ag.Kind]++
		contacts += len(ag.Contacts)
	}
	critical := 0
	for _, r := range cfg.Rules {
		if r.Critical {
			critical++
		}
	}
	fmt.Fprintf(w, "%s: valid\n", cfg.File())
	fmt.Fprintf(w, "  timezone:   %s (locale %s)\n", cfg.Timezone, cfg.Locale)
	fmt.Fprintf(w, "  agencies:   %d (%s)\n", len(cfg.Agencies), countByName(kinds))
	fmt.Fprintf(w, "  contacts:   %d\n", contacts)
	fmt.Fprintf(w, "  policies:   %d\n", len(cfg.Policies))
	fmt.Fprintf(w, "  rules:      %d (%d critical)\n", len(cfg.Rules), critical)
	fmt.Fprintf(w, "  schedules:  %d\n", len(cfg.Schedules))
	for i := range cfg.Schedules {
		s := &cfg.Schedules[i]
		next := s.Next(now).In(s.Location())
		fmt.Fprintf(w, "    %s  %q in %s, next %s\n", s.ID, s.Cron, s.Zone, next.Format("2006-01-02 15:04 MST (Z07:00)"))
	}
	fallback := cfg.FallbackAgency
	if ag, ok := cfg.Agency(fallback); ok {
		fallback += " (" + ag.Name + ")"
	}
	fmt.Fprintf(w, "  fallback:   %s\n", fallback)
	fmt.Fprintf(w, "  templates:  %s\n", strings.Join(templatesUsed(cfg), ", "))
	fmt.Fprintf(w, "  warnings:   %d\n", warnings)
}

// countByName writes "2 local_police, 1 social_services", sorted by name.
func countByName(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}

func templatesUsed(cfg *rules.Config) []string {
	var names []string
	for _, r := range cfg.Rules {
		names = append(names, r.Template)
	}
	for _, s := range cfg.Schedules {
		names = append(names, s.Template)
	}
	sort.Strings(names)
	return slices.Compact(names)
}

func pluralize(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// checkWarnings lists what a valid configuration may still get wrong at
// run time, sorted. It names environment variables, never their values.
func checkWarnings(a *app, getenv env) []string {
	var out []string
	out = append(out, secretWarnings(a.cfg, getenv)...)
	out = append(out, reachWarnings(a.cfg)...)
	out = append(out, channelWarnings(a)...)
	sort.Strings(out)
	return slices.Compact(out)
}

// secretWarnings reports unset pager key and webhook secret variables, and
// webhook secrets too short to sign with: the channel is planned (the
// contact has the variable's name) but would fail. They depend on the
// environment run has, not on the file, so they warn.
func secretWarnings(cfg *rules.Config, getenv env) []string {
	var out []string
	for _, ag := range cfg.Agencies {
		for _, ct := range ag.Contacts {
			if ct.PagerKeyEnv != "" && getenv(ct.PagerKeyEnv) == "" {
				out = append(out, fmt.Sprintf("contact %s: pager_key_env %s is not set in this environment: pages to it will fail", ct.ID, ct.PagerKeyEnv))
			}
			switch v := getenv(ct.WebhookSecretEnv); {
			case ct.WebhookSecretEnv == "":
			case v == "":
				out = append(out, fmt.Sprintf("contact %s: webhook_secret_env %s is not set in this environment: webhooks to it will fail", ct.ID, ct.WebhookSecretEnv))
			case len(v) < webhook.MinSecretLen:
				out = append(out, fmt.Sprintf("contact %s: webhook_secret_env %s is shorter than %d bytes in this environment: webhooks to it will fail", ct.ID, ct.WebhookSecretEnv, webhook.MinSecretLen))
			}
		}
	}
	return out
}

// reachWarnings reports agencies and contacts that no policy target or
// schedule can ever select. The fallback agency is always reachable.
func reachWarnings(cfg *rules.Config) []string {
	kinds := map[string]bool{}
	for _, ag := range cfg.Agencies {
		kinds[ag.Kind] = true
	}
	reached := map[string]bool{} // agency ids
	contacts := map[string]bool{}
	mark := func(spec rules.TargetSpec, byArea bool, agencies []*rules.Agency) {
		for _, ag := range agencies {
			if byArea && !servesSomething(ag) {
				continue
			}
			reached[ag.ID] = true
			for _, ct := range ag.Contacts {
				if (spec.Contact == "" || spec.Contact == ct.ID) && (spec.Role == "" || spec.Role == ct.Role) && canUse(ct, spec) {
					contacts[ct.ID] = true
				}
			}
		}
	}
	for _, p := range cfg.Policies {
		for _, st := range p.Steps {
			for _, spec := range st.Notify {
				agencies, byArea := selected(cfg, kinds, spec)
				mark(spec, byArea, agencies)
			}
		}
	}
	for _, s := range cfg.Schedules {
		spec := rules.TargetSpec{Agency: s.To.Agency, Role: s.To.Role, Via: s.Via}
		agencies, _ := selected(cfg, kinds, spec)
		mark(spec, false, agencies)
	}
	var out []string
	for _, ag := range cfg.Agencies {
		if ag.ID == cfg.FallbackAgency {
			continue
		}
		if !reached[ag.ID] {
			out = append(out, fmt.Sprintf("agency %s (kind %s) is not reached by any policy or schedule", ag.ID, ag.Kind))
			continue
		}
		for _, ct := range ag.Contacts {
			if !contacts[ct.ID] {
				out = append(out, fmt.Sprintf("contact %s (agency %s, role %s) is not reached by any policy or schedule", ct.ID, ag.ID, ct.Role))
			}
		}
	}
	return out
}

// selected lists the agencies a target selector can ever pick; byArea is
// true when they are picked by the area they serve. It mirrors the
// selector syntax of rules.Config.Resolve: responsible selectors reach
// agencies of kind responsible_unit, as the load-time role checks assume.
func selected(cfg *rules.Config, kinds map[string]bool, spec rules.TargetSpec) (agencies []*rules.Agency, byArea bool) {
	ofKind := func(kind string) []*rules.Agency {
		var out []*rules.Agency
		for i := range cfg.Agencies {
			if cfg.Agencies[i].Kind == kind {
				out = append(out, &cfg.Agencies[i])
			}
		}
		return out
	}
	sel := spec.Agency
	switch {
	case spec.Contact != "":
		for i := range cfg.Agencies {
			for _, ct := range cfg.Agencies[i].Contacts {
				if ct.ID == spec.Contact {
					return []*rules.Agency{&cfg.Agencies[i]}, false
				}
			}
		}
		return nil, false
	case sel == rules.SelectResponsible || sel == rules.SelectPreviousResponsible:
		return ofKind(rules.KindResponsibleUnit), false
	case strings.HasPrefix(sel, rules.SelectPreviousPrefix):
		return ofKind(strings.TrimPrefix(sel, rules.SelectPreviousPrefix)), true
	case strings.HasPrefix(sel, rules.SelectReleasePrefix):
		return ofKind(strings.TrimPrefix(sel, rules.SelectReleasePrefix)), true
	case kinds[sel]:
		return ofKind(sel), true
	}
	if ag, ok := cfg.Agency(sel); ok {
		return []*rules.Agency{ag}, false
	}
	return nil, false
}

func servesSomething(ag *rules.Agency) bool {
	s := ag.Serves
	return len(s.Municipalities)+len(s.Provinces)+len(s.Regions) > 0
}

// canUse reports whether the contact has an address for one of the
// target's channels, planned or fallback.
func canUse(ct rules.Contact, spec rules.TargetSpec) bool {
	for _, ch := range append(append([]string(nil), spec.Via...), spec.Fallback...) {
		switch {
		case ch == rules.ChannelSMS && ct.SMS != "",
			ch == rules.ChannelEmail && ct.Email != "",
			ch == rules.ChannelPager && ct.PagerKeyEnv != "",
			ch == rules.ChannelWebhook && ct.WebhookURL != "":
			return true
		}
	}
	return false
}

// channelWarnings reports a rule or schedule whose template has no
// version for a channel its policy may send on (possible with overrides
// that add a template): such a message cannot be rendered.
func channelWarnings(a *app) []string {
	var out []string
	check := func(what, tmpl string, chans []string) {
		for _, ch := range chans {
			if !a.tmpl.HasChannel(tmpl, ch) {
				out = append(out, fmt.Sprintf("%s: template %s has no %s version", what, tmpl, ch))
			}
		}
	}
	for _, r := range a.cfg.Rules {
		p, ok := a.cfg.Policy(r.Policy)
		if !ok {
			continue
		}
		for _, st := range p.Steps {
			for _, spec := range st.Notify {
				check("rule "+r.ID, r.Template, append(append([]string(nil), spec.Via...), spec.Fallback...))
			}
		}
	}
	for _, s := range a.cfg.Schedules {
		check("schedule "+s.ID, s.Template, s.Via)
	}
	return out
}
