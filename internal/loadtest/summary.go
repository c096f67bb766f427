package loadtest

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Summary prints the median (min–max) of the main figures of several runs
// of one mode: docs/benchmarks.md reports medians of 3.
func Summary(w io.Writer, rs []*Result) {
	if len(rs) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	var lost, dups int64
	for _, r := range rs {
		lost += r.Lost
		dups += r.Dups + r.Unexpected
	}
	p("summary of %d runs, mode %s, %d events%s: median (min–max); lost %d, duplicates %d in all runs",
		len(rs), rs[0].Mode, rs[0].Events, rateText(rs[0].Rate), lost, dups)
	row := func(name, unit string, f func(*Result) float64) {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = f(r)
		}
		sort.Float64s(vs)
		p("  %-44s %s", name, medText(vs, unit))
	}
	cpu := func(name string) func(*Result) float64 { return func(r *Result) float64 { return r.CPU[name] } }
	rss := func(name string) func(*Result) float64 {
		return func(r *Result) float64 { return float64(r.PeakRSS[name]) / (1 << 20) }
	}
	switch rs[0].Mode {
	case ModeTimers:
		row("all fired, s after the (last) due time", "s", func(r *Result) float64 { return r.TimerFiring.AllFiredSeconds })
		row("timers fired per second", "/s", func(r *Result) float64 { return r.TimerFiring.FiredPerSecond })
		row("lateness p50 (due -> event produced)", "ms", func(r *Result) float64 { return r.TimerFiring.Lateness.P50 })
		row("lateness p99", "ms", func(r *Result) float64 { return r.TimerFiring.Lateness.P99 })
		row("alert POST after due, p50", "ms", func(r *Result) float64 { return r.Latency.P50 })
		row("alert POST after due, p99", "ms", func(r *Result) float64 { return r.Latency.P99 })
		row("all alerts POSTed, s after due", "s", func(r *Result) float64 { return r.Seconds })
	default:
		what, to := "delivered per second", "first POST"
		if rs[0].Mode == ModeDecide {
			what, to = "decided per second (intents written)", "intent written"
		}
		row(what, "/s", func(r *Result) float64 { return r.PerSecond })
		row("latency p50 (publish -> "+to+")", "ms", func(r *Result) float64 { return r.Latency.P50 })
		row("latency p95", "ms", func(r *Result) float64 { return r.Latency.P95 })
		row("latency p99", "ms", func(r *Result) float64 { return r.Latency.P99 })
		row("latency max", "ms", func(r *Result) float64 { return r.Latency.Max })
	}
	row("machine load average (1 min) at the end", "", func(r *Result) float64 { return r.LoadAvg[1] })
	row("CPU-s dispatcher+redis+broker per 100k", "s", func(r *Result) float64 { return r.CPUServicePer100k })
	row("  of which dispatcher", "s", cpu("dispatcher"))
	row("  of which redis-server", "s", cpu("redis-server"))
	row("  of which broker", "s", cpu("broker"))
	row("peak RSS dispatcher", "MB", rss("dispatcher"))
	row("peak RSS redis-server", "MB", rss("redis-server"))
	row("peak RSS broker", "MB", rss("broker"))
	if rs[0].Escalations != nil {
		row("Redis bytes per open escalation", "B", func(r *Result) float64 { return r.Escalations.RedisBytesPerOpen })
		row("dispatcher RSS after, open escalations", "MB", func(r *Result) float64 {
			return float64(r.Escalations.DispatcherRSSAfter) / (1 << 20)
		})
	}
}

func medText(vs []float64, unit string) string {
	f := func(v float64) string {
		switch {
		case v >= 100:
			return fmt.Sprintf("%.0f", v)
		case v >= 10:
			return fmt.Sprintf("%.1f", v)
		default:
			return fmt.Sprintf("%.2f", v)
		}
	}
	if unit == "ms" && vs[len(vs)-1] >= 1000 {
		secs := make([]float64, len(vs))
		for i, v := range vs {
			secs[i] = v / 1000
		}
		vs, unit = secs, "s"
	}
	med := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		med = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	if len(vs) == 1 {
		return f(med) + " " + unit
	}
	return strings.TrimSpace(fmt.Sprintf("%s %s (%s–%s)", f(med), unit, f(vs[0]), f(vs[len(vs)-1])))
}
