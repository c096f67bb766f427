package loadtest

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Targets of issue 9, printed next to the figures (ratio = target / measured
// for "at least" targets, measured / target for "at most" ones; ≥ 1 meets it).
const (
	targetBurstPerSecond = 15_000.0
	targetCPUPer100k     = 10.0
	targetSteadyP50      = 1.0 // ms
	targetSteadyP99      = 5.0 // ms
	target100kFired      = 5.0 // s
	targetRedisPerEsc    = 1536.0
	targetDispatcherRSS  = 100 << 20
)

// Print writes a human-readable report.
func (res *Result) Print(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("mode %s, %d events%s, %s, load average %.1f -> %.1f", res.Mode, res.Events, rateText(res.Rate), res.Date.Format("2006-01-02 15:04 MST"), res.LoadAvg[0], res.LoadAvg[1])
	what := "distinct alerts"
	switch {
	case res.Mode == ModeDecide:
		what = "intents (decided alerts, no delivery)"
	case res.Mode == ModeTimers && res.Latency.N == 0:
		what = "timers fired (decide stage only, no delivery)"
	}
	p("  delivered  %d %s, lost %d, duplicates %d (unexpected %d, fallback %d, bad signature %d)",
		res.Delivered, what, res.Lost, res.Dups, res.Unexpected, res.Fallback, res.BadSig)
	if res.Connections > 0 {
		p("  receiver   %d connections (TLS handshakes), %s", res.Connections, res.Proto)
	}
	switch res.Mode {
	case ModeTimers:
		t := res.TimerFiring
		p("  setup      %.2fs (publish %.2fs)%s", t.SetupSeconds, res.PublishSeconds, lateText(t.LateSetup))
		p("  fired      %d timer events; the last %.2fs after the (last) due time; %.0f/s", t.Fired, t.AllFiredSeconds, t.FiredPerSecond)
		p("  lateness   due -> event produced: %s", t.Lateness)
		if res.Latency.N > 0 {
			p("  alerts     due -> webhook POST: %s; all in %.2fs (%.0f/s)", res.Latency, res.Seconds, res.PerSecond)
		}
	case ModeDecide:
		p("  throughput %.0f events decided/s (first publish -> last intent written %.2fs; publishing took %.2fs)", res.PerSecond, res.Seconds, res.PublishSeconds)
		p("  latency    publish -> intent written: %s", res.Latency)
		p("  produce    broker ack per write call: %s", res.ProduceAck)
	default:
		p("  throughput %.0f delivered/s (first publish -> last first POST %.2fs; publishing took %.2fs)", res.PerSecond, res.Seconds, res.PublishSeconds)
		p("  latency    publish -> first POST: %s", res.Latency)
		p("  produce    broker ack per write call: %s", res.ProduceAck)
	}
	var names []string
	for k := range res.CPU {
		names = append(names, k)
	}
	sort.Strings(names)
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, res.CPU[k]))
	}
	p("  cpu        seconds in the measured window: %s", strings.Join(parts, ", "))
	p("             dispatcher+redis+broker per 100k events: %.1f CPU-s", res.CPUServicePer100k)
	parts = parts[:0]
	names = names[:0]
	for k := range res.PeakRSS {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %s", k, mb(res.PeakRSS[k])))
	}
	p("  peak rss   %s", strings.Join(parts, ", "))
	if len(res.RedisCommands) > 0 {
		var total int64
		for _, c := range res.RedisCommands {
			total += c.Usec
		}
		parts = parts[:0]
		for i, c := range res.RedisCommands {
			if i == 6 {
				break
			}
			parts = append(parts, fmt.Sprintf("%s %.0f%% (%d calls, %.0f µs each)", c.Command, 100*float64(c.Usec)/float64(max(total, 1)), c.Calls, c.UsecPerCall))
		}
		p("  redis time %.1f s in commands, whole run: %s", float64(total)/1e6, strings.Join(parts, "; "))
	}
	if e := res.Escalations; e != nil {
		p("  escalations open %d; Redis used_memory %s -> %s: %.0f bytes per open escalation (1M: %s)",
			e.Open, mb(e.RedisUsedBefore), mb(e.RedisUsedAfter), e.RedisBytesPerOpen, mb(e.ExtrapolatedRedis1M))
		p("             dispatcher RSS %s -> %s (peak %s), %.0f bytes per open escalation",
			mb(e.DispatcherRSSBefore), mb(e.DispatcherRSSAfter), mb(e.DispatcherPeakRSS), e.DispatcherRSSPerOpen)
		p("  redis keys (pattern, keys, estimated bytes from MEMORY USAGE samples):")
		for i, k := range e.RedisKeys {
			if i == 12 {
				p("    ... %d more patterns", len(e.RedisKeys)-i)
				break
			}
			p("    %-48s %9d %10s", k.Pattern, k.Keys, mb(k.Bytes))
		}
	}
	res.printTargets(p)
	if res.Dir != "" {
		p("  logs       %s", res.Dir)
	}
}

func (res *Result) printTargets(p func(string, ...any)) {
	p("  issue 9 targets (ratio ≥ 1 meets it):")
	switch res.Mode {
	case ModeBurst:
		p("    ≥ 15,000 delivered/s: %.0f (ratio %.2f); ≤ 10 CPU-s per 100k: %.1f (ratio %.2f); 0 lost: %d; 0 duplicates: %d",
			res.PerSecond, res.PerSecond/targetBurstPerSecond, res.CPUServicePer100k, targetCPUPer100k/res.CPUServicePer100k, res.Lost, res.Dups)
	case ModeDecide:
		p("    decide stage alone ≥ 50,000 events/s: %.0f (ratio %.2f)", res.PerSecond, res.PerSecond/50_000)
	case ModeSteady:
		p("    p50 ≤ 1 ms: %.2f ms (ratio %.2f); p99 ≤ 5 ms: %.2f ms (ratio %.2f)",
			res.Latency.P50, targetSteadyP50/res.Latency.P50, res.Latency.P99, targetSteadyP99/res.Latency.P99)
	case ModeTimers:
		t := res.TimerFiring
		switch {
		case res.Events == 1_000_000:
			p("    1,000,000 due at once all fired within 60 s: %.2fs (ratio %.2f)", t.AllFiredSeconds, 60/t.AllFiredSeconds)
		case res.Events == 100_000:
			p("    100,000 due at once all fired within 5 s: %.2fs (ratio %.2f)", t.AllFiredSeconds, 5/t.AllFiredSeconds)
		default:
			p("    100k in 5 s is 20,000 fired/s: %.0f/s (ratio %.2f; small runs are dominated by the 200 ms poll)", t.FiredPerSecond, t.FiredPerSecond/20_000)
		}
	case ModeEscalations:
		e := res.Escalations
		p("    Redis ≤ 1.5 KB per open escalation: %.0f B (ratio %.2f); dispatcher RSS < 100 MB at 1M: %s now at %d open",
			e.RedisBytesPerOpen, targetRedisPerEsc/e.RedisBytesPerOpen, mb(e.DispatcherPeakRSS), e.Open)
	}
}

func (d Dist) String() string {
	if d.N == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %s, p95 %s, p99 %s, max %s (n=%d)", ms(d.P50), ms(d.P95), ms(d.P99), ms(d.Max), d.N)
}

func ms(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.2fs", v/1000)
	}
	return fmt.Sprintf("%.2fms", v)
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

func rateText(r float64) string {
	if r <= 0 {
		return " (burst)"
	}
	return fmt.Sprintf(" at %g/s", r)
}

func lateText(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; WARNING: %d deadlines not set when due (raise --timer-lead)", n)
}
