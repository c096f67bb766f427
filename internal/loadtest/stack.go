package loadtest

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Topics the dispatcher reads and writes, seeded in the broker.
var allTopics = []string{"case-events", "case-events.internal", "case-events.dlq", "notifications", "notifications.results"}

//go:embed testdata/load.yaml
var configTemplate string

// BrokerEnv, when set to a port, makes a process that calls MaybeBroker
// run the Kafka-protocol broker (kfake) on 127.0.0.1:<port> until
// SIGTERM or SIGINT: the load command starts the broker as a child of its
// own binary, so its CPU and memory are measured apart from the load
// generator's. LOADTEST_BROKER_PARTITIONS sets the topics' partitions.
const BrokerEnv = "LOADTEST_BROKER_PORT"

// MaybeBroker runs the broker and exits when BrokerEnv is set; it returns
// at once otherwise. Call it first thing in main (and in TestMain).
func MaybeBroker() {
	port := os.Getenv(BrokerEnv)
	if port == "" {
		return
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadtest broker: %s=%q: %v\n", BrokerEnv, port, err)
		os.Exit(2)
	}
	parts, _ := strconv.Atoi(os.Getenv("LOADTEST_BROKER_PARTITIONS"))
	if parts <= 0 {
		parts = 6
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(p), kfake.SeedTopics(int32(parts), allTopics...))
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadtest broker: %v\n", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	c.Close()
	os.Exit(0)
}

// child is a process the load command started.
type child struct {
	name   string
	cmd    *exec.Cmd
	logf   *os.File
	exited chan struct{}
}

func startChild(name, logPath string, cmd *exec.Cmd) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logf: f, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = f.Close(); close(c.exited) }()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// stop sends sig and waits up to grace, then kills.
func (c *child) stop(sig os.Signal, grace time.Duration) {
	if c == nil || !c.running() {
		return
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.exited:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startRedis runs redis-server on a free loopback port without
// persistence (as the tests do) and waits for PING.
func startRedis(dir string) (*child, string, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", fmt.Errorf("redis-server not found on PATH (apt-get install redis-server): %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--save", "", "--appendonly", "no")
	c, err := startChild("redis-server", filepath.Join(dir, "redis.log"), cmd)
	if err != nil {
		return nil, "", err
	}
	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := rc.Ping(ctx).Err()
		cancel()
		if err == nil {
			return c, addr, nil
		}
		if time.Now().After(deadline) || !c.running() {
			c.stop(syscall.SIGKILL, time.Second)
			return nil, "", fmt.Errorf("redis-server on %s not ready: %v (log %s)", addr, err, filepath.Join(dir, "redis.log"))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// startBroker runs this binary again as the broker (MaybeBroker) and
// waits until it reports every topic.
func startBroker(dir string, partitions int) (*child, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), BrokerEnv+"="+strconv.Itoa(port),
		"LOADTEST_BROKER_PARTITIONS="+strconv.Itoa(partitions))
	c, err := startChild("broker", filepath.Join(dir, "broker.log"), cmd)
	if err != nil {
		return nil, "", err
	}
	if err := waitTopics(addr, partitions, 15*time.Second, c); err != nil {
		c.stop(syscall.SIGKILL, time.Second)
		return nil, "", err
	}
	return c, addr, nil
}

// waitTopics polls the broker's metadata until every topic has its
// partitions.
func waitTopics(addr string, partitions int, limit time.Duration, c *child) error {
	deadline := time.Now().Add(limit)
	for {
		err := topicsReady(addr, partitions)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || (c != nil && !c.running()) {
			return fmt.Errorf("broker on %s: topics not ready: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func topicsReady(addr string, partitions int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	ps, err := conn.ReadPartitions(allTopics...)
	if err != nil {
		return err
	}
	if len(ps) < partitions*len(allTopics) {
		return errors.New("topics have fewer partitions than seeded")
	}
	return nil
}

// buildDispatcher builds ./cmd/dispatcher of the module at root into dir.
func buildDispatcher(root, dir string, flags ...string) (string, error) {
	bin := filepath.Join(dir, "dispatcher")
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", bin, "./cmd/dispatcher")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/dispatcher in %s: %v\n%s", root, err, out)
	}
	return bin, nil
}

// moduleRoot walks up from dir to the directory holding go.mod.
func moduleRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", fmt.Errorf("no go.mod above %s: run from the repository or pass --dispatcher", dir)
		}
		d = up
	}
}

// writeConfig writes the load configuration with the receiver's URL.
func writeConfig(dir, webhookBase string) (string, error) {
	p := filepath.Join(dir, "load.yaml")
	return p, os.WriteFile(p, []byte(strings.ReplaceAll(configTemplate, "WEBHOOK_BASE", webhookBase)), 0o600)
}

// startDispatcher runs `dispatcher run` against the stack and waits for
// /readyz.
func startDispatcher(bin, dir, config, brokers, redisURL, caFile, secret string, extraEnv []string) (*child, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	httpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "run", "--config", config)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir,
		"KAFKA_BROKERS=" + brokers, "REDIS_URL=" + redisURL, "HTTP_ADDR=" + httpAddr,
		"LOG_LEVEL=info", "LOG_FORMAT=json",
		"SSL_CERT_FILE=" + caFile, // trusts the receiver's self-signed certificate
		"WEBHOOK_SECRET=" + secret, "LOAD_WEBHOOK_SECRET=" + secret,
		"RATE_LIMIT_WEBHOOK=0", // unlimited: the load is the point
	}
	if z := os.Getenv("ZONEINFO"); z != "" {
		cmd.Env = append(cmd.Env, "ZONEINFO="+z)
	}
	cmd.Env = append(cmd.Env, extraEnv...)
	c, err := startChild("dispatcher", filepath.Join(dir, "dispatcher.log"), cmd)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := hc.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		if !c.running() || time.Now().After(deadline) {
			c.stop(syscall.SIGKILL, time.Second)
			return nil, fmt.Errorf("dispatcher not ready (log %s):\n%s", filepath.Join(dir, "dispatcher.log"), tailFile(filepath.Join(dir, "dispatcher.log"), 15))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
