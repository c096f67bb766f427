#!/bin/sh
# Mutation testing of the packages that hold the promises (event, rules and
# the core delivery/decide files of dispatcher), with gremlins
# (github.com/go-gremlins/gremlins). Run it as `make mutate`; see
# docs/testing.md for the figures and the reviewed survivors.
#
# How it stays practical:
#   - it works on a copy of the module in a temporary directory (never in the
#     checkout), so concurrent edits neither break the run nor get mutated;
#   - gremlins only tests mutants that the chosen tests cover, and kills a
#     mutant's run after (coverage run time x MUTATE_TIMEOUT_COEF);
#   - event and rules are mutated in full with their whole package tests;
#   - dispatcher is mutated file group by file group (the core files only),
#     each group with only its own tests, passed to every `go test` through
#     GOFLAGS=-run=<pattern> (gremlins itself has no -run option). The rest of
#     the dispatcher package is excluded with -E.
#
# Settings (environment):
#   MUTATE_GROUPS   which groups to run (default: all), names from the table below
#   MUTATE_REV      a git revision to mutate instead of the working tree (e.g. HEAD)
#   MUTATE_WORKERS  gremlins workers (default 1: the dispatcher tests start real
#                   servers and the machine is shared)
#   MUTATE_TIMEOUT_COEF  gremlins --timeout-coefficient (default 10: a mutant's
#                   rebuild on a loaded machine can outlast 5x the coverage run)
#   MUTATE_OUT      directory for the logs and JSON reports
#                   (default $TMPDIR/dispatcher-mutate, outside the checkout)
#   GREMLINS_VERSION (default v0.6.0)
set -eu

GREMLINS_VERSION=${GREMLINS_VERSION:-v0.6.0}
WORKERS=${MUTATE_WORKERS:-1}
COEF=${MUTATE_TIMEOUT_COEF:-10}
GROUPS_WANTED=${MUTATE_GROUPS:-all}
SRC=$(pwd)
OUT=${MUTATE_OUT:-${TMPDIR:-/tmp}/dispatcher-mutate}
case $OUT in /*) ;; *) OUT=$SRC/$OUT ;; esac

# group | package dir | files mutated (dispatcher only; empty = all) | -run pattern (empty = all)
GROUPS_TABLE='
event|event||
rules|rules||
ladder|dispatcher|ladder.go|TestLadder|TestMissedCheckin|TestCheckin|TestTimers
decide|dispatcher|decide.go suppress.go|TestDecide|TestCritical|TestLadder|TestMissedCheckin|TestCheckin
deliver-state|dispatcher|delivery_state.go deliver_queue.go pipebatch.go|TestDeliver|TestLane|TestOffer|TestBegin|TestBatch|TestClaim|TestConcurrentClaims|TestQueue
deliver|dispatcher|deliver.go deliver_finish.go deliver_handoff.go deliver_intake.go deliver_lane.go deliver_send.go deliver_throttle.go ratelimit.go|TestDeliver|TestLane|TestOffer|TestBegin|TestBatch|TestRateLimit|TestHandoff|TestIntake
ingest|dispatcher|ingest.go ingest_pipeline.go kafka.go state.go|TestIngest|TestStore|TestFillBatch|TestTimersOnlyTouched|TestDecideReplay
escalation|dispatcher|escalation.go escalation_record.go|TestEscalation|TestLadder|TestAck
'

[ -f go.mod ] || { echo "run from the module root" >&2; exit 2; }
command -v redis-server >/dev/null 2>&1 || { echo "redis-server is required (make deps)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mutate.XXXXXX")
cleanup() { chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/src" "$WORK/tmp" "$WORK/bin" "$OUT"

if [ -n "${MUTATE_REV:-}" ]; then
	git archive "$MUTATE_REV" | tar -xf - -C "$WORK/src"
else
	tar --exclude=./.git --exclude=./bin -cf - . | tar -xf - -C "$WORK/src"
fi

echo "installing gremlins $GREMLINS_VERSION"
GOBIN=$WORK/bin go install "github.com/go-gremlins/gremlins/cmd/gremlins@$GREMLINS_VERSION"

status=0
while IFS='|' read -r name dir files pattern; do
	[ -n "$name" ] || continue
	case " $GROUPS_WANTED " in *" all "* | *" $name "*) ;; *) continue ;; esac

	set -- unleash --workers "$WORKERS" --timeout-coefficient "$COEF" \
		-o "$OUT/$name.json"
	if [ -n "$files" ]; then
		# Exclude every non-test file of the package that is not in the group.
		for f in "$WORK/src/$dir"/*.go; do
			b=$(basename "$f")
			case $b in *_test.go) continue ;; esac
			case " $files " in *" $b "*) continue ;; esac
			set -- "$@" -E "^$(echo "$b" | sed 's/\./\\./g')\$"
		done
	fi
	set -- "$@" "./$dir"

	# -vet=off: go test would vet every mutant, which doubles the time.
	flags="${GOFLAGS:-} -vet=off"
	[ -n "$pattern" ] && flags="$flags -run=^($pattern)"
	echo "== $name: ./$dir ${files:+[$files]} ${pattern:+tests ^($pattern)}"
	start=$(date +%s)
	if ! (cd "$WORK/src" && TMPDIR=$WORK/tmp GOFLAGS="$flags" \
		"$WORK/bin/gremlins" "$@") >"$OUT/$name.log" 2>&1; then
		status=1
		echo "   gremlins failed, see the log"
	fi
	end=$(date +%s)
	grep -E 'LIVED|TIMED OUT|NOT VIABLE' "$OUT/$name.log" || true
	grep -E '^(Killed|Timed out|Test efficacy|Mutator coverage)' "$OUT/$name.log" || tail -5 "$OUT/$name.log"
	echo "   took $((end - start)) s; log $OUT/$name.log"
done <<GROUPS
$GROUPS_TABLE
GROUPS
exit $status
