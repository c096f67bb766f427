// Package policytest reads policy test files (YAML: a configuration, a
// start time and zone, a timeline of inputs and the expected outputs),
// runs each on the simulator (package sim) and compares what happened
// with what was expected, as `promtool test rules` does for alerting
// rules. The format is documented in docs/policy-tests.md.
package policytest
