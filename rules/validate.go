package rules

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
)

var (
	idRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	wordRe   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	e164Re   = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)
	emailRe  = regexp.MustCompile(`^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$`)
	envRe    = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	muniRe   = regexp.MustCompile(`^[0-9]{5}$`)
	provRe   = regexp.MustCompile(`^[0-9]{2}$`)
	sha256Re = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	localeRe = regexp.MustCompile(`^[a-z]{2}(-[A-Z]{2})?$`)
)

// Severities, as PagerDuty names them.
var Severities = []string{"info", "warning", "error", "critical"}

// validator checks what the decoder cannot: formats, uniqueness,
// references, expressions, cron, zones and role coverage.
type validator struct {
	*reporter
	cfg      *Config
	values   map[string]*yaml.Node
	src      []byte
	opt      LoadOptions
	agencyAt map[string]string // agency id -> path of its id
	agencyOf map[string]string // agency id -> path of the agency
	needs    map[string]bool   // agency|role|channels already reported
}

func (v *validator) run() {
	v.agencyAt = map[string]string{}
	v.agencyOf = map[string]string{}
	v.needs = map[string]bool{}
	v.top()
	v.agencies()
	v.periods()
	v.policies()
	v.rules()
	v.schedules()
	v.operators()
	v.rateLimits()
}

func (v *validator) top() {
	c := v.cfg
	loc, err := loadZone(c.Timezone)
	if err != nil {
		v.errorf("timezone", "unknown time zone %q", c.Timezone)
	}
	c.loc = loc
	if msg := localeProblem(c.Locale, v.locales()); msg != "" {
		v.errorf("locale", "%s", msg)
	}
	if c.FallbackAgency != "" {
		if a := c.dir.byID[c.FallbackAgency]; a == nil {
			v.errorf("fallback_agency", "unknown agency %q", c.FallbackAgency)
		}
	}
}

// unique reports a repeated id; seen maps ids to the path of their first
// use.
func (v *validator) unique(seen map[string]string, what, id, path string) {
	if id == "" {
		return
	}
	if first, dup := seen[id]; dup {
		v.errorf(path, "duplicate %s id %q (first at line %d)", what, id, v.at(first).line)
		return
	}
	seen[id] = path
}

func (v *validator) agencies() {
	contactIDs := map[string]string{}
	for i := range v.cfg.Agencies {
		a := &v.cfg.Agencies[i]
		path := indexPath("agencies", i)
		v.unique(v.agencyAt, "agency", a.ID, path+".id")
		if _, dup := v.agencyOf[a.ID]; !dup {
			v.agencyOf[a.ID] = path
		}
		switch {
		case a.ID == "":
		case !idRe.MatchString(a.ID):
			v.errorf(path+".id", "invalid agency id %q: use lower case letters, digits, '-' and '_'", a.ID)
		case a.ID == SelectResponsible || a.ID == SelectPreviousResponsible:
			v.errorf(path+".id", "agency id %q is a reserved selector", a.ID)
		case v.cfg.dir.kinds[a.ID] != nil:
			v.errorf(path+".id", "agency id %q is also an agency kind; selectors would be ambiguous", a.ID)
		}
		switch {
		case a.Kind == "":
		case !wordRe.MatchString(a.Kind):
			v.errorf(path+".kind", "invalid kind %q: use lower_snake_case%s", a.Kind,
				didYouMean(closest(normWord(a.Kind), KnownKinds, kindTypoDistance)))
		case a.Kind == SelectResponsible || a.Kind == SelectPreviousResponsible:
			v.errorf(path+".kind", "kind %q is a reserved selector", a.Kind)
		default:
			if s := typoOf(a.Kind, KnownKinds, kindTypoDistance); s != "" {
				v.errorf(path+".kind", "unknown agency kind %q (did you mean %q?): a kind this close to a known one is a typo, and would keep the agency out of every target of kind %s", a.Kind, s, s)
			}
		}
		// An inherited locale is reported once, at the top-level key.
		if v.values[path+".locale"] != nil {
			if msg := localeProblem(a.Locale, v.locales()); msg != "" {
				v.errorf(path+".locale", "%s", msg)
			}
		}
		v.agencyZone(a, path)
		v.codes(path+".serves.municipalities", a.Serves.Municipalities, muniRe, "INE municipality code of 5 digits")
		v.codes(path+".serves.provinces", a.Serves.Provinces, provRe, "province code of 2 digits")
		for j, r := range a.Serves.Regions {
			if !knownRegion(r) {
				v.errorf(indexPath(path+".serves.regions", j), "unknown region %q: want an ISO 3166-2:ES community code such as CM or IB", r)
			}
		}
		for j, h := range a.TokensSHA256 {
			if !sha256Re.MatchString(h) {
				v.errorf(indexPath(path+".tokens_sha256", j), "want a SHA-256 hash of 64 hex characters, got %d characters", len(h))
			}
		}
		for j := range a.Contacts {
			v.contact(&a.Contacts[j], indexPath(path+".contacts", j), contactIDs)
		}
	}
}

func (v *validator) codes(path string, codes []string, re *regexp.Regexp, want string) {
	for i, c := range codes {
		if !re.MatchString(c) {
			v.errorf(indexPath(path, i), "invalid code %q: want an %s (quote it in YAML)", c, want)
		}
	}
}

func (v *validator) contact(ct *Contact, path string, seen map[string]string) {
	v.unique(seen, "contact", ct.ID, path+".id")
	if ct.ID != "" && !idRe.MatchString(ct.ID) {
		v.errorf(path+".id", "invalid contact id %q: use lower case letters, digits, '-' and '_'", ct.ID)
	}
	if ct.Role != "" && !wordRe.MatchString(ct.Role) {
		v.errorf(path+".role", "invalid role %q: use lower_snake_case", ct.Role)
	}
	if ct.SMS != "" && !validPhone(ct.SMS) {
		v.errorf(path+".sms", "invalid phone number %q: want E.164, e.g. +34600000001", ct.SMS)
	}
	if ct.Email != "" && !validEmail(ct.Email) {
		v.errorf(path+".email", "invalid email address %q: want a bare address such as duty@example.org", ct.Email)
	}
	for _, env := range []struct{ key, val string }{{"pager_key_env", ct.PagerKeyEnv}, {"webhook_secret_env", ct.WebhookSecretEnv}} {
		if env.val != "" && !envRe.MatchString(env.val) {
			v.errorf(path+"."+env.key, "invalid environment variable name %q: want [A-Z_][A-Z0-9_]*", env.val)
		}
	}
	if ct.WebhookURL != "" {
		if msg := webhookURLProblem(ct.WebhookURL); msg != "" {
			v.errorf(path+".webhook_url", "invalid webhook URL: %s", msg)
		}
	} else if ct.WebhookSecretEnv != "" {
		v.errorf(path+".webhook_secret_env", "webhook_secret_env without webhook_url")
	}
	if len(contactChannels(ct)) == 0 {
		v.errorf(path, "contact has no address: give at least one of sms, email, pager_key_env, webhook_url")
	}
}

func (v *validator) periods() {
	c := v.cfg
	for _, p := range []struct {
		key string
		cp  *CheckinPeriod
	}{{"bajo", c.Checkins.Bajo}, {"medio", c.Checkins.Medio}, {"alto", c.Checkins.Alto}, {"extremo", c.Checkins.Extremo}} {
		if p.cp != nil && p.cp.Every <= 0 {
			v.errorf("checkins."+p.key+".every", "must be greater than zero")
		}
	}
	for _, p := range []struct {
		key string
		d   *Duration
	}{{"bajo", c.Reassessments.Bajo}, {"medio", c.Reassessments.Medio}, {"alto", c.Reassessments.Alto}, {"extremo", c.Reassessments.Extremo}} {
		if p.d != nil && *p.d <= 0 {
			v.errorf("reassessment."+p.key, "must be greater than zero")
		}
	}
}

func (v *validator) policies() {
	seen := map[string]string{}
	for i := range v.cfg.Policies {
		p := &v.cfg.Policies[i]
		path := indexPath("policies", i)
		v.unique(seen, "policy", p.ID, path+".id")
		if p.ID != "" && !idRe.MatchString(p.ID) {
			v.errorf(path+".id", "invalid policy id %q: use lower case letters, digits, '-' and '_'", p.ID)
		}
		for j, st := range p.Steps {
			sp := indexPath(path+".steps", j)
			if st.Repeat < 0 || st.Repeat > 10 {
				v.errorf(sp+".repeat", "repeat must be from 0 to 10, got %d", st.Repeat)
			} else if st.Repeat > 0 && st.AckWithin == 0 {
				v.errorf(sp+".repeat", "repeat needs ack_within (the interval between repeats)")
			}
			if st.AckWithin == 0 && j < len(p.Steps)-1 && v.values[sp+".ack_within"] == nil {
				v.errorf(sp+".ack_within", "a step followed by others needs ack_within, or the later steps are never sent")
			}
			for k, t := range st.Notify {
				v.target(t, indexPath(sp+".notify", k), false)
			}
		}
	}
}

func knownChannels(chans []string) bool {
	for _, ch := range chans {
		if !contains(allChannels, ch) {
			return false
		}
	}
	return true
}

func (v *validator) channels(path string, chans []string, exclude []string) {
	seen := map[string]bool{}
	for i, ch := range chans {
		switch {
		case !contains(allChannels, ch):
			v.errorf(indexPath(path, i), "unknown channel %q: want sms, email, pager or webhook", ch)
		case seen[ch]:
			v.errorf(indexPath(path, i), "channel %q listed twice", ch)
		case contains(exclude, ch):
			v.errorf(indexPath(path, i), "channel %q is already in via", ch)
		}
		seen[ch] = true
	}
}

// target checks one target spec of a policy step (or, with schedule set,
// the recipients of a schedule, which have no case to be relative to).
func (v *validator) target(t TargetSpec, path string, schedule bool) {
	d := &v.cfg.dir
	if !schedule { // a schedule's channels are checked at its own via
		v.channels(path+".via", t.Via, nil)
		v.channels(path+".fallback", t.Fallback, t.Via)
	}
	if t.Role != "" && !wordRe.MatchString(t.Role) {
		v.errorf(path+".role", "invalid role %q: use lower_snake_case", t.Role)
	}
	if t.Contact != "" {
		ref, ok := d.contacts[t.Contact]
		switch {
		case !ok:
			v.errorf(path+".contact", "unknown contact %q", t.Contact)
		case t.Role != "":
			v.errorf(path+".role", "give either role or contact, not both")
		case t.Agency != "" && t.Agency != ref.agency.ID:
			v.errorf(path+".contact", "contact %q belongs to agency %q, not %q", t.Contact, ref.agency.ID, t.Agency)
		case len(t.Via) > 0:
			if !canReach(ref.contact, &t) {
				v.errorf(path+".contact", "contact %q has no address for %s", t.Contact, channelList(t))
			}
		}
		return
	}
	if t.Agency == "" {
		v.errorf(path+".agency", "give agency or contact")
		return
	}
	sel := d.parseSelector(t.Agency)
	var agencies []*Agency
	switch sel.kind {
	case selResponsible, selPreviousResponsible:
		if schedule {
			v.errorf(path+".agency", "%q is relative to a case; a schedule needs an agency kind or id", t.Agency)
			return
		}
		agencies = d.kinds[KindResponsibleUnit]
	case selPreviousKind, selReleaseKind:
		if schedule {
			v.errorf(path+".agency", "%q is relative to a case; a schedule needs an agency kind or id", t.Agency)
			return
		}
		agencies = d.kinds[sel.arg]
		if agencies == nil {
			v.errorf(path+".agency", "unknown agency kind %q in selector %q%s", sel.arg, t.Agency,
				didYouMean(typoOf(sel.arg, v.kindNames(), kindTypoDistance)))
			return
		}
	case selByKind:
		agencies = d.kinds[sel.arg]
	default:
		a := d.byID[sel.arg]
		if a == nil {
			v.errorf(path+".agency", "unknown agency or kind %q%s", t.Agency,
				didYouMean(typoOf(sel.arg, append(v.kindNames(), v.agencyIDs()...), kindTypoDistance)))
			return
		}
		agencies = []*Agency{a}
	}
	if len(t.Via) == 0 || !knownChannels(t.Via) || !knownChannels(t.Fallback) {
		return // reported at via / fallback
	}
	for _, a := range agencies {
		v.needContact(a, t, path)
	}
}

// needContact reports an agency a target would reach with no contact:
// the role is missing or no contact of it has an address for the plan.
func (v *validator) needContact(a *Agency, t TargetSpec, path string) {
	if hasContactFor(a, &t) {
		return
	}
	key := a.ID + "|" + t.Role + "|" + channelList(t)
	if v.needs[key] {
		return
	}
	v.needs[key] = true
	ap := v.agencyOf[a.ID]
	v.errorf(ap+".contacts", "agency %q has no contact%s reachable by %s, needed by %s (line %d)",
		a.ID, roleText(t.Role), channelList(t), path, v.at(path).line)
}

func (v *validator) template(path, name string) {
	if name != "" && v.opt.Templates != nil && !v.opt.Templates(name) {
		v.errorf(path, "unknown template %q", name)
	}
}

func (v *validator) rules() {
	seen := map[string]string{}
	for i := range v.cfg.Rules {
		r := &v.cfg.Rules[i]
		path := indexPath("rules", i)
		v.unique(seen, "rule", r.ID, path+".id")
		if r.ID != "" && !idRe.MatchString(r.ID) {
			v.errorf(path+".id", "invalid rule id %q: use lower case letters, digits, '-' and '_'", r.ID)
		}
		if r.When != "" {
			v.compile(r, path+".when")
		}
		if r.Policy != "" {
			if _, ok := v.cfg.Policy(r.Policy); !ok {
				v.errorf(path+".policy", "unknown policy %q", r.Policy)
			}
		}
		v.template(path+".template", r.Template)
		if !contains(Severities, r.Severity) {
			v.errorf(path+".severity", "unknown severity %q: want info, warning, error or critical", r.Severity)
		}
		if r.IsCritical() && r.SuppressFor > 0 {
			v.errorf(path+".suppress_for", "suppress_for is refused on a critical rule: critical alerts are never suppressed by a time window "+
				"(a repeat merges into the open, unacknowledged escalation of the case and rule instead); remove it")
		}
		if p, ok := v.cfg.Policy(r.Policy); ok {
			var chans []string
			for _, st := range p.Steps {
				for _, t := range st.Notify {
					chans = append(append(chans, t.Via...), t.Fallback...)
				}
			}
			v.templateChannels(path+".template", r.Template, "policy "+p.ID, chans)
		}
	}
}

// templateChannels reports channels a template cannot be rendered for.
func (v *validator) templateChannels(path, name, user string, chans []string) {
	if name == "" || v.opt.TemplateChannel == nil || (v.opt.Templates != nil && !v.opt.Templates(name)) {
		return
	}
	seen := map[string]bool{}
	for _, ch := range chans {
		if seen[ch] || !contains(allChannels, ch) {
			continue
		}
		seen[ch] = true
		if !v.opt.TemplateChannel(name, ch) {
			v.errorf(path, "template %q has no %s version, yet %s sends on %s: every such send would fail", name, ch, user, ch)
		}
	}
}

func (v *validator) locales() []string {
	if v.opt.Locales != nil {
		return v.opt.Locales
	}
	return Locales
}

// kindNames are the agency kinds of the configuration, sorted, less those
// refused as typos (suggesting one would point at the mistake).
func (v *validator) kindNames() []string {
	var out []string
	for k := range v.cfg.dir.kinds {
		if typoOf(k, KnownKinds, kindTypoDistance) == "" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// agencyIDs are the agency ids of the configuration, in file order.
func (v *validator) agencyIDs() []string {
	out := make([]string, len(v.cfg.Agencies))
	for i := range v.cfg.Agencies {
		out[i] = v.cfg.Agencies[i].ID
	}
	return out
}

// exprOptions compile conditions against Env. now() is disabled: a rule
// must decide from the event alone, so a replay decides the same.
func exprOptions() []expr.Option {
	return []expr.Option{expr.Env(Env{}), expr.AsBool(), expr.DisableBuiltin("now")}
}

func (v *validator) compile(r *Rule, path string) {
	prog, err := expr.Compile(r.When, exprOptions()...)
	if err == nil {
		r.program = prog
		return
	}
	var fe *file.Error
	if !errors.As(err, &fe) {
		v.errorf(path, "condition does not compile: %v", err)
		return
	}
	v.errorAt(v.exprPos(path, fe), path, fmt.Sprintf("condition does not compile: %s (expression %d:%d)",
		fe.Message, fe.Line, fe.Column+1))
}

// exprPos maps a position inside a condition to the file: exact for
// one-line scalars and literal blocks (|), the value's start otherwise.
func (v *validator) exprPos(path string, fe *file.Error) pos {
	n := v.values[path]
	if n == nil {
		return v.at(path)
	}
	start := pos{n.Line, n.Column}
	switch n.Style {
	case 0, yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		if strings.Contains(n.Value, "\n") || fe.Line != 1 {
			return start
		}
		quote := 0
		if n.Style != 0 {
			quote = 1
		}
		return pos{n.Line, n.Column + quote + fe.Column}
	case yaml.LiteralStyle:
		// The block's indentation is that of its first non-empty line.
		lines := strings.Split(string(v.src), "\n")
		for i := n.Line; i < len(lines); i++ {
			if t := strings.TrimLeft(lines[i], " "); t != "" {
				return pos{n.Line + fe.Line, len(lines[i]) - len(t) + 1 + fe.Column}
			}
		}
	}
	return start
}

func (v *validator) schedules() {
	seen := map[string]string{}
	for i := range v.cfg.Schedules {
		s := &v.cfg.Schedules[i]
		path := indexPath("schedules", i)
		v.unique(seen, "schedule", s.ID, path+".id")
		loc, err := loadZone(s.Zone)
		if err != nil {
			// An inherited bad zone is reported once, at timezone.
			if v.values[path+".zone"] != nil {
				v.errorf(path+".zone", "unknown time zone %q", s.Zone)
			}
			loc = time.UTC
		}
		s.loc = loc
		if s.Cron != "" {
			v.cron(s, path+".cron")
		}
		if s.To.Agency != "" {
			v.target(TargetSpec{Agency: s.To.Agency, Role: s.To.Role, Via: s.Via}, path+".to", true)
		}
		v.channels(path+".via", s.Via, nil)
		v.template(path+".template", s.Template)
		v.templateChannels(path+".template", s.Template, "schedule "+s.ID, s.Via)
	}
}

func (v *validator) cron(s *Schedule, path string) {
	if strings.HasPrefix(s.Cron, "TZ=") || strings.HasPrefix(s.Cron, "CRON_TZ=") {
		v.errorf(path, "invalid cron expression %q: no TZ= prefix, set zone instead", s.Cron)
		return
	}
	sched, err := cron.ParseStandard(s.Cron)
	if err != nil {
		v.errorf(path, "invalid cron expression %q: %v", s.Cron, err)
		return
	}
	if spec, ok := sched.(*cron.SpecSchedule); ok {
		spec.Location = s.loc
	}
	s.sched = sched
}

// agencyZone loads an agency's time zone; an inherited bad zone is
// reported once, at timezone.
func (v *validator) agencyZone(a *Agency, path string) {
	loc, err := loadZone(a.TimeZone)
	if err != nil {
		if v.values[path+".time_zone"] != nil {
			v.errorf(path+".time_zone", "unknown time zone %q: want an IANA name such as Atlantic/Canary", a.TimeZone)
		}
		loc = time.UTC
	}
	a.loc = loc
}

// loadZone accepts IANA names only: "Local" would make schedules depend on
// the machine's setting.
func loadZone(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, errors.New("Local is not an IANA zone")
	}
	return time.LoadLocation(name)
}
