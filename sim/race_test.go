//go:build race

package sim

// raceEnabled: the month test is skipped under the race detector (make
// test), where it takes minutes; go test ./sim runs it.
const raceEnabled = true
