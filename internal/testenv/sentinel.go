package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisSentinel is a Sentinel-managed Redis: a master, one replica and
// one Sentinel (quorum 1), each a redis-server process owned by one test.
type RedisSentinel struct {
	Master   string // the name the Sentinel knows the master by
	Sentinel string // the Sentinel's address
	nodes    []*clusterNode
}

// StartRedisSentinel starts a master, a replica of it and a Sentinel
// monitoring it (down after 1 s), waits until the Sentinel knows the
// replica, and stops them all when the test ends.
func StartRedisSentinel(tb testing.TB, master string) *RedisSentinel {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server not found on PATH (apt-get install redis-server): %v", err)
	}
	s := &RedisSentinel{Master: master}
	tb.Cleanup(s.stopAll)
	m := s.node(tb)
	if err := startNode(path, m, "--appendonly", "no", "--save", ""); err != nil {
		tb.Fatal(err)
	}
	r := s.node(tb)
	if err := startNode(path, r, "--appendonly", "no", "--save", "", "--replicaof", "127.0.0.1", strconv.Itoa(m.port)); err != nil {
		tb.Fatal(err)
	}
	sn := s.node(tb)
	conf := filepath.Join(sn.dir, "sentinel.conf")
	text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 1\n"+
		"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 10000\n",
		sn.port, sn.dir, master, m.port, master, master)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := startNodeArgs(path, sn, conf, "--sentinel"); err != nil {
		tb.Fatal(err)
	}
	s.Sentinel = sn.addr()
	if err := s.waitReplicaKnown(15 * time.Second); err != nil {
		tb.Fatalf("sentinel: %v\n%s", err, readLog(sn))
	}
	return s
}

func (s *RedisSentinel) node(tb testing.TB) *clusterNode {
	port, err := FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	n := &clusterNode{port: port, dir: tb.TempDir()}
	s.nodes = append(s.nodes, n)
	return n
}

func startNode(path string, n *clusterNode, args ...string) error {
	return startNodeArgs(path, n, append([]string{"--port", strconv.Itoa(n.port), "--bind", "127.0.0.1", "--dir", n.dir}, args...)...)
}

func startNodeArgs(path string, n *clusterNode, args ...string) error {
	logf, err := os.OpenFile(filepath.Join(n.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	n.log = logf
	n.cmd = exec.Command(path, args...)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("exec redis-server: %w", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if pingOnce(n.addr()) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.stop()
	return fmt.Errorf("redis-server on %s not ready after 5s; log: %s", n.addr(), readLog(n))
}

func (s *RedisSentinel) sentinel() *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel, MaxRetries: -1})
}

func (s *RedisSentinel) waitReplicaKnown(limit time.Duration) error {
	sc := s.sentinel()
	defer sc.Close()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		reps, err := sc.Replicas(ctx, s.Master).Result()
		cancel()
		if err == nil && len(reps) > 0 && strings.Contains(fmt.Sprint(reps), "slave") {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the sentinel does not know the replica of %s after %s", s.Master, limit)
}

// MasterAddr is the master's address as the Sentinel reports it now.
func (s *RedisSentinel) MasterAddr(tb testing.TB) string {
	tb.Helper()
	sc := s.sentinel()
	defer sc.Close()
	a, err := sc.GetMasterAddrByName(context.Background(), s.Master).Result()
	if err != nil || len(a) != 2 {
		tb.Fatalf("sentinel master address: %v %v", a, err)
	}
	return net.JoinHostPort(a[0], a[1])
}

// Failover makes the Sentinel promote the replica (SENTINEL FAILOVER) and
// waits until the failover is complete: the Sentinel reports the new
// master, which says it is one, and the old master says it is a replica
// (until then it still takes writes, which its resync then discards:
// Redis replication is asynchronous). It returns the old and new master
// addresses.
func (s *RedisSentinel) Failover(tb testing.TB) (from, to string) {
	tb.Helper()
	from = s.MasterAddr(tb)
	sc := s.sentinel()
	defer sc.Close()
	if err := sc.Failover(context.Background(), s.Master).Err(); err != nil {
		tb.Fatalf("sentinel failover: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if to = s.MasterAddr(tb); to != from && role(from) == "slave" && role(to) == "master" {
			return from, to
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("no completed failover 30s after SENTINEL FAILOVER (master %s); sentinel log:\n%s", to, readLog(s.nodes[len(s.nodes)-1]))
	return "", ""
}

// role is a server's replication role ("master", "slave", "" if it does
// not answer).
func role(addr string) string {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "role:"); ok {
			return v
		}
	}
	return ""
}

func (s *RedisSentinel) stopAll() {
	for i := len(s.nodes) - 1; i >= 0; i-- {
		s.nodes[i].stop()
	}
}
