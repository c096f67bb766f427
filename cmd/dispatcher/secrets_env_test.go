package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// environOf is os.Environ for an env map.
func environOf(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func writeSecret(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSecretEnvResolves: NAME_FILE gives NAME the file's content less one
// trailing newline; NAME itself still works; the TLS path variables are
// not taken for NAME_FILE forms.
func TestSecretEnvResolves(t *testing.T) {
	dir := t.TempDir()
	m := map[string]string{
		"TWILIO_AUTH_TOKEN_FILE":     writeSecret(t, dir, "tok", "fake-token-from-file\n"),
		"SMTP_URL_FILE":              writeSecret(t, dir, "smtp", "smtp://alertas:fake-smtp-pass@mail.test:587\r\n"),
		"REDIS_URL_FILE":             writeSecret(t, dir, "redis", "redis://:fake-redis-pass@redis.test:6379/0"),
		"WEBHOOK_SECRET_CUSTOM_FILE": writeSecret(t, dir, "hook", "two-lines\n\n"),
		"KAFKA_TLS_CA_FILE":          writeSecret(t, dir, "ca.pem", "not read as a secret"),
		"SMTP_FROM":                  "alertas@dispatcher.example.net",
	}
	getenv, err := secretEnv(envMap(m), environOf(m), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"TWILIO_AUTH_TOKEN": "fake-token-from-file", "SMTP_URL": "smtp://alertas:fake-smtp-pass@mail.test:587",
		"REDIS_URL": "redis://:fake-redis-pass@redis.test:6379/0", "WEBHOOK_SECRET_CUSTOM": "two-lines\n",
		"SMTP_FROM": "alertas@dispatcher.example.net", "KAFKA_TLS_CA": "", "KAFKA_TLS_CA_FILE": m["KAFKA_TLS_CA_FILE"],
	} {
		if got := getenv(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	// REDIS_URL from a file reaches the settings like the variable.
	s := runSettings(t, getenv)
	if s.redisURL != m2(t, m["REDIS_URL_FILE"]) {
		t.Errorf("settings: REDIS_URL not taken from REDIS_URL_FILE")
	}
}

func m2(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSecretEnvRefuses: both forms set, an unreadable, an empty or a huge
// file stop every command at start with exit code 2 and a message naming
// NAME_FILE (and NAME), never the content.
func TestSecretEnvRefuses(t *testing.T) {
	dir := t.TempDir()
	const content = "fake-secret-content-must-not-show"
	ok := writeSecret(t, dir, "ok", content+"\n")
	unreadable := writeSecret(t, dir, "unreadable", content)
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"both set", map[string]string{"WEBHOOK_SECRET": content, "WEBHOOK_SECRET_FILE": ok},
			[]string{"both WEBHOOK_SECRET and WEBHOOK_SECRET_FILE are set"}},
		{"missing file", map[string]string{"TWILIO_AUTH_TOKEN_FILE": filepath.Join(dir, "nope")},
			[]string{"TWILIO_AUTH_TOKEN_FILE", filepath.Join(dir, "nope"), "no such file"}},
		{"directory", map[string]string{"KAFKA_SASL_PASSWORD_FILE": dir}, []string{"KAFKA_SASL_PASSWORD_FILE", dir}},
		{"empty file", map[string]string{"SMTP_PASSWORD_FILE": writeSecret(t, dir, "empty", "\n")},
			[]string{"SMTP_PASSWORD_FILE", "empty"}},
		{"huge file", map[string]string{"REDIS_URL_FILE": writeSecret(t, dir, "huge", strings.Repeat(content, 3000))},
			[]string{"REDIS_URL_FILE", "not a secret file"}},
	}
	if os.Geteuid() != 0 { // root reads a mode-0 file
		cases = append(cases, struct {
			name string
			env  map[string]string
			want []string
		}{"unreadable file", map[string]string{"TWILIO_AUTH_TOKEN_FILE": unreadable}, []string{"TWILIO_AUTH_TOKEN_FILE", "permission denied"}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := dispatchEnv(context.Background(), []string{"check", "--config", exampleConfig}, stdio{in: strings.NewReader(""), out: &out, err: &errb},
				envMap(tc.env), environOf(tc.env))
			msg := errb.String()
			if code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, content) || strings.Contains(out.String(), content) {
				t.Errorf("the secret's content is in the output: %q", msg)
			}
		})
	}
}

// TestSecretFilesEndToEnd: the whole service (`run`'s serve) with every
// secret given as NAME_FILE (Twilio token, SMTP URL and password, the
// default and per-contact webhook secrets, the pager routing keys, the
// Redis URL, the Kafka SASL password) against a Kafka broker with TLS and
// SCRAM-SHA-256, fed by `dispatcher publish` through the same settings:
// every channel's provider accepts a message, and no secret is in any
// log line (debug level) or the publish output.
func TestSecretFilesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	st := newPVStack(t, "127.0.0.1:0")
	pki := testenv.NewPKI(t, "kafka")
	const kafkaPass = "fake-kafka-scram-password-7"
	_, brokers := testenv.StartKafkaWith(t, 2, allTopicNames,
		kfake.TLS(pki.ServerTLS(false)), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "dispatcher", kafkaPass))
	dir := t.TempDir()
	env := map[string]string{}
	for k, v := range st.env {
		env[k] = v
	}
	env["KAFKA_BROKERS"] = strings.Join(brokers, ",")
	env["KAFKA_TLS_CA_FILE"] = pki.CAFile
	env["KAFKA_SASL_MECHANISM"] = "SCRAM-SHA-256"
	env["KAFKA_SASL_USERNAME"] = "dispatcher"
	env["KAFKA_SASL_PASSWORD"] = kafkaPass
	// SMTP: the user in the URL, the password apart.
	env["SMTP_URL"] = strings.Replace(env["SMTP_URL"], "alertas:smtp-password-synthetic@", "alertas@", 1)
	env["SMTP_PASSWORD"] = "smtp-password-synthetic"
	secrets := map[string]string{}
	plain := map[string]string{}
	for k, v := range env {
		plain[k] = v
	}
	for k, v := range plain {
		if k == "TWILIO_AUTH_TOKEN" || k == "SMTP_URL" || k == "SMTP_PASSWORD" || k == "REDIS_URL" || k == "KAFKA_SASL_PASSWORD" ||
			strings.HasPrefix(k, "WEBHOOK_SECRET") || strings.HasPrefix(k, "PD_") {
			env[k+"_FILE"] = writeSecret(t, dir, k, v+"\n")
			delete(env, k)
			secrets[k] = v
		}
	}
	if len(secrets) < 8 {
		t.Fatalf("only %d secrets moved to files: %v", len(secrets), secrets)
	}
	getenv, err := secretEnv(envMap(env), environOf(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	restore := trustWebhookCert(st.pool)
	defer restore()
	logs := providertest.CaptureLog()
	sv := startServe(t, runSettings(t, getenv), getenv, logs)
	stopped := false
	defer func() {
		if !stopped {
			sv.stop(t)
		}
	}()

	var out, errb bytes.Buffer
	pubEnv := map[string]string{"KAFKA_BROKERS": env["KAFKA_BROKERS"], "KAFKA_TLS_CA_FILE": pki.CAFile, "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
		"KAFKA_SASL_USERNAME": "dispatcher", "KAFKA_SASL_PASSWORD_FILE": env["KAFKA_SASL_PASSWORD_FILE"]}
	if code := dispatchEnv(context.Background(), []string{"publish", exampleEvents}, stdio{in: strings.NewReader(""), out: &out, err: &errb},
		envMap(pubEnv), environOf(pubEnv)); code != 0 {
		t.Fatalf("publish: exit %d: %s %s", code, out.String(), errb.String())
	}
	allSent := func() bool {
		for _, n := range st.providerCounts() {
			if n == 0 {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(90 * time.Second); !allSent(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = os.WriteFile("/tmp/secrets_e2e.log", []byte(logs.String()), 0o600)
			t.Fatalf("not every provider accepted a message within 90s: %v\n%s", st.providerCounts(), tail(logs.String()))
		}
	}
	t.Logf("providers accepted %v", st.providerCounts())
	sv.stop(t)
	stopped = true
	all := logs.String() + out.String() + errb.String()
	for k, v := range secrets {
		if strings.Contains(all, v) {
			t.Errorf("the value of %s is in the logs or output", k)
		}
	}
	// The broker really is secured: a plaintext reader gets nothing.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: dispatcher.TopicCaseEvents, Partition: 0, MaxWait: 100 * time.Millisecond,
		Dialer: &kafka.Dialer{Timeout: time.Second, TLS: &tls.Config{RootCAs: pki.Pool}}})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := r.FetchMessage(ctx); err == nil {
		t.Error("a reader without SASL credentials read from the secured broker")
	}
}

// Other programs' *_FILE variables (SSL_CERT_FILE names a CA bundle far
// over the secret size limit) never stop the dispatcher; a config-named
// secret from an unreadable file reads as unset with a warning naming it.
func TestSecretEnvIgnoresOtherProgramsFiles(t *testing.T) {
	dir := t.TempDir()
	const content = "fake-secret-content-must-not-show"
	env := map[string]string{
		"SSL_CERT_FILE":      writeSecret(t, dir, "bundle.pem", strings.Repeat("-----BEGIN CERTIFICATE-----\n", 5000)),
		"TF_CLI_CONFIG_FILE": filepath.Join(dir, "missing"),
		"PD_SES_VIOGEN_FILE": writeSecret(t, dir, "empty", "\n"),
		"PD_PL_PALMA_FILE":   writeSecret(t, dir, "pd", content+"\n"),
	}
	var out, errb bytes.Buffer
	if code := dispatchEnv(context.Background(), []string{"check", "--config", exampleConfig}, stdio{in: strings.NewReader(""), out: &out, err: &errb},
		envMap(env), environOf(env)); code != 0 {
		t.Fatalf("check exited %d with unrelated *_FILE variables set: %s", code, errb.String())
	}
	var warn bytes.Buffer
	getenv, err := secretEnv(envMap(env), environOf(env), &warn)
	if err != nil {
		t.Fatal(err)
	}
	if got := getenv("PD_PL_PALMA"); got != content {
		t.Errorf("PD_PL_PALMA from its file: %q", got)
	}
	if got := getenv("PD_SES_VIOGEN"); got != "" || !strings.Contains(warn.String(), "PD_SES_VIOGEN_FILE") {
		t.Errorf("an empty PD_SES_VIOGEN_FILE: value %q, warning %q", got, warn.String())
	}
	if strings.Contains(warn.String()+errb.String()+out.String(), content) {
		t.Error("a secret's content reached the output")
	}
}
