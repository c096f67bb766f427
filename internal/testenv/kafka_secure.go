package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// PKI is a throwaway certificate authority for tests with a server
// certificate for 127.0.0.1 and localhost and a client certificate, in
// memory and as PEM files.
type PKI struct {
	Pool     *x509.CertPool  // trusts the CA
	Server   tls.Certificate // signed by the CA, for 127.0.0.1 and localhost
	Client   tls.Certificate // signed by the CA, for client authentication
	CAFile   string          // the CA certificate (PEM)
	CertFile string          // the client certificate (PEM)
	KeyFile  string          // the client key (PEM)
}

// NewPKI makes a CA named name and its certificates; the files are in a
// temporary directory removed when the test ends.
func NewPKI(tb testing.TB, name string) *PKI {
	tb.Helper()
	dir := tb.TempDir()
	caKey, caDER := newCert(tb, name+" test CA", nil, nil, func(c *x509.Certificate) {
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	})
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		tb.Fatal(err)
	}
	p := &PKI{Pool: x509.NewCertPool(), CAFile: filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client-key.pem")}
	p.Pool.AddCert(ca)
	writePEM(tb, p.CAFile, "CERTIFICATE", caDER)

	sKey, sDER := newCert(tb, "broker", ca, caKey, func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		c.DNSNames = []string{"localhost", "kafka.test"}
	})
	p.Server = tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sKey}

	cKey, cDER := newCert(tb, "dispatcher", ca, caKey, func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
	p.Client = tls.Certificate{Certificate: [][]byte{cDER}, PrivateKey: cKey}
	writePEM(tb, p.CertFile, "CERTIFICATE", cDER)
	der, err := x509.MarshalECPrivateKey(cKey)
	if err != nil {
		tb.Fatal(err)
	}
	writePEM(tb, p.KeyFile, "EC PRIVATE KEY", der)
	return p
}

// ServerTLS is the broker's TLS configuration; with clientAuth it
// requires a client certificate signed by the CA (mTLS).
func (p *PKI) ServerTLS(clientAuth bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{p.Server}, MinVersion: tls.VersionTLS12}
	if clientAuth {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, p.Pool
	}
	return c
}

func newCert(tb testing.TB, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, tweak func(*x509.Certificate)) (*ecdsa.PrivateKey, []byte) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
	tweak(tmpl)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		tb.Fatal(err)
	}
	return key, der
}

func writePEM(tb testing.TB, path, typ string, der []byte) {
	tb.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// StartKafkaWith is StartKafka with more options (kfake.TLS,
// kfake.EnableSASL, kfake.Superuser...).
func StartKafkaWith(tb testing.TB, partitions int32, topics []string, opts ...kfake.Opt) (*kfake.Cluster, []string) {
	tb.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.ListenFn(listenUnique)}, opts...)
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		tb.Fatalf("start kfake: %v", err)
	}
	tb.Cleanup(c.Close)
	return c, c.ListenAddrs()
}
