//go:build !failpoints

package dispatcher

// failpoint marks a place where a test build (-tags failpoints) can make
// the process die by SIGKILL (failpoint_on.go); in every other build it
// does nothing.
func failpoint(string) {}
