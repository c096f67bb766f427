package loadtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/viogen-alerts/dispatcher/channels/webhook"
)

// alertID is the documented alert id (docs/configuration.md): the first
// 16 hex digits of SHA-256(event id, NUL, rule id).
func alertID(eventID, rule string) string {
	h := sha256.Sum256([]byte(eventID + "\x00" + rule))
	return hex.EncodeToString(h[:8])
}

// receiver is the local https webhook endpoint: it verifies every
// signature, counts each expected alert's deliveries and keeps the time
// of the first one.
type receiver struct {
	secret []byte
	index  map[string]int // alert id -> expected alert; read-only once serving
	ref    []atomic.Int64 // per alert: publish time (or due time), unix ns
	first  []atomic.Int64 // per alert: first delivery, unix ns (0 = none yet)
	count  []atomic.Int32 // per alert: deliveries accepted

	distinct, dups, unexpected, fallback, badSig atomic.Int64
	last                                         atomic.Int64 // unix ns of the last first delivery
	conns                                        atomic.Int64 // connections accepted (TLS handshakes)
	proto                                        atomic.Value // protocol of the last request ("HTTP/2.0")

	srv    *http.Server
	url    string
	caFile string
}

// newReceiver starts the receiver for the given alert ids on a free
// loopback port, over https with a fresh self-signed certificate written
// (as PEM) to dir/ca.pem for the dispatcher to trust (SSL_CERT_FILE).
func newReceiver(dir string, secret []byte, ids []string) (*receiver, error) {
	r := &receiver{secret: secret, index: make(map[string]int, len(ids)),
		ref: make([]atomic.Int64, len(ids)), first: make([]atomic.Int64, len(ids)), count: make([]atomic.Int32, len(ids))}
	for i, id := range ids {
		r.index[id] = i
	}
	cert, pemBytes, err := selfSigned()
	if err != nil {
		return nil, err
	}
	r.caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(r.caFile, pemBytes, 0o600); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.url = "https://" + l.Addr().String()
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				r.conns.Add(1)
			}
		}}
	go func() { _ = r.srv.ServeTLS(l, "", "") }()
	return r, nil
}

func (r *receiver) close() { _ = r.srv.Close() }

// setRef records when alert i's event was published (or is due).
func (r *receiver) setRef(i int, t time.Time) { r.ref[i].Store(t.UnixNano()) }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	r.proto.Store(req.Proto)
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 1<<20))
	if err != nil || req.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if err := webhook.Verify(r.secret, req.Header.Get(webhook.HeaderTimestamp), body,
		req.Header.Get(webhook.HeaderSignature), now, 0); err != nil {
		r.badSig.Add(1)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var p struct {
		AlertID string `json:"alert_id"`
	}
	if json.Unmarshal(body, &p) != nil || p.AlertID == "" {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	if req.URL.Path == "/fallback" {
		r.fallback.Add(1)
	}
	i, ok := r.index[p.AlertID]
	switch {
	case !ok:
		r.unexpected.Add(1)
	case r.count[i].Add(1) == 1:
		r.first[i].Store(now.UnixNano())
		r.distinct.Add(1)
		r.last.Store(now.UnixNano())
	default:
		r.dups.Add(1)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"wh_load"}`)
}

// latencies returns first-delivery minus reference time of every alert
// delivered, in the order of the alerts.
func (r *receiver) latencies() []time.Duration {
	out := make([]time.Duration, 0, len(r.first))
	for i := range r.first {
		f, ref := r.first[i].Load(), r.ref[i].Load()
		if f != 0 && ref != 0 {
			out = append(out, time.Duration(f-ref))
		}
	}
	return out
}

// selfSigned makes a certificate for 127.0.0.1 and localhost and its PEM.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "loadtest receiver"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("create certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
