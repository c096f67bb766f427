package deploy

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// repoRoot is the module root; tests run in deploy/.
const repoRoot = ".."

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var secretName = regexp.MustCompile(`(?i)(PASS|SECRET|TOKEN|_KEY|^PD_|_SID|CREDENTIAL|PRIVATE)`)

// placeholder tells a value that is obviously not a real secret.
func placeholder(v string) bool {
	v = strings.TrimSpace(v)
	switch {
	case v == "",
		strings.HasPrefix(v, "${") && strings.HasSuffix(v, "}"),
		strings.Contains(v, "change-me"),
		strings.Contains(v, "synthetic"),
		regexp.MustCompile(`^AC0+$`).MatchString(v):
		return true
	}
	return false
}

// inlinedSecret returns why name=value looks like a real secret written
// into a tracked file, or "".
func inlinedSecret(name, value string) string {
	if secretName.MatchString(name) && !placeholder(value) && !strings.HasSuffix(name, "_FILE") {
		return name + " has a value that is not a synthetic placeholder"
	}
	if u, err := url.Parse(value); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && !placeholder(p) {
			return name + " carries a password in its URL"
		}
	}
	return ""
}

// dispatcherEnvNames are the environment variables the dispatcher reads:
// every upper-case string literal in its non-test sources, plus the names
// the example configuration gives (pager_key_env, webhook_secret_env).
func dispatcherEnvNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	lit := regexp.MustCompile(`"([A-Z][A-Z0-9_]{2,})"`)
	for _, dir := range []string{"cmd/dispatcher", "channels", "dispatcher", "rules", "templates", "internal"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			for _, m := range lit.FindAllStringSubmatch(string(readFile(t, p)), -1) {
				names[m[1]] = true
			}
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	// Settings built from a prefix (RATE_LIMIT_ + channel).
	for _, c := range []string{"SMS", "EMAIL", "PAGER", "WEBHOOK"} {
		names["RATE_LIMIT_"+c] = true
	}
	cfg := regexp.MustCompile(`(?:pager_key_env|webhook_secret_env):\s*"?([A-Z][A-Z0-9_]+)`)
	for _, m := range cfg.FindAllStringSubmatch(string(readFile(t, filepath.Join(repoRoot, "deploy/config/viogen.yaml"))), -1) {
		names[m[1]] = true
	}
	// The Go runtime reads this one.
	names["GOMEMLIMIT"] = true
	return names
}

// checkEnvNames fails for every name the dispatcher does not read: a typo
// in a deploy file would otherwise be silently ignored.
func checkEnvNames(t *testing.T, where string, names []string) {
	t.Helper()
	known := dispatcherEnvNames(t)
	sort.Strings(names)
	for _, n := range names {
		if !known[n] && !known[strings.TrimSuffix(n, "_FILE")] {
			t.Errorf("%s: environment variable %s is not one the dispatcher reads", where, n)
		}
	}
}
