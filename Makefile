# The two commands a newcomer needs: `make run` and `make test`.
GO ?= go
CONFIG ?= deploy/config/viogen.yaml
EVENTS ?= deploy/examples/events.jsonl

.PHONY: run test lint bench fuzz build deps mutate

# The dispatcher with an embedded Kafka broker and Redis and the example
# config; it publishes the example scenario so alerts show at once.
run: deps
	$(GO) run ./cmd/dispatcher dev --config $(CONFIG) --demo $(EVENTS)

# Every test, with the race detector, plus gofmt and go vet.
test: deps lint
	$(GO) test -race -count=1 -timeout 20m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Benchmarks against real servers; figures go in docs/benchmarks.md.
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./... | tee bench.out

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 60s ./event

build:
	$(GO) build -o bin/dispatcher ./cmd/dispatcher

# Mutation testing (gremlins) of event, rules and the core dispatcher files,
# each group with its own tests; slow (hours on 2 cores), not part of `make test`.
# MUTATE_GROUPS="event rules" runs a subset; see docs/testing.md.
mutate: deps
	./scripts/mutate.sh

# Tests start their own redis-server; install it if this machine lacks it.
deps:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (Debian package)"; \
	  (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null || \
	  { echo "redis-server is required: apt-get install redis-server"; exit 1; }; }
