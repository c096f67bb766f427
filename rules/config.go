package rules

import (
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/robfig/cron/v3"

	"github.com/viogen-alerts/dispatcher/event"
)

// The structs below are the YAML schema. Each field's tags drive three
// things at once: decoding (yaml), validation of presence (required) and
// the generated reference in docs/configuration.md (doc, default).

// Config is one loaded, validated configuration. Treat it as read-only
// once loaded; an Engine built on it may be used from many goroutines.
type Config struct {
	Timezone       string        `yaml:"timezone" default:"Europe/Madrid" doc:"IANA time zone of schedules that name none; checked with the system's zone database."`
	Locale         string        `yaml:"locale" default:"es" doc:"Message locale of agencies that name none: es, ca or en, the locales the templates have, optionally with a region (\"es-ES\"). Any other language is refused."`
	FallbackAgency string        `yaml:"fallback_agency" required:"true" doc:"Id of the agency, normally a coordinating center, that receives every alert whose targets cannot be resolved. Such alerts are marked unrouted; they are never dropped. It must have at least one contact."`
	Agencies       []Agency      `yaml:"agencies" required:"true" doc:"The agency directory: every body that may be told about a case."`
	Checkins       Checkins      `yaml:"checkins" doc:"Required police contact per risk level; absent levels take the defaults."`
	Reassessments  Reassessments `yaml:"reassessment" doc:"Maximum time between risk assessments per level; absent levels take the defaults."`
	Policies       []Policy      `yaml:"policies" required:"true" doc:"Escalation policies: who is told, how, and what happens when nobody acknowledges."`
	Rules          []Rule        `yaml:"rules" required:"true" doc:"Alert rules, evaluated in order against every event; every rule that matches gives one alert."`
	Schedules      []Schedule    `yaml:"schedules" doc:"Cron-driven digests, such as the morning patrol reminders for local police."`
	Operators      []Operator    `yaml:"operators" doc:"Named accounts of the alert console (docs/console.md). Machine clients keep using the agencies' tokens_sha256."`
	RateLimits     RateLimits    `yaml:"rate_limits" doc:"How fast messages may go to each provider-side destination, shared by every instance (see \"Rate limits\"); absent channels take the defaults."`

	file string
	loc  *time.Location
	dir  directory
}

// Agency is one body in the directory: a police unit, a local police, a
// coordinating center, social services, an island council.
type Agency struct {
	ID           string    `yaml:"id" required:"true" doc:"Unique id, lower case letters, digits, '-' and '_' (e.g. \"pl-herencia\"). Referenced by cases as their responsible unit, and by policies."`
	Name         string    `yaml:"name" required:"true" doc:"Display name used in messages and logs."`
	Kind         string    `yaml:"kind" required:"true" doc:"What the agency is: responsible_unit (a police unit that owns cases), local_police, coordinating_center, social_services, island_council, or any other lower_snake_case word. Policies target agencies by kind. A word within two letters of a known kind (coordinating_centre, local_polic) is refused as a typo."`
	Serves       Serves    `yaml:"serves" doc:"Where the agency is competent. Kind targets pick the agencies of that kind serving the case's municipality, else its province, else its region."`
	Locale       string    `yaml:"locale" doc:"Message locale for this agency's contacts (es, ca or en, optionally with a region); defaults to the top-level locale."`
	TimeZone     string    `yaml:"time_zone" doc:"IANA time zone the alert console shows this agency's operators deadlines and times in (e.g. Atlantic/Canary for an agency of the Canary Islands); defaults to the top-level timezone. Checked with the system's zone database."`
	Contacts     []Contact `yaml:"contacts" required:"true" doc:"People or desks that receive alerts."`
	TokensSHA256 []string  `yaml:"tokens_sha256" doc:"SHA-256 hashes (64 hex characters) of the bearer tokens this agency uses on the acknowledgement API. Only hashes are stored."`

	loc *time.Location
}

// Location is the agency's time zone (time_zone, else the top-level
// timezone); nil on an Agency not loaded from a configuration.
func (a *Agency) Location() *time.Location { return a.loc }

// Serves is the territory of an agency.
type Serves struct {
	Municipalities []string `yaml:"municipalities" doc:"INE municipality codes, 5 digits, quoted (\"07040\")."`
	Provinces      []string `yaml:"provinces" doc:"INE province codes, 2 digits, quoted (\"13\")."`
	Regions        []string `yaml:"regions" doc:"Autonomous community codes as in ISO 3166-2:ES, 2 capital letters (\"CM\", \"IB\")."`
}

// Contact is one addressable person or desk of an agency.
type Contact struct {
	ID               string `yaml:"id" required:"true" doc:"Unique id across all agencies; this, never the address, is what logs show."`
	Role             string `yaml:"role" required:"true" doc:"Role targeted by policies: on_call, supervisor, duty, or any other lower_snake_case word."`
	SMS              string `yaml:"sms" doc:"Phone number in E.164 form (\"+34600000001\"): + and 8 to 15 digits. Enables the sms channel."`
	Email            string `yaml:"email" doc:"Email address, bare (no display name). Enables the email channel."`
	PagerKeyEnv      string `yaml:"pager_key_env" doc:"Name of the environment variable holding the PagerDuty routing key. Enables the pager channel. The key itself never appears in the file."`
	WebhookURL       string `yaml:"webhook_url" doc:"https URL that receives alerts as JSON. Enables the webhook channel. http:// is refused: the webhook channel sends only to https URLs."`
	WebhookSecretEnv string `yaml:"webhook_secret_env" doc:"Name of the environment variable holding the webhook signing secret. Only with webhook_url."`
}

// Operator is a person who logs in to the alert console. Every
// acknowledgement made in the console records the operator's id.
type Operator struct {
	ID             string   `yaml:"id" required:"true" doc:"Unique operator id, lower case letters, digits, '-' and '_'; the login name and what the audit trail records. Never a person's name."`
	Agency         string   `yaml:"agency" required:"true" doc:"Id of the operator's agency: the operator sees and acknowledges the escalations that notified it."`
	Role           string   `yaml:"role" default:"operator" doc:"operator (sees and acknowledges) or viewer (sees only)."`
	PasswordBcrypt string   `yaml:"password_bcrypt" required:"true" doc:"bcrypt hash (\"$2a$\", \"$2b$\" or \"$2y$\", cost 10 to 14) of the operator's password. Only the hash is stored."`
	Watch          []string `yaml:"watch" doc:"Agency ids a coordinating center also watches (sees and acknowledges). Only for an operator of an agency of kind coordinating_center."`
}

// Operator roles.
const (
	RoleOperator = "operator"
	RoleViewer   = "viewer"
)

// Scope is the set of agency ids the operator acts for: its own and the
// watched ones.
func (o *Operator) Scope() []string { return append([]string{o.Agency}, o.Watch...) }

// CanAck reports whether the operator's role may acknowledge.
func (o *Operator) CanAck() bool { return o.Role == "" || o.Role == RoleOperator }

// Checkins holds the required police contact per level.
type Checkins struct {
	Bajo    *CheckinPeriod `yaml:"bajo" default:"every 30d, grace 2d" doc:"Low risk: phone contact."`
	Medio   *CheckinPeriod `yaml:"medio" default:"every 7d, grace 1d" doc:"Medium risk: weekly contact and patrol pass."`
	Alto    *CheckinPeriod `yaml:"alto" default:"every 24h, grace 2h" doc:"High risk: daily."`
	Extremo *CheckinPeriod `yaml:"extremo" default:"every 2h, grace 15m" doc:"Extreme risk: continuous cover; any gap is a missed check-in."`
}

// CheckinPeriod is how often police contact is due and how late it may be
// before checkin.missed fires.
type CheckinPeriod struct {
	Every Duration `yaml:"every" required:"true" doc:"Interval between required contacts; greater than zero."`
	Grace Duration `yaml:"grace" doc:"Tolerance after the due time before checkin.missed is raised."`
}

// Reassessments holds the re-assessment period per level.
type Reassessments struct {
	Bajo    *Duration `yaml:"bajo" default:"60d" doc:"Low risk."`
	Medio   *Duration `yaml:"medio" default:"30d" doc:"Medium risk."`
	Alto    *Duration `yaml:"alto" default:"7d" doc:"High risk."`
	Extremo *Duration `yaml:"extremo" default:"72h" doc:"Extreme risk."`
}

// Policy is an ordered escalation: step 0 is notified at once, each later
// step when the previous one was not acknowledged in time.
type Policy struct {
	ID    string       `yaml:"id" required:"true" doc:"Unique id referenced by rules."`
	Steps []PolicyStep `yaml:"steps" required:"true" doc:"Escalation steps, in order."`
}

// PolicyStep is one round of notifications.
type PolicyStep struct {
	Notify    []TargetSpec `yaml:"notify" json:"notify" required:"true" doc:"Targets notified together in this step."`
	AckWithin Duration     `yaml:"ack_within" json:"ack_within,omitempty" doc:"How long to wait for an acknowledgement before repeating the step or moving to the next. 0 (the default) means no acknowledgement is awaited: the escalation ends after this step."`
	Repeat    int          `yaml:"repeat" json:"repeat,omitempty" doc:"How many more times the step is sent, every ack_within, before moving on (0 to 10). Needs ack_within."`
}

// TargetSpec says who to notify in a step and over which channels.
type TargetSpec struct {
	Agency   string   `yaml:"agency" json:"agency" doc:"Target selector: responsible, previous_responsible, a kind (local_police, ...), previous:KIND, release_destination:KIND or an agency id. See \"Target selectors\". May be omitted when contact is given."`
	Role     string   `yaml:"role" json:"role,omitempty" doc:"Only contacts with this role. Omitted: every contact of the agency that has an address for one of the channels."`
	Contact  string   `yaml:"contact" json:"contact,omitempty" doc:"One specific contact id, instead of a role."`
	Via      []string `yaml:"via" json:"via" required:"true" doc:"Channel plan, all sent: sms, email, pager, webhook."`
	Fallback []string `yaml:"fallback" json:"fallback,omitempty" doc:"Channels used when every channel of via failed permanently for a contact."`
	Optional bool     `yaml:"optional" json:"optional,omitempty" doc:"When no agency matches the selector (e.g. a municipality without an adhered local police), skip this target instead of sending it to the fallback agency. An agency that matches but lacks the role still goes to the fallback."`
}

// Rule turns matching events into alerts.
type Rule struct {
	ID          string   `yaml:"id" required:"true" doc:"Unique id; part of the alert id and of the suppression key."`
	Description string   `yaml:"description" doc:"Free text for operators."`
	When        string   `yaml:"when" required:"true" doc:"Boolean expr-lang condition over the rule environment (see \"Rule environment\"). Compiled and type-checked at load."`
	Policy      string   `yaml:"policy" required:"true" doc:"Id of the escalation policy; the alert carries a snapshot of it."`
	Template    string   `yaml:"template" required:"true" doc:"Message template name; must exist in the templates package."`
	Severity    string   `yaml:"severity" default:"warning" doc:"info, warning, error or critical (as PagerDuty)."`
	SuppressFor Duration `yaml:"suppress_for" doc:"Suppression window: a second alert with the same suppression key within it is not sent. 0 disables suppression. Refused on a critical rule."`
	Critical    bool     `yaml:"critical" doc:"A rule no suppression may hide: critical alerts are never suppressed by a time window (suppress_for is refused on such a rule; a repeat merges into the open escalation instead), its suppression key also carries the risk level, so reaching a different level always escalates, and later stages must not drop it for any other reason."`

	program *vm.Program
}

// Schedule is a cron-driven digest.
type Schedule struct {
	ID       string         `yaml:"id" required:"true" doc:"Unique id; also the name of the lock that keeps one instance sending it."`
	Cron     string         `yaml:"cron" required:"true" doc:"Standard 5-field cron expression (minute hour day-of-month month day-of-week) or a descriptor such as @daily. No CRON_TZ= prefix: use zone."`
	Zone     string         `yaml:"zone" doc:"IANA time zone the cron expression is read in; defaults to the top-level timezone."`
	Digest   Digest         `yaml:"digest" required:"true" doc:"What the digest lists."`
	To       ScheduleTarget `yaml:"to" required:"true" doc:"Who receives it: one digest per matching agency."`
	Via      []string       `yaml:"via" required:"true" doc:"Channels, all sent."`
	Template string         `yaml:"template" default:"patrol_digest" doc:"Message template name."`

	sched cron.Schedule
	loc   *time.Location
}

// Digest selects the cases a digest lists.
type Digest struct {
	Levels []event.Level `yaml:"levels" required:"true" doc:"Risk levels whose active cases are listed, e.g. [alto, extremo]."`
}

// ScheduleTarget names the recipients of a schedule.
type ScheduleTarget struct {
	Agency string `yaml:"agency" required:"true" doc:"An agency kind (every agency of it) or an agency id. Case-relative selectors do not apply here."`
	Role   string `yaml:"role" doc:"Only contacts with this role."`
}

// IsCritical reports whether the rule's alerts are critical (Alert.Critical):
// the rule says critical: true. The engine and load-time validation both
// ask this, so what may not be suppressed is defined once.
func (r *Rule) IsCritical() bool { return r.Critical }

// Location is the zone of the top-level timezone.
func (c *Config) Location() *time.Location { return c.loc }

// File is the name the configuration was loaded from.
func (c *Config) File() string { return c.file }

// Agency returns the agency with the given id.
func (c *Config) Agency(id string) (*Agency, bool) {
	a, ok := c.dir.byID[id]
	return a, ok
}

// Checkin returns the check-in period and grace for a level. LevelNone
// has no check-ins (0, 0).
func (c *Config) Checkin(l event.Level) (every, grace time.Duration) {
	var p *CheckinPeriod
	switch l {
	case event.Bajo:
		p = c.Checkins.Bajo
	case event.Medio:
		p = c.Checkins.Medio
	case event.Alto:
		p = c.Checkins.Alto
	case event.Extremo:
		p = c.Checkins.Extremo
	}
	if p == nil {
		return 0, 0
	}
	return p.Every.Std(), p.Grace.Std()
}

// Reassessment returns the re-assessment period for a level; 0 for
// LevelNone.
func (c *Config) Reassessment(l event.Level) time.Duration {
	var d *Duration
	switch l {
	case event.Bajo:
		d = c.Reassessments.Bajo
	case event.Medio:
		d = c.Reassessments.Medio
	case event.Alto:
		d = c.Reassessments.Alto
	case event.Extremo:
		d = c.Reassessments.Extremo
	}
	if d == nil {
		return 0
	}
	return d.Std()
}

// Policy returns the policy with the given id.
func (c *Config) Policy(id string) (*Policy, bool) {
	for i := range c.Policies {
		if c.Policies[i].ID == id {
			return &c.Policies[i], true
		}
	}
	return nil, false
}

// CronSchedule is the parsed cron expression, in Location.
func (s *Schedule) CronSchedule() cron.Schedule { return s.sched }

// Location is the schedule's zone.
func (s *Schedule) Location() *time.Location { return s.loc }

// Next returns the first firing strictly after t in the schedule's zone,
// with the daylight-saving rules of NextFire (docs/schedules.md).
func (s *Schedule) Next(t time.Time) time.Time { return s.NextFire(t) }

// Operator returns the console operator with the given id.
func (c *Config) Operator(id string) (*Operator, bool) {
	for i := range c.Operators {
		if c.Operators[i].ID == id {
			return &c.Operators[i], true
		}
	}
	return nil, false
}

// Contact finds a contact and its agency by contact id.
func (c *Config) Contact(id string) (*Agency, *Contact, bool) {
	ref, ok := c.dir.contacts[id]
	if !ok {
		return nil, nil, false
	}
	return ref.agency, ref.contact, true
}
