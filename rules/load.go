package rules

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/viogen-alerts/dispatcher/event"
)

// LoadOptions are the checks Load cannot do alone.
type LoadOptions struct {
	// Templates reports whether a message template exists. The templates
	// package depends on this one, so it is asked through this callback;
	// nil skips the check.
	Templates func(name string) bool
}

// Defaults applied when the configuration leaves a value out.
const (
	DefaultTimezone = "Europe/Madrid"
	DefaultLocale   = "es"
	DefaultSeverity = "warning"
	DefaultDigest   = "patrol_digest"
)

// DefaultCheckins are the check-in periods of the domain brief's
// suggestions: bajo monthly phone contact, medio weekly, alto daily,
// extremo continuous cover with a 2 h gap alarm.
var DefaultCheckins = map[event.Level]CheckinPeriod{
	event.Bajo:    {Every: days(30), Grace: days(2)},
	event.Medio:   {Every: days(7), Grace: days(1)},
	event.Alto:    {Every: hours(24), Grace: hours(2)},
	event.Extremo: {Every: hours(2), Grace: Duration(15 * 60e9)},
}

// DefaultReassessment are the re-assessment periods of the domain brief.
var DefaultReassessment = map[event.Level]Duration{
	event.Bajo: days(60), event.Medio: days(30), event.Alto: days(7), event.Extremo: hours(72),
}

func hours(n int) Duration { return Duration(int64(n) * 3600e9) }
func days(n int) Duration  { return hours(24 * n) }

// LoadFile reads and validates the configuration at path.
func LoadFile(path string, opt LoadOptions) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path, opt)
}

// Parse decodes and validates a configuration. On failure the error is a
// ValidationErrors listing every problem found, in file order.
func Parse(data []byte, filename string, opt LoadOptions) (*Config, error) {
	r := &reporter{file: filename, pos: map[string]pos{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		r.errs = append(r.errs, yamlError(filename, err))
		return nil, r.errs
	}
	cfg := &Config{file: filename}
	d := &decoder{reporter: r, values: map[string]*yaml.Node{}}
	if len(doc.Content) == 0 {
		r.errorAt(pos{1, 1}, "", "empty configuration")
		return nil, r.errs
	}
	d.decode(doc.Content[0], reflect.ValueOf(cfg).Elem(), "")
	cfg.applyDefaults()
	cfg.dir = buildDirectory(cfg.Agencies)
	v := &validator{reporter: r, cfg: cfg, values: d.values, src: data, opt: opt}
	v.run()
	if len(r.errs) > 0 {
		return nil, r.errs.sorted()
	}
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

func yamlError(file string, err error) ValidationError {
	e := ValidationError{File: file, Line: 1, Col: 1, Msg: err.Error()}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
		}
	}
	return e
}

func (c *Config) applyDefaults() {
	if c.Timezone == "" {
		c.Timezone = DefaultTimezone
	}
	if c.Locale == "" {
		c.Locale = DefaultLocale
	}
	for i := range c.Agencies {
		if c.Agencies[i].Locale == "" {
			c.Agencies[i].Locale = c.Locale
		}
	}
	for _, p := range []struct {
		l   event.Level
		ptr **CheckinPeriod
	}{{event.Bajo, &c.Checkins.Bajo}, {event.Medio, &c.Checkins.Medio}, {event.Alto, &c.Checkins.Alto}, {event.Extremo, &c.Checkins.Extremo}} {
		if *p.ptr == nil {
			v := DefaultCheckins[p.l]
			*p.ptr = &v
		}
	}
	for _, p := range []struct {
		l   event.Level
		ptr **Duration
	}{{event.Bajo, &c.Reassessments.Bajo}, {event.Medio, &c.Reassessments.Medio}, {event.Alto, &c.Reassessments.Alto}, {event.Extremo, &c.Reassessments.Extremo}} {
		if *p.ptr == nil {
			v := DefaultReassessment[p.l]
			*p.ptr = &v
		}
	}
	for i := range c.Rules {
		if c.Rules[i].Severity == "" {
			c.Rules[i].Severity = DefaultSeverity
		}
	}
	for i := range c.Schedules {
		if c.Schedules[i].Zone == "" {
			c.Schedules[i].Zone = c.Timezone
		}
		if c.Schedules[i].Template == "" {
			c.Schedules[i].Template = DefaultDigest
		}
	}
}
