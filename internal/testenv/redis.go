// Package testenv starts the real servers integration tests talk to: a
// redis-server on a free port in a temp dir, and an in-process
// Kafka-protocol broker (kfake). Both are hermetic and parallel-safe.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a redis-server process owned by one test.
type Redis struct {
	Addr string
	path string
	dir  string
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

// StartRedis runs redis-server on a free loopback port with no
// persistence, waits for PING, and stops it when the test ends.
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server not found on PATH (apt-get install redis-server): %v", err)
	}
	var lastErr error
	for range 5 {
		r, err := startRedis(tb, path)
		if err == nil {
			tb.Cleanup(r.Stop)
			return r
		}
		lastErr = err
	}
	tb.Fatalf("start redis-server: %v", lastErr)
	return nil
}

func startRedis(tb testing.TB, path string) (*Redis, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	r := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), path: path, dir: tb.TempDir()}
	return r, r.start()
}

func (r *Redis) start() error {
	_, port, _ := net.SplitHostPort(r.Addr)
	r.log = new(bytes.Buffer)
	r.cmd = exec.Command(r.path, "--port", port, "--bind", "127.0.0.1",
		"--dir", r.dir, "--save", "", "--appendonly", "no")
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("exec redis-server: %w", err)
	}
	if err := r.waitReady(5 * time.Second); err != nil {
		r.Stop()
		return fmt.Errorf("%w; log: %s", err, r.log.String())
	}
	return nil
}

// Restart starts a fresh, empty server on the same address after Stop.
func (r *Redis) Restart(tb testing.TB) {
	tb.Helper()
	if err := r.start(); err != nil {
		tb.Fatalf("restart redis-server: %v", err)
	}
}

func (r *Redis) waitReady(limit time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s not ready after %s", r.Addr, limit)
}

// URL is the redis:// URL of the server.
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

// Client returns a go-redis client closed when the test ends.
func (r *Redis) Client(tb testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop interrupts the server and waits for it; safe to call twice.
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil || r.cmd.ProcessState != nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
	}
}
