package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/dispatcher"
)

const kafkaEnvHelp = `
Kafka security (every reader, writer and topic client; refused at start when inconsistent):
  KAFKA_TLS                      true: TLS with the system roots (implied by the KAFKA_TLS_* below)
  KAFKA_TLS_CA_FILE              PEM CA bundle to trust instead of the system roots
  KAFKA_TLS_CERT_FILE, KAFKA_TLS_KEY_FILE  client certificate and key (mTLS), both or neither
  KAFKA_TLS_SERVER_NAME          name to verify in the broker certificates (default: the broker host)
  KAFKA_TLS_INSECURE_SKIP_VERIFY true: do not verify the brokers (testing only; logged as an error)
  KAFKA_SASL_MECHANISM           PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
  KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD  (or KAFKA_SASL_PASSWORD_FILE)
`

// kafkaSecurityVars are the variables kafkaSecurity reads (dev warns that
// it ignores them).
var kafkaSecurityVars = []string{"KAFKA_TLS", "KAFKA_TLS_CA_FILE", "KAFKA_TLS_CERT_FILE", "KAFKA_TLS_KEY_FILE",
	"KAFKA_TLS_SERVER_NAME", "KAFKA_TLS_INSECURE_SKIP_VERIFY", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"}

// kafkaSecurity reads the Kafka TLS and SASL settings. Errors name the
// variable and file at fault, never the password. In dev the embedded
// broker is plaintext: the settings are ignored, with a warning.
func kafkaSecurity(getenv env, log logrus.FieldLogger, dev bool) (dispatcher.KafkaSecurity, error) {
	if dev {
		var set []string
		for _, n := range kafkaSecurityVars {
			if getenv(n) != "" {
				set = append(set, n)
			}
		}
		if len(set) > 0 {
			log.WithField("ignored", set).Warn("dev: the embedded Kafka broker is plaintext; Kafka TLS and SASL settings are ignored")
		}
		return dispatcher.KafkaSecurity{}, nil
	}
	var sec dispatcher.KafkaSecurity
	var err error
	if sec.TLS, err = kafkaTLS(getenv, log); err != nil {
		return sec, err
	}
	if sec.SASL, err = kafkaSASL(getenv); err != nil {
		return sec, err
	}
	if sec.SASL != nil && sec.SASL.Name() == "PLAIN" && sec.TLS == nil {
		log.Warn("KAFKA_SASL_MECHANISM=PLAIN without TLS: the Kafka password crosses the network in clear text (set KAFKA_TLS=true)")
	}
	return sec, nil
}

func kafkaTLS(getenv env, log logrus.FieldLogger) (*tls.Config, error) {
	on, onSet, err := envBool(getenv, "KAFKA_TLS")
	if err != nil {
		return nil, err
	}
	insecure, _, err := envBool(getenv, "KAFKA_TLS_INSECURE_SKIP_VERIFY")
	if err != nil {
		return nil, err
	}
	ca, cert, key, name := getenv("KAFKA_TLS_CA_FILE"), getenv("KAFKA_TLS_CERT_FILE"), getenv("KAFKA_TLS_KEY_FILE"), getenv("KAFKA_TLS_SERVER_NAME")
	implied := ca != "" || cert != "" || key != "" || name != "" || insecure
	if onSet && !on && implied {
		return nil, fmt.Errorf("KAFKA_TLS=false but KAFKA_TLS_* settings are given: set KAFKA_TLS=true or remove them")
	}
	if !on && !implied {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: name}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: cannot read %s: %w", ca, unwrapPath(err))
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: %s holds no PEM certificate", ca)
		}
	}
	switch {
	case cert != "" && key != "":
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_TLS_CERT_FILE %s and KAFKA_TLS_KEY_FILE %s: not a usable certificate and key: %v", cert, key, err)
		}
		c.Certificates = []tls.Certificate{pair}
	case cert != "" || key != "":
		return nil, fmt.Errorf("KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE go together (client certificate for mTLS): set both or neither")
	}
	if insecure {
		c.InsecureSkipVerify = true
		log.Error("KAFKA_TLS_INSECURE_SKIP_VERIFY=true: the Kafka brokers' certificates are NOT verified; anyone on the network path can read and forge alerts. For testing only: give KAFKA_TLS_CA_FILE instead")
	}
	return c, nil
}

func kafkaSASL(getenv env) (sasl.Mechanism, error) {
	mech := strings.ToUpper(strings.TrimSpace(getenv("KAFKA_SASL_MECHANISM")))
	user, pass := getenv("KAFKA_SASL_USERNAME"), getenv("KAFKA_SASL_PASSWORD")
	if mech == "" {
		if user != "" || pass != "" {
			return nil, fmt.Errorf("KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set without KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
		return nil, nil
	}
	if mech != "PLAIN" && mech != "SCRAM-SHA-256" && mech != "SCRAM-SHA-512" {
		return nil, fmt.Errorf("KAFKA_SASL_MECHANISM=%q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", getenv("KAFKA_SASL_MECHANISM"))
	}
	if user == "" {
		return nil, fmt.Errorf("KAFKA_SASL_MECHANISM=%s needs KAFKA_SASL_USERNAME", mech)
	}
	if pass == "" {
		return nil, fmt.Errorf("KAFKA_SASL_MECHANISM=%s needs KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE)", mech)
	}
	if mech == "PLAIN" {
		return plain.Mechanism{Username: user, Password: pass}, nil
	}
	algo := scram.SHA256
	if mech == "SCRAM-SHA-512" {
		algo = scram.SHA512
	}
	m, err := scram.Mechanism(algo, user, pass)
	if err != nil {
		// Not wrapped: the SCRAM library's message quotes the password.
		return nil, fmt.Errorf("KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD has characters %s cannot use (control or unassigned characters)", mech)
	}
	return m, nil
}

// envBool is a boolean variable: unset is false, anything but a boolean
// is an error naming the variable.
func envBool(getenv env, name string) (v, set bool, err error) {
	s := strings.TrimSpace(getenv(name))
	if s == "" {
		return false, false, nil
	}
	v, err = strconv.ParseBool(s)
	if err != nil {
		return false, true, fmt.Errorf("%s=%q: want true or false", name, s)
	}
	return v, true, nil
}

// unwrapPath drops the path from an *os.PathError (the message names it
// already).
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// explainKafkaErr replaces a failed write's error with the probe's when
// the probe fails too: kafka-go's writer reports a refused TLS handshake
// or SASL login as an EOF, the probe names it.
func explainKafkaErr(ctx context.Context, sec dispatcher.KafkaSecurity, brokers []string, err error) error {
	if err == nil || !sec.Enabled() {
		return err
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if perr := sec.Check(pctx, brokers); perr != nil {
		return fmt.Errorf("%w (%v)", perr, err)
	}
	return err
}
