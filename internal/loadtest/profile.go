package loadtest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// profiler takes a CPU profile of a dispatcher built with -tags
// loadprofile (cmd/dispatcher/pprof_loadprofile.go), which serves pprof
// on DISPATCHER_PPROF_ADDR.
type profiler struct {
	addr    string
	path    string
	seconds int
	done    chan error
}

func newProfiler(path string, seconds int) (*profiler, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if seconds <= 0 {
		seconds = 20
	}
	return &profiler{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), path: path, seconds: seconds}, nil
}

func (p *profiler) env() []string { return []string{"DISPATCHER_PPROF_ADDR=" + p.addr} }

// start begins a profile of the next p.seconds in the background.
func (p *profiler) start() {
	if p == nil {
		return
	}
	p.done = make(chan error, 1)
	go func() {
		c := &http.Client{Timeout: time.Duration(p.seconds+30) * time.Second}
		resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.addr, p.seconds))
		if err != nil {
			p.done <- fmt.Errorf("cpu profile: %w (was the dispatcher built with -tags loadprofile?)", err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			p.done <- fmt.Errorf("cpu profile: %s", resp.Status)
			return
		}
		f, err := os.Create(p.path)
		if err == nil {
			_, err = io.Copy(f, resp.Body)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		p.done <- err
	}()
}

// wait waits for the profile to be written.
func (p *profiler) wait() error {
	if p == nil || p.done == nil {
		return nil
	}
	return <-p.done
}
