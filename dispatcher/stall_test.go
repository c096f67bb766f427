package dispatcher

import (
	"os"
	"runtime/pprof"
	"testing"
	"time"
)

// dumpGoroutines writes every goroutine's stack to a file in the temp
// directory and names it in the test log: called when a wait for
// something expected runs out, so a stall can be diagnosed afterwards.
func dumpGoroutines(t testing.TB, what string) {
	f, err := os.CreateTemp("", "dispatcher-stall-*.txt")
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(time.Now().Format(time.RFC3339Nano) + " " + t.Name() + ": " + what + "\n")
	_ = pprof.Lookup("goroutine").WriteTo(f, 2)
	t.Logf("goroutines at the timeout: %s", f.Name())
}
