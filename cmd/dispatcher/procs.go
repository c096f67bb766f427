package main

// oneProcessor says whether a command runs the simulator (simulate,
// test) and GOMAXPROCS is not set: then main runs it on one processor. A
// simulation is sequential (one instant of virtual time after the other),
// and each of its tens of thousands of Redis round trips hands control
// from the pipeline's goroutine to the embedded Redis's and back: on one
// processor that is a plain goroutine switch, on two the runtime parks and
// wakes threads for it. A simulated month took 40% less wall time and 25%
// less CPU on one (docs/policy-tests.md).
func oneProcessor(args []string, getenv env) bool {
	return len(args) > 0 && (args[0] == "simulate" || args[0] == "test") && getenv("GOMAXPROCS") == ""
}

// gcPercent is the garbage collector's GOGC for a command: 200 for the
// long-running service (run, dev) unless GOGC is set, else -1 (leave it).
// The stages allocate per message, and at the default of 100 collection
// took a quarter of the dispatcher's CPU in a burst; 200 trades some of
// it for a larger heap (peak RSS in a 20,000-alert burst: see
// docs/benchmarks.md), still far under the 100 MB the sizing allows.
// Deployments also set GOMEMLIMIT, which bounds the heap whatever GOGC.
func gcPercent(args []string, getenv env) int {
	if len(args) == 0 || (args[0] != "run" && args[0] != "dev") || getenv("GOGC") != "" {
		return -1
	}
	return 200
}
