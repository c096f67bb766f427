package templates

import (
	"fmt"
	"strings"
	"sync"
	"text/template"
	"time"
	_ "time/tzdata" // Europe/Madrid must resolve even in images without zoneinfo

	"github.com/viogen-alerts/dispatcher/event"
)

// TimeLayout is how deadlines and due times are shown: "15:04 02/01".
const TimeLayout = "15:04 02/01"

var madrid = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation("Europe/Madrid")
	if err != nil { // cannot happen with time/tzdata linked in
		return time.UTC
	}
	return loc
})

// severityWords and levelWords translate the codes a template shows.
// Severity words are upper case (they head SMS and subjects); level words
// lower case (templates pipe them through upper where needed).
var severityWords = map[string]map[string]string{
	"es": {"info": "INFO", "warning": "AVISO", "error": "URGENTE", "critical": "CRÍTICA"},
	"ca": {"info": "INFO", "warning": "AVÍS", "error": "URGENT", "critical": "CRÍTICA"},
	"en": {"info": "INFO", "warning": "WARNING", "error": "URGENT", "critical": "CRITICAL"},
}

var levelWords = map[string]map[event.Level]string{
	"es": {event.Bajo: "bajo", event.Medio: "medio", event.Alto: "alto", event.Extremo: "extremo"},
	"ca": {event.Bajo: "baix", event.Medio: "mitjà", event.Alto: "alt", event.Extremo: "extrem"},
	"en": {event.Bajo: "low", event.Medio: "medium", event.Alto: "high", event.Extremo: "extreme"},
}

// funcsFor returns the FuncMap for templates of one locale. Words for a
// locale without a dictionary fall back to the default locale's.
func funcsFor(locale string) template.FuncMap {
	sev, ok := severityWords[locale]
	if !ok {
		sev = severityWords[DefaultLocale]
	}
	lev, ok := levelWords[locale]
	if !ok {
		lev = levelWords[DefaultLocale]
	}
	level := func(name string) string { return levelWord(lev, name) }
	return template.FuncMap{
		"sev": func(s string) string {
			if w, ok := sev[s]; ok {
				return w
			}
			return strings.ToUpper(s)
		},
		"level":       level,
		"levelCounts": func(items []DigestItem) string { return levelCounts(level, items) },
		"deadline":    func(d Data) string { return formatTime(d.Deadline, d.Location) },
		"hm":          formatTime,
		"firstDue":    firstDue,
		"upper":       strings.ToUpper,
		"lower":       strings.ToLower,
		"clause":      clause,
		"inc":         func(i int) int { return i + 1 },
		"plural":      plural,
	}
}

func levelWord(words map[event.Level]string, name string) string {
	if name == "" {
		return ""
	}
	l, err := event.ParseLevel(name)
	if err != nil {
		return name
	}
	return words[l]
}

// formatTime shows t in loc (nil = Europe/Madrid) as TimeLayout; zero is "".
func formatTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	if loc == nil {
		loc = madrid()
	}
	return t.In(loc).Format(TimeLayout)
}

// firstDue is the earliest non-zero DueAt of items (zero when none).
func firstDue(items []DigestItem) time.Time {
	var first time.Time
	for _, it := range items {
		if !it.DueAt.IsZero() && (first.IsZero() || it.DueAt.Before(first)) {
			first = it.DueAt
		}
	}
	return first
}

// levelCounts summarises a digest by level, highest first: "2 extremo, 8 alto".
func levelCounts(word func(string) string, items []DigestItem) string {
	counts := map[event.Level]int{}
	other := 0
	for _, it := range items {
		l, err := event.ParseLevel(it.Level)
		if err != nil {
			other++
			continue
		}
		counts[l]++
	}
	var parts []string
	for l := event.Extremo; l >= event.Bajo; l-- {
		if n := counts[l]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, word(l.String())))
		}
	}
	if other > 0 {
		parts = append(parts, fmt.Sprintf("%d ?", other))
	}
	return strings.Join(parts, ", ")
}

// clause trims s and its final full stop, so a template can add its own
// punctuation after a configured action text.
func clause(s string) string {
	return strings.TrimRight(strings.TrimSpace(s), ". ")
}

// plural writes n and the singular or plural word: "1 caso", "10 casos".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
