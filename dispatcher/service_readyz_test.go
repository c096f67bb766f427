package dispatcher

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// TestReadyzRunsNamedChecks: /readyz is 200 while every check passes,
// 503 naming the failing ones (and only them) otherwise, and answers
// within about a second even when a check hangs.
func TestReadyzRunsNamedChecks(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	var deliverErr atomic.Value
	deliverErr.Store(errNone)
	hang := make(chan struct{})
	defer close(hang)
	var hanging atomic.Bool
	svc, err := NewService(Options{
		Ingest: IngestConfig{Brokers: []string{"127.0.0.1:1"}}, Redis: rdb, NoIngest: true, Log: quietLog(),
		Checks: map[string]func() error{
			"deliver": func() error {
				if e := deliverErr.Load().(error); e != errNone {
					return e
				}
				return nil
			},
			"slow": func() error {
				if hanging.Load() {
					<-hang
				}
				return nil
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func() (int, string, time.Duration) {
		t.Helper()
		start := time.Now()
		req := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/readyz", nil)
		rw := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rw, req)
		return rw.Code, rw.Body.String(), time.Since(start)
	}
	if code, body, _ := get(); code != http.StatusOK {
		t.Fatalf("all passing: %d %s", code, body)
	}
	deliverErr.Store(errors.New("deliver stage failing"))
	if code, body, _ := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "deliver") || strings.Contains(body, "redis") || strings.Contains(body, "slow") {
		t.Fatalf("deliver failing: %d %q", code, body)
	}
	hanging.Store(true)
	code, body, took := get()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "slow (no answer)") || !strings.Contains(body, "deliver") {
		t.Fatalf("hanging check: %d %q", code, body)
	}
	// The check's own limit is 1 s; a hanging check without it would hang
	// readyz for good. 5 s leaves a loaded CI machine room.
	if took > 5*time.Second {
		t.Errorf("readyz took %s with a hanging check, want about 1s", took)
	}
	hanging.Store(false)
	deliverErr.Store(errNone)
	if code, body, _ := get(); code != http.StatusOK {
		t.Fatalf("recovered: %d %s", code, body)
	}
}

var errNone = errors.New("none")
