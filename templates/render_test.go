package templates

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// The names the example config and the rules refer to.
var wantNames = []string{
	"aggressor_release", "breach", "checkin_missed", "device_alarm", "escalation_unacked",
	"patrol_digest", "protection_order", "reassessment_overdue", "relocation", "risk_rise", "unrouted",
}

var wantLocales = []string{"es", "ca", "en"}

var defaultSet = sync.OnceValues(func() (*Set, error) { return New("") })

func mustNew(t testing.TB, dir string) *Set {
	t.Helper()
	var s *Set
	var err error
	if dir == "" {
		s, err = defaultSet() // read-only after New: safe to share between tests
	} else {
		s, err = New(dir)
	}
	if err != nil {
		t.Fatalf("New(%q): %v", dir, err)
	}
	return s
}

// variants returns realistic synthetic data, worst cases for length
// included: 12-character case reference, 6-character ack code, long agency
// names, deadline, unrouted, every severity and level.
func variants() map[string]Data {
	loc := madrid()
	due := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC) // the night Spain moves to summer time
	digest := func(n int) []DigestItem {
		levels := []string{"extremo", "alto", "alto", "medio", "bajo"}
		var items []DigestItem
		for i := range n {
			items = append(items, DigestItem{
				CaseRef: fmt.Sprintf("C-HER-%06d", 1000+i),
				Level:   levels[i%len(levels)],
				DueAt:   due.Add(time.Duration(i) * 45 * time.Minute),
			})
		}
		return items
	}
	base := Data{
		AlertRef: "a3f9c2d1e8b74a10", CaseRef: "C-HER-001234", Severity: "critical",
		Level: "extremo", PrevLevel: "medio", EventType: "risk.assessed",
		Deadline: due, Location: loc, Agency: "Policía Local de Herencia",
		OtherAgency: "Comisaría Provincial de Policía Nacional de Ciudad Real",
		AckCode:     "K7Q2XZ", Step: 1, Round: 2,
		Link:   "VioGén > Expediente C-HER-001234",
		Digest: digest(10),
	}
	v := map[string]Data{"full": base}
	worst := base
	worst.Unrouted = true
	v["unrouted"] = worst
	noDeadline := base
	noDeadline.Deadline, noDeadline.AckCode, noDeadline.Link = time.Time{}, "", ""
	v["no-deadline-no-ack"] = noDeadline
	for _, sev := range []string{"info", "warning", "error"} {
		d := worst
		d.Severity = sev
		v["unrouted-"+sev] = d
	}
	for _, lv := range []string{"bajo", "no_apreciado", "alto", ""} {
		d := worst
		d.Level, d.PrevLevel = lv, ""
		v["level-"+lv] = d
	}
	expired := worst
	expired.EventType = "protection_order.expired"
	v["order-expired"] = expired
	action := worst
	action.Action = "Avise a la sala de guardia."
	v["action"] = action
	utc := base
	utc.Location = time.UTC
	utc.Agency = "Institut Balear de la Dona"
	utc.Digest = digest(1)
	v["utc-one-item"] = utc
	missed := worst
	missed.Missed, missed.MissedSince = 12, due.Add(-26*time.Hour)
	v["missed-after-outage"] = missed
	empty := Data{AlertRef: "0b1c2d3e4f5a6b7c", CaseRef: "C-PMI-0002", Severity: "warning"}
	v["minimal"] = empty
	return v
}

// Personal names and forms of address must never appear; Data has no
// field that could carry them, so only a template literal could.
var personNameRE = regexp.MustCompile(`(?i)\b(María|Carmen|Josefa|Isabel|Lucía|Laura|Marta|Antonio|José|Manuel|Francisco|Juan|Javier|David|García|Rodríguez|González|Fernández|López|Martínez|Sánchez|Pérez|Gómez|Jiménez|Señora|Señor|Doña)\b`)

func TestDefaultsComplete(t *testing.T) {
	s := mustNew(t, "")
	if got := s.Names(); !slices.Equal(got, wantNames) {
		t.Fatalf("Names() = %v, want %v", got, wantNames)
	}
	for _, name := range wantNames {
		if !s.Has(name) {
			t.Errorf("Has(%q) = false", name)
		}
		for _, ch := range Channels {
			for _, loc := range wantLocales {
				if _, ok := s.tmpls[key{loc, name, ch}]; !ok {
					t.Errorf("no default %s/%s.%s.tmpl", loc, name, ch)
				}
			}
		}
	}
	if s.Has("nope") {
		t.Error(`Has("nope") = true`)
	}
}

// TestRenderEveryTemplate renders every template × channel × locale with
// every data variant, and fails on anything that looks like personal data,
// on a forbidden word, and on an SMS longer than one GSM-7 segment.
func TestRenderEveryTemplate(t *testing.T) {
	s := mustNew(t, "")
	vs := variants()
	maxSMS := map[string]int{}
	longest := map[string]string{}
	for _, name := range s.Names() {
		for _, ch := range Channels {
			for _, loc := range wantLocales {
				for vname, d := range vs {
					if testing.Short() && vname != "unrouted" && vname != "minimal" {
						continue
					}
					where := fmt.Sprintf("%s/%s.%s [%s]", loc, name, ch, vname)
					r, err := s.Render(name, ch, loc, d)
					if err != nil {
						t.Errorf("%s: %v", where, err)
						continue
					}
					text := r.Subject + "\n" + r.Body
					if err := CheckPrivacy(text); err != nil {
						t.Errorf("%s: %v\n%s", where, err, text)
					}
					if m := personNameRE.FindString(text); m != "" {
						t.Errorf("%s: personal name or form of address %q\n%s", where, m, text)
					}
					if strings.Contains(text, "{{") || strings.Contains(text, "<no value>") {
						t.Errorf("%s: template leftovers\n%s", where, text)
					}
					checkChannel(t, where, ch, r, d)
					if ch == ChannelSMS {
						k := loc + "/" + name
						if n := utf8.RuneCountInString(r.Body); n > maxSMS[k] {
							maxSMS[k], longest[k] = n, r.Body
						}
					}
				}
			}
		}
	}
	keys := make([]string, 0, len(maxSMS))
	for k := range maxSMS {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		segs, gsm := GSM7Segments(longest[k])
		t.Logf("max SMS %-27s %3d chars, %d segment(s), gsm7=%v: %s", k, maxSMS[k], segs, gsm, longest[k])
	}
}

func checkChannel(t *testing.T, where, ch string, r Rendered, d Data) {
	t.Helper()
	switch ch {
	case ChannelSMS:
		if r.Subject != "" {
			t.Errorf("%s: SMS has a subject", where)
		}
		// One segment, except a timer alert covering several missed periods
		// (after an outage: rare), which may take two to say since when.
		want := 1
		if d.Missed > 1 {
			want = 2
		}
		if segs, gsm := GSM7Segments(r.Body); segs > want || !gsm {
			t.Errorf("%s: SMS needs %d segment(s), gsm7=%v (%d chars), want %d GSM-7 segment(s):\n%s",
				where, segs, gsm, utf8.RuneCountInString(r.Body), want, r.Body)
		}
		if !strings.Contains(r.Body, "Ref "+d.AlertRef) {
			t.Errorf("%s: SMS lacks the alert reference: %s", where, r.Body)
		}
		if d.AckCode != "" && !strings.Contains(r.Body, "ACK "+d.AckCode) {
			t.Errorf("%s: SMS lacks the ack instruction: %s", where, r.Body)
		}
		if dl := formatTime(d.Deadline, d.Location); dl != "" && !strings.Contains(r.Body, dl) {
			t.Errorf("%s: SMS lacks the deadline %s: %s", where, dl, r.Body)
		}
	case ChannelEmail, ChannelWebhook:
		if r.Subject == "" || r.Body == "" {
			t.Errorf("%s: empty subject or body: %+v", where, r)
		}
		if !strings.Contains(r.Body, d.AlertRef) {
			t.Errorf("%s: body lacks the alert reference", where)
		}
		if ch == ChannelWebhook && utf8.RuneCountInString(r.Subject) > 120 {
			t.Errorf("%s: webhook subject is not short (%d chars): %s", where, utf8.RuneCountInString(r.Subject), r.Subject)
		}
	case ChannelPager:
		if r.Subject == "" || utf8.RuneCountInString(r.Subject) > PagerSummaryMax {
			t.Errorf("%s: pager summary empty or over %d chars: %q", where, PagerSummaryMax, r.Subject)
		}
		if !strings.Contains(r.Subject, d.AlertRef) {
			t.Errorf("%s: pager summary lacks the alert reference", where)
		}
	}
	if strings.ContainsAny(r.Subject, "\r\n") {
		t.Errorf("%s: subject has a line break: %q", where, r.Subject)
	}
}

// TestExampleConfigTemplates checks every template the example configs
// name exists (read with a regexp: this package may not import the config
// model).
// dispatcherConfig tells a dispatcher configuration by its top-level keys.
var dispatcherConfig = regexp.MustCompile(`(?m)^agencies:\s*$`)

func TestExampleConfigTemplates(t *testing.T) {
	s := mustNew(t, "")
	re := regexp.MustCompile(`(?m)^\s*-?\s*template:\s*["']?([A-Za-z0-9_]+)`)
	var files []string
	for _, pat := range []string{"../deploy/*/*.y*ml", "../deploy/*.y*ml", "../deploy/*/*/*.y*ml"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !dispatcherConfig.Match(b) {
			continue // Kubernetes, compose or Prometheus files have "template:" keys of their own
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			seen++
			if !s.Has(m[1]) {
				t.Errorf("%s names template %q, which does not exist", f, m[1])
			}
		}
	}
	t.Logf("%d template references in %d example config file(s)", seen, len(files))
}

func TestRenderErrors(t *testing.T) {
	s := mustNew(t, "")
	d := SampleData()
	if _, err := s.Render("no_such", ChannelSMS, "es", d); err == nil || !strings.Contains(err.Error(), "no_such") {
		t.Errorf("unknown template: err = %v", err)
	}
	if _, err := s.Render("risk_rise", "fax", "es", d); err == nil || !strings.Contains(err.Error(), "fax") {
		t.Errorf("unknown channel: err = %v", err)
	}
	if _, err := s.Render("", ChannelSMS, "es", d); err == nil {
		t.Error("empty name: no error")
	}
}

func TestLocaleFallback(t *testing.T) {
	s := mustNew(t, "")
	d := SampleData()
	es, err := s.Render("breach", ChannelEmail, "es", d)
	if err != nil {
		t.Fatal(err)
	}
	for _, loc := range []string{"", "fr", "ES", "es-ES", "es_ES.UTF-8"} {
		r, err := s.Render("breach", ChannelEmail, loc, d)
		if err != nil || r != es {
			t.Errorf("locale %q: got %+v, %v; want the es text", loc, r.Subject, err)
		}
	}
	ca, _ := s.Render("breach", ChannelEmail, "ca", d)
	caES, _ := s.Render("breach", ChannelEmail, "ca-ES", d)
	en, _ := s.Render("breach", ChannelEmail, "en", d)
	if ca == es || en == es || ca == en || caES != ca {
		t.Errorf("ca/en not localized:\nes: %s\nca: %s\nen: %s", es.Subject, ca.Subject, en.Subject)
	}

	// A template that exists only in es renders in es for every locale.
	dir := t.TempDir()
	writeFile(t, dir, "es/custom_notice.sms.tmpl", `{{sev .Severity}}: aviso exp {{.CaseRef}}. Ref {{.AlertRef}}`)
	s = mustNew(t, dir)
	r, err := s.Render("custom_notice", ChannelSMS, "ca", d)
	if err != nil || r.Body != "CRITICA: aviso exp C-HER-0001. Ref a3f9c2d1e8b74a10" {
		t.Errorf("fallback: %q, %v", r.Body, err)
	}
	if !s.HasChannel("custom_notice", ChannelSMS) || s.HasChannel("custom_notice", ChannelEmail) {
		t.Error("HasChannel wrong for an sms-only template")
	}
	if _, err := s.Render("custom_notice", ChannelEmail, "es", d); err == nil || !strings.Contains(err.Error(), "email") {
		t.Errorf("missing channel: err = %v", err)
	}
}

func TestDeadlineZone(t *testing.T) {
	s := mustNew(t, "")
	d := SampleData()
	d.Deadline = time.Date(2026, 7, 1, 13, 4, 0, 0, time.UTC)
	d.Location = nil // Europe/Madrid, summer: UTC+2
	r, err := s.Render("checkin_missed", ChannelSMS, "es", d)
	if err != nil || !strings.Contains(r.Body, "Plazo 15:04 01/07.") {
		t.Errorf("Madrid summer: %q, %v", r.Body, err)
	}
	d.Deadline = time.Date(2026, 1, 1, 13, 4, 0, 0, time.UTC) // winter: UTC+1
	r, _ = s.Render("checkin_missed", ChannelSMS, "es", d)
	if !strings.Contains(r.Body, "Plazo 14:04 01/01.") {
		t.Errorf("Madrid winter: %q", r.Body)
	}
	d.Location = time.UTC
	r, _ = s.Render("checkin_missed", ChannelSMS, "es", d)
	if !strings.Contains(r.Body, "Plazo 13:04 01/01.") {
		t.Errorf("UTC: %q", r.Body)
	}
	d.Deadline = time.Time{}
	r, _ = s.Render("checkin_missed", ChannelSMS, "es", d)
	if strings.Contains(r.Body, "Plazo") {
		t.Errorf("zero deadline shown: %q", r.Body)
	}
}

func TestActionReplacesDefault(t *testing.T) {
	s := mustNew(t, "")
	d := SampleData()
	d.Action = "  Avise a la sala de guardia. "
	r, err := s.Render("risk_rise", ChannelSMS, "es", d)
	if err != nil || !strings.Contains(r.Body, " Avise a la sala de guardia. ") || strings.Contains(r.Body, "Revise") {
		t.Errorf("action: %q, %v", r.Body, err)
	}
}

func TestSMSExactText(t *testing.T) {
	s := mustNew(t, "")
	r, err := s.Render("risk_rise", ChannelSMS, "es", SampleData())
	want := "CRITICA: riesgo ALTO->EXTREMO exp C-HER-0001. Revise la proteccion ya. Plazo 15:04 02/01. Responda ACK K7Q2. Ref a3f9c2d1e8b74a10"
	if err != nil || r.Body != want {
		t.Errorf("got  %q, %v\nwant %q", r.Body, err, want)
	}
}

func writeFile(t *testing.T, dir, rel, text string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func BenchmarkRender(b *testing.B) {
	s := mustNew(b, "")
	d := SampleData()
	for _, ch := range Channels {
		b.Run(ch, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Render("risk_rise", ch, "es", d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestRenderConcurrent(t *testing.T) {
	s := mustNew(t, "")
	d := SampleData()
	done := make(chan error)
	for i := range 8 {
		go func() {
			var err error
			for j := range 50 {
				name := wantNames[(i+j)%len(wantNames)]
				if _, e := s.Render(name, Channels[j%len(Channels)], wantLocales[i%len(wantLocales)], d); e != nil {
					err = e
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// BenchmarkNew measures load + parse + dry run of every template.
func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		if _, err := New(""); err != nil {
			b.Fatal(err)
		}
	}
}
