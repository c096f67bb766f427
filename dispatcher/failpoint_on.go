//go:build failpoints

package dispatcher

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// failpoint, in a build with -tags failpoints (internal/e2e's kill tests),
// kills the process with SIGKILL the Nth time the named place is reached,
// as DISPATCHER_FAILPOINT=name[:N] asks (N defaults to 1). Nothing after
// it runs: the process dies exactly there, as a crash would.
func failpoint(name string) {
	fpOnce.Do(readFailpoint)
	if name != fpName {
		return
	}
	fpMu.Lock()
	fpHits++
	hit := fpHits == fpAt
	fpMu.Unlock()
	if !hit {
		return
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}

var (
	fpOnce sync.Once
	fpMu   sync.Mutex
	fpName string
	fpAt   = 1
	fpHits int
)

func readFailpoint() {
	v := os.Getenv("DISPATCHER_FAILPOINT")
	name, at, ok := strings.Cut(v, ":")
	fpName = name
	if n, err := strconv.Atoi(at); ok && err == nil && n > 0 {
		fpAt = n
	}
}
