package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

const fakeKafkaPass = "fake-kafka-password-env-42"

// TestKafkaSecurityEnvRefuses: inconsistent or unusable settings are
// refused with a message naming the variable (and file), never the
// password.
func TestKafkaSecurityEnvRefuses(t *testing.T) {
	pki := testenv.NewPKI(t, "kafka")
	dir := t.TempDir()
	notPEM := writeSecret(t, dir, "ca.txt", "not a certificate")
	missing := filepath.Join(dir, "missing-ca.pem")
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"mechanism without username", map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_PASSWORD": fakeKafkaPass}, "KAFKA_SASL_MECHANISM=PLAIN needs KAFKA_SASL_USERNAME"},
		{"mechanism without password", map[string]string{"KAFKA_SASL_MECHANISM": "scram-sha-512", "KAFKA_SASL_USERNAME": "u"}, "needs KAFKA_SASL_PASSWORD"},
		{"credentials without mechanism", map[string]string{"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": fakeKafkaPass}, "without KAFKA_SASL_MECHANISM"},
		{"unknown mechanism", map[string]string{"KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": fakeKafkaPass}, `KAFKA_SASL_MECHANISM="GSSAPI": want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`},
		{"scram-unusable password", map[string]string{"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": fakeKafkaPass + "\u0007"}, "characters SCRAM-SHA-256 cannot use"},
		{"bad bool", map[string]string{"KAFKA_TLS": "yes please"}, `KAFKA_TLS="yes please": want true or false`},
		{"tls off with tls settings", map[string]string{"KAFKA_TLS": "false", "KAFKA_TLS_CA_FILE": pki.CAFile}, "KAFKA_TLS=false but KAFKA_TLS_* settings"},
		{"missing CA file", map[string]string{"KAFKA_TLS_CA_FILE": missing}, "KAFKA_TLS_CA_FILE: cannot read " + missing},
		{"CA file without PEM", map[string]string{"KAFKA_TLS_CA_FILE": notPEM}, "KAFKA_TLS_CA_FILE: " + notPEM + " holds no PEM certificate"},
		{"cert without key", map[string]string{"KAFKA_TLS_CERT_FILE": pki.CertFile}, "set both or neither"},
		{"key is not a key", map[string]string{"KAFKA_TLS_CERT_FILE": pki.CertFile, "KAFKA_TLS_KEY_FILE": pki.CAFile}, "KAFKA_TLS_KEY_FILE " + pki.CAFile},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kafkaSecurity(envMap(tc.env), logrus.New(), false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), fakeKafkaPass) {
				t.Errorf("error carries the password: %v", err)
			}
			// run refuses to start with it, saying why.
			tc.env["KAFKA_BROKERS"], tc.env["REDIS_URL"] = "127.0.0.1:1", "redis://127.0.0.1:1"
			code, _, errOut := run(t, "", envMap(tc.env), "run", "--config", exampleConfig, "--http", "")
			errOut = strings.ReplaceAll(errOut, `\"`, `"`) // JSON log
			if code != 1 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, fakeKafkaPass) {
				t.Errorf("run: exit %d, stderr %q", code, errOut)
			}
		})
	}
}

// TestKafkaSecurityEnvBuilds: the settings end up in the TLS config and
// mechanism; skipping verification and PLAIN without TLS are logged
// loudly; dev ignores the settings and says so.
func TestKafkaSecurityEnvBuilds(t *testing.T) {
	pki := testenv.NewPKI(t, "kafka")
	var logs bytes.Buffer
	log := logrus.New()
	log.SetOutput(&logs)
	sec, err := kafkaSecurity(envMap(map[string]string{"KAFKA_TLS_CA_FILE": pki.CAFile, "KAFKA_TLS_CERT_FILE": pki.CertFile,
		"KAFKA_TLS_KEY_FILE": pki.KeyFile, "KAFKA_TLS_SERVER_NAME": "kafka.test", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
		"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": fakeKafkaPass}), log, false)
	if err != nil {
		t.Fatal(err)
	}
	if sec.TLS == nil || sec.TLS.RootCAs == nil || len(sec.TLS.Certificates) != 1 || sec.TLS.ServerName != "kafka.test" || sec.TLS.InsecureSkipVerify ||
		sec.SASL == nil || sec.SASL.Name() != "SCRAM-SHA-512" {
		t.Fatalf("settings not applied: %s %+v", sec, sec.TLS)
	}
	if logs.Len() != 0 {
		t.Errorf("unexpected log: %s", logs.String())
	}
	sec, err = kafkaSecurity(envMap(map[string]string{"KAFKA_TLS": "true"}), log, false)
	if err != nil || sec.TLS == nil || sec.TLS.RootCAs != nil {
		t.Fatalf("KAFKA_TLS=true: want TLS with the system roots, got %v %v", sec, err)
	}
	if _, err := kafkaSecurity(envMap(map[string]string{"KAFKA_TLS_INSECURE_SKIP_VERIFY": "true"}), log, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=error") || !strings.Contains(logs.String(), "NOT verified") {
		t.Errorf("skipping verification is not logged as an error: %s", logs.String())
	}
	logs.Reset()
	if _, err := kafkaSecurity(envMap(map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": fakeKafkaPass}), log, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "clear text") || strings.Contains(logs.String(), fakeKafkaPass) {
		t.Errorf("PLAIN without TLS: %s", logs.String())
	}
	logs.Reset()
	sec, err = kafkaSecurity(envMap(map[string]string{"KAFKA_TLS": "true", "KAFKA_SASL_MECHANISM": "bogus"}), log, true)
	if err != nil || sec.Enabled() || !strings.Contains(logs.String(), "ignored") {
		t.Errorf("dev: %v %v %s", sec, err, logs.String())
	}
}

// TestPublishKafkaSecurity: `dispatcher publish` with the right
// settings sends through TLS and SASL PLAIN; with the wrong password it
// exits 1 saying the SASL authentication failed, without the password.
func TestPublishKafkaSecurity(t *testing.T) {
	pki := testenv.NewPKI(t, "kafka")
	_, brokers := testenv.StartKafkaWith(t, 2, allTopicNames,
		kfake.TLS(pki.ServerTLS(false)), kfake.EnableSASL(), kfake.Superuser("PLAIN", "publisher", fakeKafkaPass))
	env := map[string]string{"KAFKA_BROKERS": strings.Join(brokers, ","), "KAFKA_TLS_CA_FILE": pki.CAFile,
		"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "publisher", "KAFKA_SASL_PASSWORD": fakeKafkaPass}
	code, out, errOut := run(t, "", envMap(env), "publish", exampleEvents)
	if code != 0 || !strings.Contains(out, "published") {
		t.Fatalf("publish: exit %d: %s %s", code, out, errOut)
	}
	const wrong = "fake-wrong-password-43"
	env["KAFKA_SASL_PASSWORD"] = wrong
	var o, e bytes.Buffer
	code = dispatch(context.Background(), []string{"publish", exampleEvents}, stdio{in: strings.NewReader(""), out: &o, err: &e}, envMap(env))
	if code != 1 || !strings.Contains(e.String(), "SASL Authentication Failed") || strings.Contains(e.String(), wrong) {
		t.Fatalf("wrong password: exit %d: %s", code, e.String())
	}
	t.Logf("wrong password: %s", strings.TrimSpace(e.String()))
}
