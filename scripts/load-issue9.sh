#!/bin/sh
# The figures of docs/benchmarks.md, "Load command (issue 9)": each
# scenario RUNS times (default 3) with a fresh stack, medians printed at
# the end of each file. Output in OUT (default ./load-results).
#   scripts/load-issue9.sh                 # everything, 3 runs each
#   RUNS=1 SCENARIOS="burst steady" scripts/load-issue9.sh
set -eu
RUNS=${RUNS:-3}
OUT=${OUT:-load-results}
SCENARIOS=${SCENARIOS:-"burst steady timers escalations decide"}
BURST_EVENTS=${BURST_EVENTS:-100000}
STEADY_RATE=${STEADY_RATE:-500}
STEADY_SECONDS=${STEADY_SECONDS:-30}
TIMER_EVENTS=${TIMER_EVENTS:-100000}
ESC_EVENTS=${ESC_EVENTS:-100000}
mkdir -p "$OUT"
go build -o "$OUT/loadtest" ./cmd/loadtest
go build -o "$OUT/dispatcher" ./cmd/dispatcher
run() { # name, flags...
	name=$1; shift
	echo "== $name: loadtest $* --runs $RUNS" >&2
	"$OUT/loadtest" --dispatcher "$OUT/dispatcher" --runs "$RUNS" --json "$OUT/$name.json" "$@" \
		>"$OUT/$name.txt" 2>"$OUT/$name.log" || echo "$name: exit $? (see $OUT/$name.log)" >&2
}
for s in $SCENARIOS; do
	case $s in
	burst) run burst --mode burst --events "$BURST_EVENTS" ;;
	steady) run steady --mode steady --rate "$STEADY_RATE" --events $((STEADY_RATE * STEADY_SECONDS)) ;;
	timers) run timers --mode timers --events "$TIMER_EVENTS" ;;
	escalations) run escalations --mode escalations --events "$ESC_EVENTS" ;;
	decide) run decide --mode decide --events "$BURST_EVENTS" ;;
	*) echo "unknown scenario $s" >&2; exit 2 ;;
	esac
done
echo "results in $OUT/*.txt" >&2
