package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCluster is a Redis Cluster of three masters (no replicas), each a
// redis-server process owned by one test, with AOF persistence so a
// restarted master comes back with its data.
type RedisCluster struct {
	path  string
	nodes []*clusterNode
}

type clusterNode struct {
	port int
	dir  string
	cmd  *exec.Cmd
	log  *os.File
}

func (n *clusterNode) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

// StartRedisCluster starts three cluster-enabled redis-servers on free
// ports (whose cluster bus port, port+10000, is free too), joins them
// with redis-cli --cluster create, waits for cluster_state:ok on every
// node, and stops them all when the test ends. It skips the test when
// redis-server or redis-cli is missing.
func StartRedisCluster(tb testing.TB) *RedisCluster {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Skipf("redis-server not found on PATH: %v", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		tb.Skipf("redis-cli not found on PATH: %v", err)
	}
	c := &RedisCluster{path: path}
	tb.Cleanup(c.stopAll)
	for i := range 3 {
		var lastErr error
		for range 10 {
			n := &clusterNode{dir: filepath.Join(tb.TempDir(), fmt.Sprintf("node%d", i))}
			if lastErr = os.MkdirAll(n.dir, 0o755); lastErr != nil {
				break
			}
			if n.port, lastErr = clusterPort(); lastErr != nil {
				continue
			}
			if lastErr = c.start(n); lastErr == nil {
				c.nodes = append(c.nodes, n)
				break
			}
		}
		if lastErr != nil {
			tb.Fatalf("start cluster node %d: %v", i, lastErr)
		}
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s\n%s", err, out, c.logs())
	}
	if err := c.waitOK(30 * time.Second); err != nil {
		tb.Fatalf("%v\n%s", err, c.logs())
	}
	return c
}

// clusterPort picks a random port in 20000-29999 such that it and its
// cluster bus port (+10000) can both be bound right now.
func clusterPort() (int, error) {
	for range 50 {
		p := 20000 + rand.IntN(10000)
		used.Lock()
		ok := !used.ports[p] && !used.ports[p+10000]
		used.Unlock()
		for _, q := range []int{p, p + 10000} {
			if !ok {
				break
			}
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(q)))
			if err != nil {
				ok = false
				break
			}
			_ = l.Close()
		}
		if ok {
			used.Lock()
			used.ports[p], used.ports[p+10000] = true, true
			used.Unlock()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port pair (P, P+10000) found")
}

func (c *RedisCluster) start(n *clusterNode) error {
	return startNode(c.path, n, "--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+strconv.Itoa(n.port)+".conf",
		"--appendonly", "yes", "--save", "")
}

func pingOnce(addr string) error {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	return cl.Ping(ctx).Err()
}

// waitOK polls CLUSTER INFO on every node until all report
// cluster_state:ok with all 16384 slots assigned and ok.
func (c *RedisCluster) waitOK(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	last := ""
	for time.Now().Before(deadline) {
		ok := true
		for _, n := range c.nodes {
			cl := redis.NewClient(&redis.Options{Addr: n.addr(), MaxRetries: -1})
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			info, err := cl.ClusterInfo(ctx).Result()
			cancel()
			_ = cl.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
				ok, last = false, fmt.Sprintf("%s: %v %q", n.addr(), err, firstLine(info))
				break
			}
		}
		if ok {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("redis cluster not ok after %s (last: %s)", limit, last)
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// Addrs are the nodes' host:port addresses.
func (c *RedisCluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.addr()
	}
	return out
}

// Client returns a go-redis cluster client, closed when the test ends.
func (c *RedisCluster) Client(tb testing.TB) *redis.ClusterClient {
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	tb.Cleanup(func() { _ = cl.Close() })
	return cl
}

// Restart stops node i (SIGINT, which flushes its AOF), starts it again
// on the same port and directory (same node id, slots and data), and
// waits for cluster_state:ok on every node.
func (c *RedisCluster) Restart(tb testing.TB, i int) {
	tb.Helper()
	n := c.nodes[i]
	began := time.Now()
	n.stop()
	if err := c.start(n); err != nil {
		tb.Fatalf("restart cluster node %d: %v", i, err)
	}
	up := time.Since(began)
	if err := c.waitOK(30 * time.Second); err != nil {
		tb.Fatalf("after restarting node %d: %v\n%s", i, err, c.logs())
	}
	tb.Logf("redis cluster node %d (%s): down and answering PING again after %v, cluster_state:ok on all nodes after %v",
		i, n.addr(), up.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// Stop stops node i without starting it again.
func (c *RedisCluster) Stop(i int) { c.nodes[i].stop() }

func (c *RedisCluster) stopAll() {
	for _, n := range c.nodes {
		n.stop()
	}
}

func (n *clusterNode) stop() {
	if n.cmd == nil || n.cmd.Process == nil || n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-done
	}
	if n.log != nil {
		_ = n.log.Close()
	}
}

func readLog(n *clusterNode) string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (c *RedisCluster) logs() string {
	var sb strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&sb, "--- %s log tail:\n%s\n", n.addr(), readLog(n))
	}
	return sb.String()
}
