package dispatcher

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler is the admin HTTP API: /healthz (the process is up), /readyz
// (every readiness check passes: Redis answers, the consumer is not
// failing, and each of Options.Checks), /metrics.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}))
	if s.opts.Routes != nil {
		s.opts.Routes(mux)
	}
	return mux
}

// readyTimeout bounds /readyz: it answers within it whatever its checks do.
const readyTimeout = time.Second

func (s *Service) readyz(w http.ResponseWriter, _ *http.Request) {
	if failing := s.failingChecks(readyTimeout); len(failing) > 0 {
		http.Error(w, "not ready: "+strings.Join(failing, ", "), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// failingChecks runs every readiness check at once and returns, sorted,
// the names of those that failed or did not answer within limit (a check
// still running then finishes in the background).
func (s *Service) failingChecks(limit time.Duration) []string {
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(s.checks))
	for name, fn := range s.checks {
		go func() {
			defer func() {
				if p := recover(); p != nil {
					results <- result{name, fmt.Errorf("check panicked: %v", p)}
				}
			}()
			results <- result{name, fn()}
		}()
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	pending := make(map[string]bool, len(s.checks))
	for name := range s.checks {
		pending[name] = true
	}
	var failing []string
	for len(pending) > 0 {
		select {
		case r := <-results:
			delete(pending, r.name)
			if r.err != nil {
				failing = append(failing, r.name)
			}
		case <-timer.C:
			for name := range pending {
				failing = append(failing, name+" (no answer)")
			}
			pending = nil
		}
	}
	sort.Strings(failing)
	return failing
}
