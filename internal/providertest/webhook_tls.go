package providertest

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
)

// NewTLSWebhook starts a webhook receiver, as NewWebhook does, but over
// https with a fresh self-signed certificate for 127.0.0.1 and localhost:
// the webhook channel sends only to https URLs outside its own tests. The
// returned pool trusts the certificate; a client must use it (the
// dispatcher's channels clone http.DefaultTransport, so a whole-service
// test can put the pool in its TLSClientConfig while it builds them).
func NewTLSWebhook(t testing.TB, secret []byte) (*Webhook, *x509.CertPool) {
	t.Helper()
	cert, pool, err := selfSigned()
	if err != nil {
		t.Fatalf("providertest: webhook certificate: %v", err)
	}
	f := &Webhook{secret: append([]byte(nil), secret...)}
	hf := &httpFake{closing: make(chan struct{})}
	hf.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	hf.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	hf.srv.StartTLS()
	t.Cleanup(hf.close)
	f.http = hf
	return f, pool
}
