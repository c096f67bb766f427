package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOverrideReplacesOneTemplate(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "es/risk_rise.sms.tmpl", "{{sev .Severity}}: riesgo {{level .Level | upper}} exp {{.CaseRef}}. Ref {{.AlertRef}}\n")
	writeFile(t, dir, "README.md", "not a template: ignored")
	writeFile(t, dir, ".git/config.tmpl", "hidden: ignored")
	s := mustNew(t, dir)
	d := SampleData()
	r, err := s.Render("risk_rise", ChannelSMS, "es", d)
	if err != nil || r.Body != "CRITICA: riesgo EXTREMO exp C-HER-0001. Ref a3f9c2d1e8b74a10" {
		t.Errorf("override not used: %q, %v", r.Body, err)
	}
	// Everything else is still the default.
	def := mustNew(t, "")
	for _, c := range []struct{ name, ch, loc string }{
		{"risk_rise", ChannelEmail, "es"}, {"risk_rise", ChannelSMS, "ca"}, {"breach", ChannelSMS, "es"},
	} {
		got, _ := s.Render(c.name, c.ch, c.loc, d)
		want, _ := def.Render(c.name, c.ch, c.loc, d)
		if got != want {
			t.Errorf("%+v changed by an unrelated override", c)
		}
	}
}

func TestOverridePartial(t *testing.T) {
	dir := t.TempDir()
	// A locale's partials file replaces the default one of the same name.
	b, err := defaultFS.ReadFile("default/es/_common.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "Responda ACK", "Conteste ACK", 1)
	writeFile(t, dir, "es/_common.tmpl", text)
	s := mustNew(t, dir)
	r, err := s.Render("breach", ChannelSMS, "es", SampleData())
	if err != nil || !strings.Contains(r.Body, "Conteste ACK K7Q2.") {
		t.Errorf("partial override not used: %q, %v", r.Body, err)
	}
}

// Every bad override is refused by New with an error that names the file.
func TestBadOverrides(t *testing.T) {
	cases := []struct {
		name, file, text, want string
	}{
		{"parse error", "es/risk_rise.sms.tmpl", "{{if .CaseRef}}unclosed", "unexpected EOF"},
		{"unknown field", "es/risk_rise.sms.tmpl", "{{.VictimName}}", "VictimName"},
		{"unknown func", "es/breach.sms.tmpl", "{{phone .CaseRef}}", "phone"},
		{"missing partial", "es/breach.sms.tmpl", `{{template "nope" .}}`, "nope"},
		{"email without subject", "es/breach.email.tmpl", `{{define "body"}}x {{.AlertRef}}{{end}}`, `"subject"`},
		{"pager with only a body", "es/breach.pager.tmpl", `{{define "body"}}x{{end}}`, `"subject"`},
		{"empty sms", "es/breach.sms.tmpl", "{{if false}}x{{end}}", "empty body"},
		{"forbidden words", "es/breach.sms.tmpl", "Caso de Violencia de Género {{.CaseRef}}", "forbidden word"},
		{"victim", "en/breach.email.tmpl", `{{define "subject"}}Victim alert{{end}}{{define "body"}}x{{end}}`, "forbidden word"},
		{"aggressor", "ca/breach.sms.tmpl", "Agressor en llibertat {{.CaseRef}}", "forbidden word"},
		{"phone literal", "es/breach.sms.tmpl", "Llame al 600123456 {{.CaseRef}}", "phone"},
		{"address literal", "es/breach.sms.tmpl", "Acuda a la calle Mayor {{.CaseRef}}", "street address"},
		{"email literal", "es/breach.sms.tmpl", "Escriba a jefatura@example.org", "email address"},
		{"unknown channel", "es/breach.fax.tmpl", "x", "channel"},
		{"bad name", "es/Breach.sms.tmpl", "x", "name"},
		{"no locale dir", "breach.sms.tmpl", "x", "<locale>"},
		{"nested dir", "es/sub/breach.sms.tmpl", "x", "unexpected directory"},
		{"no es fallback", "ca/custom.sms.tmpl", "x {{.AlertRef}}", "no es/custom.sms.tmpl"},
		{"partial defines body", "es/_extra.tmpl", `{{define "body"}}x{{end}}`, "partial"},
		{"partial parse error", "es/_common.tmpl", `{{define "sms.head"}}`, "_common.tmpl"},
		{"invalid utf-8", "es/breach.sms.tmpl", "\xff\xfe", "UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, c.file, c.text)
			if c.want == "unexpected directory" {
				path = filepath.Dir(path) // the error names the directory
			}
			_, err := New(dir)
			if err == nil {
				t.Fatalf("New accepted %s: %q", c.file, c.text)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name %s: %v", path, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error lacks %q: %v", c.want, err)
			}
		})
	}
}

func TestOverrideDirErrors(t *testing.T) {
	if _, err := New(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing override dir accepted")
	}
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(f); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file as override dir: %v", err)
	}
}

// A template that passes the load-time check but fails on some data makes
// Render return an error, never panic.
func TestRenderFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "es/breach.sms.tmpl",
		`{{if eq .CaseRef "C-BAD-0001"}}{{index .Digest 99}}{{end}}{{sev .Severity}}: exp {{.CaseRef}} Ref {{.AlertRef}}`)
	s := mustNew(t, dir)
	d := SampleData()
	d.CaseRef = "C-BAD-0001"
	r, err := s.Render("breach", ChannelSMS, "es", d)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "es", "breach.sms.tmpl")) {
		t.Errorf("got %+v, %v; want an error naming the file", r, err)
	}
	var nilDigest Data = d
	nilDigest.Digest = nil
	if _, err := s.Render("breach", ChannelSMS, "es", nilDigest); err == nil {
		t.Error("index into nil digest: no error")
	}
}

func TestPagerSummaryTruncated(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "es/breach.pager.tmpl", `{{sev .Severity}} {{range .Digest}}{{.CaseRef}} {{.CaseRef}} {{.CaseRef}} {{.CaseRef}} {{.CaseRef}} {{end}}`+strings.Repeat("x", 1100))
	s := mustNew(t, dir)
	r, err := s.Render("breach", ChannelPager, "es", SampleData())
	if err != nil {
		t.Fatal(err)
	}
	if n := len([]rune(r.Subject)); n != PagerSummaryMax || !strings.HasSuffix(r.Subject, "…") {
		t.Errorf("summary has %d characters, want %d ending in …", n, PagerSummaryMax)
	}
}

// Kubernetes mounts ConfigMap items through symlinked directories
// (es -> ..data/es); they must be read, not silently skipped.
func TestOverrideThroughSymlinks(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "..data/es/breach.sms.tmpl", "{{sev .Severity}}: desde configmap {{.CaseRef}} Ref {{.AlertRef}}")
	if err := os.Symlink(filepath.Join("..data", "es"), filepath.Join(dir, "es")); err != nil {
		t.Skip("symlinks not available:", err)
	}
	s := mustNew(t, dir)
	r, err := s.Render("breach", ChannelSMS, "es", SampleData())
	if err != nil || !strings.Contains(r.Body, "desde configmap") {
		t.Errorf("symlinked override not used: %q, %v", r.Body, err)
	}
}
