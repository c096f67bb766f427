package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// secretFileLimit bounds a NAME_FILE: a secret, not a data file.
const secretFileLimit = 64 << 10

// pathVars end in _FILE but are paths the dispatcher reads itself, not
// NAME_FILE forms of a variable.
var pathVars = map[string]bool{"KAFKA_TLS_CA_FILE": true, "KAFKA_TLS_CERT_FILE": true, "KAFKA_TLS_KEY_FILE": true}

// dispatchEnv is dispatch with the environment's NAME_FILE variables
// resolved (secretEnv); a bad one stops every command with exit code 2.
func dispatchEnv(ctx context.Context, args []string, io stdio, getenv env, environ []string) int {
	e, err := secretEnv(getenv, environ)
	if err != nil {
		fmt.Fprintln(io.err, "dispatcher:", err)
		return 2
	}
	return dispatch(ctx, args, io, e)
}

// secretEnv applies the Docker/Kubernetes secrets convention to every
// variable: when NAME is unset and NAME_FILE names a file, NAME reads as
// that file's content less one trailing newline. Both set, an unreadable
// or an empty file are errors naming NAME_FILE and the path, never the
// content. All files are read once, here, at start. environ is the
// environment as KEY=value strings (os.Environ); getenv reads it.
func secretEnv(getenv env, environ []string) (env, error) {
	var names []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasSuffix(name, "_FILE") && len(name) > len("_FILE") && !pathVars[name] && getenv(name) != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	values := map[string]string{}
	var errs []error
	for _, fileVar := range names {
		name, path := strings.TrimSuffix(fileVar, "_FILE"), getenv(fileVar)
		if getenv(name) != "" {
			errs = append(errs, fmt.Errorf("both %s and %s are set: set only one", name, fileVar))
			continue
		}
		v, err := readSecretFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", fileVar, path, err))
			continue
		}
		values[name] = v
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(values) == 0 {
		return getenv, nil
	}
	return func(name string) string {
		if v, ok := values[name]; ok {
			return v
		}
		return getenv(name)
	}, nil
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
