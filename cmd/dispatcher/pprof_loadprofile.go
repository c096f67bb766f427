//go:build loadprofile

package main

// Built only with -tags loadprofile (the load command's --profile): serves
// net/http/pprof on DISPATCHER_PPROF_ADDR, a loopback address of its own,
// so a profile of the real binary under load can be taken. Production
// builds do not contain this file.

import (
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
)

func init() {
	if addr := os.Getenv("DISPATCHER_PPROF_ADDR"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
