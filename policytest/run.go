package policytest

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/viogen-alerts/dispatcher/rules"
	"github.com/viogen-alerts/dispatcher/sim"
	"github.com/viogen-alerts/dispatcher/templates"
)

// Problem is one difference between expected and got.
type Problem struct {
	At   time.Time
	Sign string // "-" expected, not got; "+" got, not expected; "!" sent in a nothing window
	Text string
	Hint string
}

// Result is one test file's run.
type Result struct {
	File     *File
	Records  []sim.Record
	Problems []Problem
	Met      int // expectations met
	Elapsed  time.Duration
	Engine   *sim.Engine // counts of what was handled
}

// Passed reports whether the run met every expectation.
func (r *Result) Passed() bool { return len(r.Problems) == 0 }

// Run simulates the file's timeline on its configuration and compares
// the outcome with its expectations. An error means the test could not
// run (a configuration or template that does not load, a failing
// simulation); unmet expectations are Problems.
func Run(ctx context.Context, f *File, log io.Writer) (*Result, error) {
	tmpl, err := templates.New(f.Templates)
	if err != nil {
		return nil, fmt.Errorf("%s: templates: %w", f.Path, err)
	}
	cfg, err := rules.LoadFile(f.Config, rules.LoadOptions{Templates: tmpl.Has, TemplateChannel: tmpl.HasChannel})
	if err != nil {
		return nil, fmt.Errorf("%s: configuration: %w", f.Path, err)
	}
	begin := time.Now()
	e, err := sim.New(sim.Options{Config: cfg, Templates: tmpl, Start: f.Start, Log: log})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	if err := e.Run(ctx, f.Inputs, f.Until); err != nil {
		return nil, fmt.Errorf("%s: simulation: %w", f.Path, err)
	}
	res := &Result{File: f, Records: e.Records(), Elapsed: time.Since(begin), Engine: e}
	res.compare()
	return res, nil
}

// compare matches expectations to records and lists the differences.
func (r *Result) compare() {
	loc := r.File.Zone
	matched := make([]bool, len(r.Records))
	xs := make([]*Expectation, 0, len(r.File.Expect))
	for _, x := range r.File.Expect {
		if x.Kind != "nothing" {
			xs = append(xs, x)
		}
	}
	sort.SliceStable(xs, func(i, j int) bool { return xs[i].specificity() > xs[j].specificity() })
	for _, x := range xs {
		if i := r.find(x, matched); i >= 0 {
			matched[i] = true
			r.Met++
			continue
		}
		r.Problems = append(r.Problems, Problem{At: x.At, Sign: "-", Text: x.text(loc), Hint: r.hint(x, matched)})
	}
	for i, rec := range r.Records {
		switch {
		case rec.Kind == sim.KindError, rec.Kind == sim.KindDeadLetter:
			r.Problems = append(r.Problems, Problem{At: rec.At, Sign: "+", Text: rec.Text(loc)})
		case r.File.Exhaustive && !matched[i] && (rec.Kind == sim.KindNotification || rec.Kind == sim.KindDigest):
			r.Problems = append(r.Problems, Problem{At: rec.At, Sign: "+", Text: rec.Text(loc)})
		}
	}
	r.windows()
	sort.SliceStable(r.Problems, func(i, j int) bool { return r.Problems[i].At.Before(r.Problems[j].At) })
}

func (r *Result) find(x *Expectation, matched []bool) int {
	for i, rec := range r.Records {
		if !matched[i] && rec.Kind == x.Kind && rec.At.Equal(x.At) && x.M.matches(rec) {
			return i
		}
	}
	return -1
}

// hint says where a missing record was found at another time.
func (r *Result) hint(x *Expectation, matched []bool) string {
	for i, rec := range r.Records {
		if !matched[i] && rec.Kind == x.Kind && x.M.matches(rec) {
			return "got at " + sim.FormatTime(rec.At, r.File.Zone) + " instead"
		}
	}
	return ""
}

// windows checks the nothing expectations.
func (r *Result) windows() {
	for _, x := range r.File.Expect {
		if x.Kind != "nothing" {
			continue
		}
		met := true
		for _, rec := range r.Records {
			if (rec.Kind == sim.KindNotification || rec.Kind == sim.KindDigest) && !rec.At.Before(x.From) && rec.At.Before(x.Until) && x.M.matches(rec) {
				met = false
				r.Problems = append(r.Problems, Problem{At: rec.At, Sign: "!", Text: rec.Text(r.File.Zone),
					Hint: fmt.Sprintf("nothing expected from %s until %s [line %d]", sim.FormatTime(x.From, r.File.Zone), sim.FormatTime(x.Until, r.File.Zone), x.Line)})
			}
		}
		if met {
			r.Met++
		}
	}
}

// Write prints the result as a test runner does: one line when it
// passed; else the differences, expected (-) against got (+).
func (r *Result) Write(w io.Writer) {
	f := r.File
	name := f.Path
	if f.Name != "" {
		name += ": " + f.Name
	}
	if r.Passed() {
		fmt.Fprintf(w, "ok    %s (%d expectations, %d notifications, %s simulated in %s)\n", name, r.Met,
			r.Engine.Notifications, span(f.Until.Sub(f.Start)), r.Elapsed.Round(time.Millisecond))
		return
	}
	fmt.Fprintf(w, "FAIL  %s: %d of %d expectations met, %d problems\n", name, r.Met, len(f.Expect), len(r.Problems))
	fmt.Fprintf(w, "      times in %s; - expected, not got; + got, not expected; ! sent in a window where nothing was expected\n", f.Zone)
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  %s %s\n", p.Sign, p.Text)
		if p.Hint != "" {
			fmt.Fprintf(w, "        %s\n", p.Hint)
		}
	}
}

// span writes a duration in days and hours when it is long.
func span(d time.Duration) string {
	if d >= 24*time.Hour {
		days := d / (24 * time.Hour)
		rest := d - days*24*time.Hour
		if rest == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%s", days, rest)
	}
	return d.String()
}
