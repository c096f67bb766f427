package providertest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// maxHang bounds a Hang fault even if nobody closes the fake.
const maxHang = 30 * time.Second

// httpFake is the part every HTTP fake shares.
type httpFake struct {
	srv     *httptest.Server
	closing chan struct{}
}

func startHTTP(t testing.TB, h http.Handler) *httpFake {
	t.Helper()
	f := &httpFake{closing: make(chan struct{})}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.close)
	return f
}

func (f *httpFake) close() {
	select {
	case <-f.closing:
		return
	default:
	}
	close(f.closing) // releases Hang handlers, which Close waits for
	f.srv.Close()
}

// hang holds a request until the client leaves or the fake closes.
func (f *httpFake) hang(r *http.Request) {
	t := time.NewTimer(maxHang)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-f.closing:
	case <-t.C:
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeServerError is a non-JSON 500, as a proxy or outage page sends.
func writeServerError(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte("<html><body>Internal Server Error</body></html>"))
}
