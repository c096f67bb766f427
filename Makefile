# The two commands a newcomer needs: `make run` and `make test`.
GO ?= go
CONFIG ?= deploy/config/viogen.yaml
EVENTS ?= deploy/examples/events.jsonl

.PHONY: run test lint bench fuzz build deps mutate chaos flake flake-quick policy-test load

# The dispatcher with an embedded Kafka broker and Redis and the example
# config; it publishes the example scenario so alerts show at once.
run: deps
	$(GO) run ./cmd/dispatcher dev --config $(CONFIG) --demo $(EVENTS)

# Every test, with the race detector, plus gofmt and go vet. The broker
# outage test runs without it: kafka-go v0.4.51 (the newest) has a data race
# between consumer-group generations (reader.go:112 against :1190) that a
# broker restart provokes and the detector flagged in 2 of about 10 full
# runs; what that test checks (readiness, recovery) still runs.
RACE_UPSTREAM = TestServiceSurvivesKafkaOutage$$
test: deps lint
	$(GO) test -race -count=1 -timeout 20m -skip '$(RACE_UPSTREAM)' ./...
	$(GO) test -count=1 -timeout 5m -run '$(RACE_UPSTREAM)' ./dispatcher

# The policy tests of the example configuration alone (make test runs them
# too, through TestPolicyTestsShipped); see docs/policy-tests.md.
policy-test:
	$(GO) run ./cmd/dispatcher test deploy/config/tests/*.yaml

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Benchmarks against real servers; figures go in docs/benchmarks.md.
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./... | tee bench.out

# The load command of issue 9 against the real binary, a redis-server and a
# broker (figures in docs/benchmarks.md). LOAD_MODE = burst | steady | timers
# | escalations; LOAD_EVENTS (default 20000); LOAD_RATE events/s (steady);
# LOAD_ARGS for more flags (go run ./cmd/loadtest --help).
LOAD_MODE ?= burst
LOAD_EVENTS ?= 20000
LOAD_RATE ?= 0
load: deps
	$(GO) run ./cmd/loadtest --mode $(LOAD_MODE) --events $(LOAD_EVENTS) --rate $(LOAD_RATE) $(LOAD_ARGS)

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 60s ./event

build:
	$(GO) build -o bin/dispatcher ./cmd/dispatcher

# Mutation testing (gremlins) of event, rules and the core dispatcher files,
# each group with its own tests; slow (hours on 2 cores), not part of `make test`.
# MUTATE_GROUPS="event rules" runs a subset; see docs/testing.md.
mutate: deps
	./scripts/mutate.sh

# The kill -9 crash tests at a larger size than make test's (2,000 events,
# 10 kills; hand-off: 4 kills; death between hand-off and intent write: 3):
# 10,000 events, 30 kills; 20 kills of the hand-off test; 10 deaths at the
# hand-off failpoint. Override with E2E_EVENTS, E2E_KILLS,
# E2E_HANDOFF_KILLS, E2E_FAILPOINT_KILLS.
chaos: deps
	E2E_EVENTS=$${E2E_EVENTS:-10000} E2E_KILLS=$${E2E_KILLS:-30} E2E_SETTLE=$${E2E_SETTLE:-10m} \
	E2E_HANDOFF_KILLS=$${E2E_HANDOFF_KILLS:-20} E2E_FAILPOINT_KILLS=$${E2E_FAILPOINT_KILLS:-10} \
	  $(GO) test -count=1 -timeout 60m -run 'TestKill9LosesNothing|TestKill9HandedOffLoneAlertsLoseNothing|TestKill9BetweenHandoffAndIntentWriteLosesNothing' -v ./internal/e2e

# The delivery, ladder and timer tests 20 times in a row, with the race detector.
flake: deps
	$(GO) test -race -count=20 -failfast -timeout 110m -run '$(FLAKE_TESTS)' ./dispatcher

# The same 20 times without the race detector (about 5x faster).
flake-quick: deps
	$(GO) test -count=20 -failfast -timeout 60m -run '$(FLAKE_TESTS)' ./dispatcher

FLAKE_TESTS = TestSlot|TestDeliver|TestHandoff|TestLadder|TestTimers|TestMissedCheckin|TestCheckin|TestLane|TestOffer|TestBegin|TestRateLimit|TestBatch|TestCritical|TestTimerRound|TestConcurrentClaims|TestClaim|TestQueue|TestStoreCatchesUp|TestIngestPipeline|TestFillBatch|TestEscalationTimeoutsFire|TestEscalationsByRefs

# Tests start their own redis-server, and the console's browser test a
# headless Debian chromium; install them if this machine lacks them.
deps:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (Debian package)"; \
	  (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null || \
	  { echo "redis-server is required: apt-get install redis-server"; exit 1; }; }
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (Debian package, for the console browser test)"; \
	  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null || \
	  { echo "chromium is required: apt-get install chromium"; exit 1; }; }
