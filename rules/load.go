package rules

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/viogen-alerts/dispatcher/event"
)

// LoadOptions are the checks Load cannot do alone.
type LoadOptions struct {
	// Templates reports whether a message template exists. The templates
	// package depends on this one, so it is asked through this callback;
	// nil skips the check.
	Templates func(name string) bool
	// TemplateChannel reports whether a template has a version for a
	// channel (templates.Set.HasChannel); nil skips the check. Without
	// one, every send of that template on that channel fails.
	TemplateChannel func(name, channel string) bool
	// Locales are the message locales the templates have; nil means
	// Locales (es, ca, en, the embedded ones).
	Locales []string
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
		r.errs = append(r.errs, yamlError(filename, data, err))
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

var (
	yamlLine   = regexp.MustCompile(`^yaml: line (\d+): `)
	yamlAnchor = regexp.MustCompile(`^yaml: unknown anchor '([^']*)' referenced`)
)

// yamlError turns a YAML syntax error into a ValidationError at the line
// and column of the problem. yaml.v3 names the line where the enclosing
// construct began (a tab three lines into a mapping is reported at the
// mapping's first key), so the line is found again: the first line, from
// the reported one on, at which the file read up to there fails with the
// same message. When the file read up to each of the lines just before
// that one ends inside a quoted value, the problem is the quote that
// opened it: the value ran on until something could not be part of it.
func yamlError(file string, data []byte, err error) ValidationError {
	msg := err.Error()
	reported := 1
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		reported, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	lines := strings.SplitAfter(string(data), "\n")
	failsWith := func(l int) string { // the message of the file cut after line l, "" when it parses
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(strings.Join(lines[:l], "")), &n); err != nil {
			return strings.TrimPrefix(yamlLine.ReplaceAllString(err.Error(), ""), "yaml: ")
		}
		return ""
	}
	e := ValidationError{File: file, Line: reported, Col: 1, Msg: "YAML syntax error: " + msg}
	if m := yamlAnchor.FindStringSubmatch(err.Error()); m != nil {
		p := findAlias(lines, m[1])
		e.Line, e.Col = p.line, p.col
		return e
	}
	if len(lines) > maxYAMLSearchLines {
		return e
	}
	for l := max(reported, 1); l <= len(lines); l++ {
		if failsWith(l) == msg {
			e.Line = l
			break
		}
	}
	if e.Line < 1 || e.Line > len(lines) {
		return e
	}
	open := e.Line
	for open > 1 && failsWith(open-1) == yamlEndOfStream {
		open--
	}
	if open < e.Line && msg != yamlEndOfStream && quoteColumn(lines[open-1]) > 0 {
		e.Msg = fmt.Sprintf("YAML syntax error: an unclosed quote? The quoted value that starts here runs on to line %d, where: %s", e.Line, msg)
		e.Line, e.Col = open, quoteColumn(lines[open-1])
		return e
	}
	line := lines[e.Line-1]
	indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
	e.Col = len(indent) + 1
	switch {
	case strings.Contains(indent, "\t"):
		e.Col = strings.IndexByte(line, '\t') + 1
		e.Msg += " (a tab in the indentation: indent with spaces, never tabs)"
	case msg == yamlEndOfStream && quoteColumn(line) > 0:
		e.Col = quoteColumn(line)
		e.Msg += " (an unclosed quote?)"
	case strings.Contains(msg, "expected ',' or ']'"), strings.Contains(msg, "expected ',' or '}'"):
		if c := unclosedBracket(line); c > 0 {
			e.Col = c
		}
		e.Msg += " (an unclosed bracket?)"
	}
	return e
}

const yamlEndOfStream = "found unexpected end of stream"

// maxYAMLSearchLines bounds the search for the line of a syntax error,
// which parses the file once per line after the reported one.
const maxYAMLSearchLines = 5000

// quoteColumn is the column of the quote a line leaves open, 0 when none.
func quoteColumn(line string) int {
	var q byte
	at := 0
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case q == 0 && (c == '"' || c == '\''):
			q, at = c, i+1
		case q == '"' && c == '\\':
			i++
		case q == '\'' && c == '\'' && i+1 < len(line) && line[i+1] == '\'':
			i++ // '' is a quote inside single quotes
		case q != 0 && c == q:
			q = 0
		}
	}
	if q == 0 {
		return 0
	}
	return at
}

// unclosedBracket is the column of the first [ or { that a line leaves
// open, outside quotes; 0 when none.
func unclosedBracket(line string) int {
	var stack []int
	var q byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		case c == '[' || c == '{':
			stack = append(stack, i+1)
		case (c == ']' || c == '}') && len(stack) > 0:
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) == 0 {
		return 0
	}
	return stack[0]
}

// findAlias is the position of the first *name alias.
func findAlias(lines []string, name string) pos {
	for i, l := range lines {
		if j := strings.Index(l, "*"+name); j >= 0 {
			return pos{i + 1, j + 1}
		}
	}
	return pos{1, 1}
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
		if c.Agencies[i].TimeZone == "" {
			c.Agencies[i].TimeZone = c.Timezone
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
