// Package e2e holds process-level tests: they build the real dispatcher
// binary, run it as child processes against an in-process Kafka-protocol
// broker (kfake), a real redis-server and provider fakes over real
// sockets, and kill, stop and restart it as an operator or an orchestrator
// would. The tests are in the _test files; this package has no API.
//
// They run in `go test ./...` (make test) and skip under -short.
// E2E_DISPATCHER_BIN runs them against a prebuilt binary instead of
// building ./cmd/dispatcher.
package e2e
