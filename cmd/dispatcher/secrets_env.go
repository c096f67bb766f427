package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// secretFileLimit bounds a NAME_FILE: a secret, not a data file.
const secretFileLimit = 64 << 10

// pathVars end in _FILE but are paths the dispatcher reads itself, not
// NAME_FILE forms of a variable.
var pathVars = map[string]bool{"KAFKA_TLS_CA_FILE": true, "KAFKA_TLS_CERT_FILE": true, "KAFKA_TLS_KEY_FILE": true}

// secretVars are the secret variables the dispatcher itself reads: their
// NAME_FILE forms are read at start, and a bad one stops every command.
// Other NAME_FILE variables (those a configuration names, such as pager
// routing keys) are read when first asked for; the environment also holds
// *_FILE variables of other programs (SSL_CERT_FILE names a CA bundle),
// which must never stop the dispatcher.
var secretVars = []string{"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "SMTP_URL", "SMTP_PASSWORD", "WEBHOOK_SECRET",
	"PAGERDUTY_WEBHOOK_SECRET",
	"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "REDIS_URL",
	"REDIS_USERNAME", "REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD"}

// dispatchEnv is dispatch with NAME_FILE variables resolved (secretEnv);
// a bad one of secretVars stops every command with exit code 2.
func dispatchEnv(ctx context.Context, args []string, io stdio, getenv env, environ []string) int {
	e, err := secretEnv(getenv, environ, io.err)
	if err != nil {
		fmt.Fprintln(io.err, "dispatcher:", err)
		return 2
	}
	return dispatch(ctx, args, io, e)
}

// secretEnv applies the Docker/Kubernetes secrets convention: when NAME is
// unset and NAME_FILE names a file, NAME reads as that file's content less
// one trailing newline. For secretVars, both set, an unreadable or an
// empty file are errors naming NAME_FILE and the path, never the content.
// Any other NAME is resolved the first time it is read; a problem then is
// written to warn (once) and NAME reads as unset. environ is the
// environment as KEY=value strings (os.Environ); getenv reads it.
func secretEnv(getenv env, environ []string, warn io.Writer) (env, error) {
	values := map[string]string{}
	var errs []error
	for _, name := range secretVars {
		fileVar := name + "_FILE"
		if getenv(fileVar) == "" {
			continue
		}
		v, err := resolveSecret(getenv, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		values[name] = v
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	lazy := lazySecrets(getenv, environ, warn)
	return func(name string) string {
		if v, ok := values[name]; ok {
			return v
		}
		if v := getenv(name); v != "" {
			return v
		}
		return lazy(name)
	}, nil
}

// resolveSecret reads NAME_FILE for name, refusing ambiguity.
func resolveSecret(getenv env, name string) (string, error) {
	fileVar := name + "_FILE"
	path := getenv(fileVar)
	if getenv(name) != "" {
		return "", fmt.Errorf("both %s and %s are set: set only one", name, fileVar)
	}
	v, err := readSecretFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", fileVar, path, err)
	}
	return v, nil
}

// lazySecrets resolves other NAME_FILE variables on first use, once.
func lazySecrets(getenv env, environ []string, warn io.Writer) env {
	has := map[string]bool{}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasSuffix(name, "_FILE") && len(name) > len("_FILE") && !pathVars[name] {
			has[strings.TrimSuffix(name, "_FILE")] = true
		}
	}
	var mu sync.Mutex
	cache := map[string]string{}
	return func(name string) string {
		if !has[name] || getenv(name+"_FILE") == "" {
			return ""
		}
		mu.Lock()
		defer mu.Unlock()
		if v, ok := cache[name]; ok {
			return v
		}
		v, err := resolveSecret(getenv, name)
		if err != nil {
			fmt.Fprintln(warn, "dispatcher: warning:", err, "(reads as unset)")
		}
		cache[name] = v
		return v
	}
}

// readSecretFile reads a secret less one trailing newline (\n or \r\n).
// Its errors never quote the content.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read: %w", unwrapPath(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, secretFileLimit+1))
	if err != nil {
		return "", fmt.Errorf("cannot read: %w", unwrapPath(err))
	}
	if len(b) > secretFileLimit {
		return "", fmt.Errorf("larger than %d KiB: not a secret file", secretFileLimit>>10)
	}
	s := string(b)
	if strings.HasSuffix(s, "\n") {
		s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
	}
	if s == "" {
		return "", errors.New("empty")
	}
	return s, nil
}
