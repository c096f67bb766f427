package providertest

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
)

// LogCapture is a debug-level logrus logger writing JSON lines to memory,
// for tests that check what was (not) logged.
type LogCapture struct {
	Logger *logrus.Logger
	mu     sync.Mutex
	buf    bytes.Buffer
}

// CaptureLog returns a fresh capture.
func CaptureLog() *LogCapture {
	c := &LogCapture{Logger: logrus.New()}
	c.Logger.SetOutput(c)
	c.Logger.SetLevel(logrus.DebugLevel)
	c.Logger.SetFormatter(&logrus.JSONFormatter{})
	return c
}

// Write implements io.Writer for the logger.
func (c *LogCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

// String returns everything logged so far.
func (c *LogCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// AssertNotContains fails t for every secret that appears in the log.
func (c *LogCapture) AssertNotContains(t testing.TB, secrets ...string) {
	t.Helper()
	out := c.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("log contains %q:\n%s", s, out)
		}
	}
}
