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
