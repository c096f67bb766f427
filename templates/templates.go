// Package templates renders alert messages from Go text/template files, one
// per template name × channel × locale.
//
// Layout (embedded from default/, and the same inside an override
// directory, whose files replace same-named defaults or add new ones):
//
//	<locale>/<name>.<channel>.tmpl   e.g. es/risk_rise.sms.tmpl
//	<locale>/_<anything>.tmpl        partials: {{define}} blocks shared by
//	                                 every template of that locale (a locale
//	                                 without partials uses es's)
//
// A file may define "subject" and "body" blocks; a file defining neither is
// one text: the body for sms, the summary for pager. Channels need: sms a
// body (folded to GSM-7, whitespace collapsed to single spaces); email a
// subject (one line) and a body; pager a subject (the summary, one line,
// cut to 1024 characters) and optionally a body (details); webhook a short
// subject and a body. Locales: es (default and fallback), ca, en.
//
// Privacy: Data has no personal field, and New renders every template with
// synthetic data and refuses one whose output looks like personal data or
// carries a forbidden word (see CheckPrivacy), naming the file.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"unicode/utf8"
)

//go:embed default/*/*.tmpl
var defaultFS embed.FS

// DefaultLocale is used when a template has no version in the asked locale.
const DefaultLocale = "es"

// Channel names.
const (
	ChannelSMS     = "sms"
	ChannelEmail   = "email"
	ChannelPager   = "pager"
	ChannelWebhook = "webhook"
)

// Channels lists every channel a template can be rendered for.
var Channels = []string{ChannelSMS, ChannelEmail, ChannelPager, ChannelWebhook}

// PagerSummaryMax is PagerDuty's limit on payload.summary.
const PagerSummaryMax = 1024

var (
	localeRE = regexp.MustCompile(`^[a-z]{2,3}$`)
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// Set is a loaded, validated set of templates. It is safe for concurrent use.
type Set struct {
	tmpls map[key]*compiled
	names []string // sorted; every one has a DefaultLocale version
}

type key struct{ locale, name, channel string }

type source struct{ origin, text string }

type compiled struct {
	origin        string
	channel       string
	subject, body *template.Template // nil when the channel does not use it
}

// New loads the embedded templates, then the files of overrideDir ("" =
// none), which replace same-named ones. Every template is parsed and
// rendered with synthetic data; errors name the file.
func New(overrideDir string) (*Set, error) {
	files := map[key]source{}
	partials := map[string]map[string]source{}
	sub, err := fs.Sub(defaultFS, "default")
	if err != nil {
		return nil, err
	}
	if err := collect(sub, func(p string) string { return "default/" + p }, files, partials); err != nil {
		return nil, err
	}
	if overrideDir != "" {
		info, err := os.Stat(overrideDir)
		if err != nil {
			return nil, fmt.Errorf("templates: override dir: %w", err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("templates: override dir %s is not a directory", overrideDir)
		}
		origin := func(p string) string { return filepath.Join(overrideDir, filepath.FromSlash(p)) }
		if err := collect(os.DirFS(overrideDir), origin, files, partials); err != nil {
			return nil, err
		}
	}
	s, err := compile(files, partials)
	if err != nil {
		return nil, err
	}
	if err := s.dryRun(); err != nil {
		return nil, err
	}
	return s, nil
}

// collect reads <locale>/<file>.tmpl from fsys into files and partials.
// It walks the two levels itself, following symbolic links, because
// Kubernetes mounts ConfigMap items through symlinked directories.
func collect(fsys fs.FS, origin func(string) string, files map[key]source, partials map[string]map[string]source) error {
	top, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return fmt.Errorf("templates: %s: %w", origin("."), err)
	}
	for _, e := range top {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		info, err := fs.Stat(fsys, name)
		if err != nil {
			return fmt.Errorf("templates: %s: %w", origin(name), err)
		}
		if !info.IsDir() {
			if strings.HasSuffix(name, ".tmpl") {
				return fmt.Errorf("templates: %s: want <locale>/<name>.<channel>.tmpl, e.g. es/%s", origin(name), name)
			}
			continue
		}
		entries, err := fs.ReadDir(fsys, name)
		if err != nil {
			return fmt.Errorf("templates: %s: %w", origin(name), err)
		}
		for _, f := range entries {
			if strings.HasPrefix(f.Name(), ".") {
				continue
			}
			p := name + "/" + f.Name()
			if err := collectFile(fsys, p, origin(p), files, partials); err != nil {
				return err
			}
		}
	}
	return nil
}

func collectFile(fsys fs.FS, p, origin string, files map[key]source, partials map[string]map[string]source) error {
	info, err := fs.Stat(fsys, p)
	if err != nil {
		return fmt.Errorf("templates: %s: %w", origin, err)
	}
	locale, file, _ := strings.Cut(p, "/")
	if info.IsDir() {
		return fmt.Errorf("templates: %s: unexpected directory: want <locale>/<name>.<channel>.tmpl", origin)
	}
	if !strings.HasSuffix(file, ".tmpl") {
		return nil
	}
	if !localeRE.MatchString(locale) {
		return fmt.Errorf("templates: %s: want <locale>/<name>.<channel>.tmpl with a lower-case locale such as es", origin)
	}
	b, err := fs.ReadFile(fsys, p)
	if err != nil {
		return fmt.Errorf("templates: %s: %w", origin, err)
	}
	if !utf8.Valid(b) {
		return fmt.Errorf("templates: %s: not valid UTF-8", origin)
	}
	src := source{origin: origin, text: string(b)}
	if strings.HasPrefix(file, "_") {
		if partials[locale] == nil {
			partials[locale] = map[string]source{}
		}
		partials[locale][file] = src
		return nil
	}
	name, channel, ok := strings.Cut(strings.TrimSuffix(file, ".tmpl"), ".")
	if !ok || !nameRE.MatchString(name) || !slices.Contains(Channels, channel) {
		return fmt.Errorf("templates: %s: want <name>.<channel>.tmpl, name in [a-z0-9_], channel one of %s",
			origin, strings.Join(Channels, ", "))
	}
	files[key{locale, name, channel}] = src
	return nil
}

func compile(files map[key]source, partials map[string]map[string]source) (*Set, error) {
	s := &Set{tmpls: make(map[key]*compiled, len(files))}
	bases := map[string]*template.Template{}
	for k, src := range files {
		base, ok := bases[k.locale]
		if !ok {
			var err error
			if base, err = localeBase(k.locale, partials); err != nil {
				return nil, err
			}
			bases[k.locale] = base
		}
		c, err := compileFile(base, k.channel, src)
		if err != nil {
			return nil, err
		}
		s.tmpls[k] = c
	}
	for k, src := range files {
		if k.locale == DefaultLocale {
			if !slices.Contains(s.names, k.name) {
				s.names = append(s.names, k.name)
			}
			continue
		}
		if _, ok := files[key{DefaultLocale, k.name, k.channel}]; !ok {
			return nil, fmt.Errorf("templates: %s: no %s/%s.%s.tmpl to fall back to", src.origin, DefaultLocale, k.name, k.channel)
		}
	}
	slices.Sort(s.names)
	return s, nil
}

// localeBase parses the partials of a locale (or of DefaultLocale when it
// has none) into a template every file of that locale is cloned from.
func localeBase(locale string, partials map[string]map[string]source) (*template.Template, error) {
	base := template.New("").Funcs(funcsFor(locale)).Option("missingkey=error")
	parts := partials[locale]
	if len(parts) == 0 {
		parts = partials[DefaultLocale]
	}
	for _, file := range slices.Sorted(maps.Keys(parts)) {
		src := parts[file]
		if _, err := base.New(src.origin).Parse(src.text); err != nil {
			return nil, fmt.Errorf("templates: %w", err) // names the file: templates are named after it
		}
		if base.Lookup("subject") != nil || base.Lookup("body") != nil {
			return nil, fmt.Errorf("templates: %s: a partial must not define \"subject\" or \"body\"", src.origin)
		}
	}
	return base, nil
}

func compileFile(base *template.Template, channel string, src source) (*compiled, error) {
	t, err := base.Clone()
	if err != nil {
		return nil, fmt.Errorf("templates: %s: %w", src.origin, err)
	}
	main, err := t.New(src.origin).Parse(src.text)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err) // names the file: templates are named after it
	}
	c := &compiled{origin: src.origin, channel: channel, subject: t.Lookup("subject"), body: t.Lookup("body")}
	if c.subject == nil && c.body == nil { // one text
		if channel == ChannelPager {
			c.subject = main
		} else {
			c.body = main
		}
	}
	var missing string
	switch channel {
	case ChannelSMS:
		c.subject = nil
		if c.body == nil {
			missing = `"body"`
		}
	case ChannelPager:
		if c.subject == nil {
			missing = `"subject" (the summary)`
		}
	default:
		if c.subject == nil || c.body == nil {
			missing = `both "subject" and "body"`
		}
	}
	if missing != "" {
		return nil, fmt.Errorf("templates: %s: a %s template must define %s", src.origin, channel, missing)
	}
	return c, nil
}

// dryRun renders every template with synthetic data, so a template that
// fails to execute or leaks personal-looking text is refused at load.
func (s *Set) dryRun() error {
	full := SampleData()
	full.Unrouted = true // every optional part shown
	for _, c := range s.tmpls {
		for _, d := range []Data{full, minimalData()} {
			r, err := c.render(d)
			if err != nil {
				return err
			}
			if err := CheckPrivacy(r.Subject + "\n" + r.Body); err != nil {
				return fmt.Errorf("templates: %s: sample rendering contains %w", c.origin, err)
			}
		}
	}
	return nil
}

// Has reports whether a template name exists (in the default locale, so it
// renders in every locale).
func (s *Set) Has(name string) bool {
	_, ok := slices.BinarySearch(s.names, name)
	return ok
}

// HasChannel reports whether name can be rendered for channel.
func (s *Set) HasChannel(name, channel string) bool {
	_, ok := s.tmpls[key{DefaultLocale, name, channel}]
	return ok
}

// Names returns the sorted template names.
func (s *Set) Names() []string { return slices.Clone(s.names) }

// Render renders template name for channel in locale ("" or unknown
// locales fall back to es; "ca-ES" and "ca_ES" read as "ca").
func (s *Set) Render(name, channel, locale string, d Data) (Rendered, error) {
	if !slices.Contains(Channels, channel) {
		return Rendered{}, fmt.Errorf("templates: unknown channel %q (want %s)", channel, strings.Join(Channels, ", "))
	}
	if !s.Has(name) {
		return Rendered{}, fmt.Errorf("templates: unknown template %q", name)
	}
	c, ok := s.tmpls[key{normLocale(locale), name, channel}]
	if !ok {
		if c, ok = s.tmpls[key{DefaultLocale, name, channel}]; !ok {
			return Rendered{}, fmt.Errorf("templates: template %q has no %s version", name, channel)
		}
	}
	return c.render(d)
}

func normLocale(l string) string {
	l = strings.ToLower(strings.TrimSpace(l))
	if i := strings.IndexAny(l, "-_."); i >= 0 {
		l = l[:i]
	}
	if l == "" {
		return DefaultLocale
	}
	return l
}

func (c *compiled) render(d Data) (r Rendered, err error) {
	defer func() { // text/template recovers panics in funcs; this is belt and braces
		if p := recover(); p != nil {
			err = fmt.Errorf("templates: render %s: panic: %v", c.origin, p)
		}
	}()
	exec := func(t *template.Template, part string) (string, error) {
		if t == nil {
			return "", nil
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, d); err != nil {
			return "", fmt.Errorf("templates: render %s (%s): %w", c.origin, part, err)
		}
		return buf.String(), nil
	}
	subject, err := exec(c.subject, "subject")
	if err != nil {
		return Rendered{}, err
	}
	body, err := exec(c.body, "body")
	if err != nil {
		return Rendered{}, err
	}
	switch c.channel {
	case ChannelSMS:
		r.Body = ToGSM7(oneLine(body))
	case ChannelPager:
		r.Subject = truncate(oneLine(subject), PagerSummaryMax)
		r.Body = tidy(body)
	default:
		r.Subject = oneLine(subject)
		r.Body = tidy(body)
	}
	if c.subject != nil && r.Subject == "" {
		return Rendered{}, fmt.Errorf("templates: render %s: empty subject", c.origin)
	}
	if c.body != nil && r.Body == "" && c.channel != ChannelPager {
		return Rendered{}, fmt.Errorf("templates: render %s: empty body", c.origin)
	}
	return r, nil
}

// oneLine collapses every run of white space (new lines included) into
// one space: SMS, subjects and summaries are single lines, and an email
// subject must never carry a line break.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// tidy trims trailing blanks on each line, keeps at most one empty line in
// a row and drops leading and trailing empty lines, so templates can put
// {{if}} actions on lines of their own.
func tidy(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := true // drops leading empty lines
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		if l == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, l)
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n")
}

func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	n := 0
	for i := range s {
		if n == max-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
