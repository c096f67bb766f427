package policytest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/rules"
	"github.com/viogen-alerts/dispatcher/sim"
)

// File is one loaded test file.
type File struct {
	Path      string
	Name      string
	Config    string // path, resolved against the file's directory
	Templates string // template directory ("" = the embedded defaults)
	Zone      *time.Location
	zoneName  string
	Start     time.Time
	Until     time.Time
	// Exhaustive: every notification and digest of the run must be
	// expected (default true).
	Exhaustive bool
	Inputs     []sim.Input
	Expect     []*Expectation

	cases map[string]caseInfo
	lines []int // per input, its line
}

// caseInfo fills in the routing fields of a case's events.
type caseInfo struct {
	Municipality string `yaml:"municipality"`
	Province     string `yaml:"province"`
	Region       string `yaml:"region"`
	Unit         string `yaml:"unit"`
}

// Error is a problem in a test file, at its line and column.
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg) }

func (f *File) errAt(n *yaml.Node, format string, args ...any) *Error {
	return &Error{File: f.Path, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)}
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): `)

// Load reads and checks a test file; every error names file:line:col.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read test file: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		line := 1
		msg := err.Error()
		if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = msg[len(m[0]):]
		}
		e := &Error{File: path, Line: line, Col: 1, Msg: "YAML syntax error: " + strings.TrimPrefix(msg, "yaml: ")}
		if strings.Contains(msg, "tab character") {
			e.Line, e.Col = tabLine(data, line)
			e.Msg += " (indent with spaces, never tabs)"
		}
		return nil, e
	}
	f := &File{Path: path, Exhaustive: true}
	if len(root.Content) == 0 {
		return nil, &Error{File: path, Line: 1, Col: 1, Msg: "empty test file"}
	}
	if err := f.parse(root.Content[0]); err != nil {
		return nil, err
	}
	return f, nil
}

// tabLine finds the tab in the indentation that yaml reports near line
// (it names the line before it).
func tabLine(data []byte, line int) (int, int) {
	lines := strings.Split(string(data), "\n")
	for i := max(line-1, 0); i < len(lines); i++ {
		l := lines[i]
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if j := strings.IndexByte(indent, '\t'); j >= 0 {
			return i + 1, j + 1
		}
	}
	return line, 1
}

// topKeys are the keys of a test file, in the order they are read.
var topKeys = []string{"name", "config", "templates", "timezone", "start", "until", "exhaustive", "cases", "timeline", "expect"}

func (f *File) parse(doc *yaml.Node) error {
	m, err := f.mapping(doc, topKeys)
	if err != nil {
		return err
	}
	for _, k := range []string{"config", "start", "until"} {
		if m[k] == nil {
			return f.errAt(doc, "%s is required", k)
		}
	}
	dir := filepath.Dir(f.Path)
	f.Name = scalar(m["name"])
	f.Config = relativeTo(dir, scalar(m["config"]))
	if t := scalar(m["templates"]); t != "" {
		f.Templates = relativeTo(dir, t)
	}
	if n := m["exhaustive"]; n != nil {
		if err := n.Decode(&f.Exhaustive); err != nil {
			return f.errAt(n, "exhaustive: want true or false")
		}
	}
	f.zoneName = scalar(m["timezone"])
	if err := f.times(m); err != nil {
		return err
	}
	if n := m["cases"]; n != nil {
		if err := f.parseCases(n); err != nil {
			return err
		}
	}
	if n := m["timeline"]; n != nil {
		if err := f.parseTimeline(n); err != nil {
			return err
		}
	}
	if n := m["expect"]; n != nil {
		return f.parseExpect(n)
	}
	return nil
}

// times reads the zone, start and until. A zone left out is the
// configuration's, read when the test runs; so is it resolved here from
// the configuration file's own timezone key when absent.
func (f *File) times(m map[string]*yaml.Node) error {
	name := f.zoneName
	if name == "" {
		name = configZone(f.Config)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return f.errAt(m["timezone"], "unknown time zone %q", name)
	}
	f.Zone = loc
	start, err := parseAbsolute(scalar(m["start"]), loc)
	if err != nil {
		return f.errAt(m["start"], "start: %v", err)
	}
	f.Start = start
	if f.Until, err = f.when(m["until"]); err != nil {
		return err
	}
	if !f.Until.After(f.Start) {
		return f.errAt(m["until"], "until must be after start")
	}
	return nil
}

// configZone reads the timezone key of a configuration file ("" when
// unreadable: the test's own loading of it reports why).
func configZone(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "Europe/Madrid"
	}
	var c struct {
		Timezone string `yaml:"timezone"`
	}
	if yaml.Unmarshal(data, &c) != nil || c.Timezone == "" {
		return "Europe/Madrid"
	}
	return c.Timezone
}

// when reads a time of the file: an offset from start ("90m", "2d3h") or
// a local time in the file's zone ("2026-03-29 02:30", with seconds or
// an explicit offset "+01:00" when a fall-back makes it ambiguous), or
// RFC 3339.
func (f *File) when(n *yaml.Node) (time.Time, error) {
	s := scalar(n)
	if d, err := rules.ParseDuration(s); err == nil {
		return f.Start.Add(d.Std()), nil
	}
	if strings.HasPrefix(s, "-") {
		if d, err := rules.ParseDuration(s[1:]); err == nil {
			return f.Start.Add(-d.Std()), nil
		}
	}
	t, err := parseAbsolute(s, f.Zone)
	if err != nil {
		return t, f.errAt(n, "%v", err)
	}
	return t, nil
}

var absLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05 -07:00", "2006-01-02 15:04 -07:00",
	"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04"}

func parseAbsolute(s string, loc *time.Location) (time.Time, error) {
	for _, l := range absLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q: want an offset from start (90m, 2d) or a local time such as 2026-03-29 02:30 (add -07:00 style offset to pick one showing of a repeated hour)", s)
}

func (f *File) parseCases(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return f.errAt(n, "cases: want a mapping of case id to its place and unit")
	}
	f.cases = map[string]caseInfo{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if _, err := f.mapping(n.Content[i+1], []string{"municipality", "province", "region", "unit"}); err != nil {
			return err
		}
		var c caseInfo
		if err := n.Content[i+1].Decode(&c); err != nil {
			return f.errAt(n.Content[i+1], "cases.%s: %v", n.Content[i].Value, err)
		}
		f.cases[n.Content[i].Value] = c
	}
	return nil
}

// mapping checks that n is a mapping with only the known keys and
// returns its values by key.
func (f *File) mapping(n *yaml.Node, known []string) (map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, f.errAt(n, "want a mapping with keys %s", strings.Join(known, ", "))
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !contains(known, k.Value) {
			return nil, f.errAt(k, "unknown key %q (known keys: %s)", k.Value, strings.Join(known, ", "))
		}
		if out[k.Value] != nil {
			return nil, f.errAt(k, "duplicate key %q", k.Value)
		}
		out[k.Value] = n.Content[i+1]
	}
	return out, nil
}

// relativeTo resolves a path the file names against the file's directory.
func relativeTo(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func scalar(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	return n.Value
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// eventJSON completes an event written in the test (id, case_id from
// case, place and unit from cases, occurred_at = its time, source) and
// checks it with the pipeline's own decoder.
func (f *File) eventJSON(n *yaml.Node, at time.Time) (string, []byte, error) {
	var m map[string]any
	if err := n.Decode(&m); err != nil || m == nil {
		return "", nil, f.errAt(n, "event: want a mapping of event fields (docs/events.md)")
	}
	if c, ok := m["case"].(string); ok {
		delete(m, "case")
		m["case_id"] = c
		if info, ok := f.cases[c]; ok {
			setDefault(m, "jurisdiction", map[string]any{"municipality": info.Municipality, "province": info.Province, "region": info.Region})
			setDefault(m, "responsible_unit", info.Unit)
		}
	}
	setDefault(m, "id", fmt.Sprintf("%s-l%d", strings.TrimSuffix(filepath.Base(f.Path), filepath.Ext(f.Path)), n.Line))
	setDefault(m, "occurred_at", at.Format(time.RFC3339Nano))
	setDefault(m, "source", "policy-test")
	b, err := json.Marshal(m)
	if err != nil {
		return "", nil, f.errAt(n, "event: %v", err)
	}
	ev, err := event.Decode(b)
	if err != nil {
		return "", nil, f.errAt(n, "event: %v", err)
	}
	return ev.CaseID, b, nil
}

func setDefault(m map[string]any, k string, v any) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

// ParseTime reads a time as test files write them: an offset from base
// (when base is not zero), a local time in loc, or RFC 3339.
func ParseTime(s string, loc *time.Location, base time.Time) (time.Time, error) {
	if !base.IsZero() {
		if d, err := rules.ParseDuration(s); err == nil {
			return base.Add(d.Std()), nil
		}
	}
	return parseAbsolute(s, loc)
}
