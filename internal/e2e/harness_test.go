package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/viogen-alerts/dispatcher/internal/providertest"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// Topics the dispatcher reads and writes, seeded in every broker.
var allTopics = []string{"case-events", "case-events.internal", "case-events.dlq", "notifications", "notifications.results"}

const (
	partitions  = 4
	twilioSID   = "AC0123456789abcdef0123456789abcdef" // synthetic
	twilioToken = "e2etokene2etokene2etokene2etoken"   // synthetic
	twilioFrom  = "+34600000099"
)

// ---------------------------------------------------------------------------
// The binary

// builds are the dispatcher binaries built for this test binary, by build
// tags ("": the plain one).
var (
	buildMu sync.Mutex
	builds  = map[string]*build{}
)

type build struct {
	once sync.Once
	bin  string
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, b := range builds {
		if b.dir != "" {
			_ = os.RemoveAll(b.dir)
		}
	}
	os.Exit(code)
}

// requireE2E skips process-level tests under -short.
func requireE2E(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("process-level test (builds and runs the binary): skipped with -short")
	}
}

// moduleRoot is two directories up from this file.
func moduleRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// dispatcherBinary builds ./cmd/dispatcher once per test binary (no -race:
// it is a child process), or returns E2E_DISPATCHER_BIN when set.
func dispatcherBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("E2E_DISPATCHER_BIN"); p != "" {
		return p
	}
	return taggedBinary(t, "")
}

// failpointBinary is ./cmd/dispatcher built with -tags failpoints: it dies
// by SIGKILL where DISPATCHER_FAILPOINT says (dispatcher/failpoint_on.go).
func failpointBinary(t *testing.T) string { return taggedBinary(t, "failpoints") }

func taggedBinary(t *testing.T, tags string) string {
	t.Helper()
	buildMu.Lock()
	b := builds[tags]
	if b == nil {
		b = &build{}
		builds[tags] = b
	}
	buildMu.Unlock()
	b.once.Do(func() {
		root := moduleRoot(t)
		b.dir, b.err = os.MkdirTemp("", "e2e-dispatcher-")
		if b.err != nil {
			return
		}
		b.bin = filepath.Join(b.dir, "dispatcher")
		cmd := exec.Command("go", "build", "-tags", tags, "-o", b.bin, "./cmd/dispatcher")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build -tags %q ./cmd/dispatcher in %s: %v\n%s", tags, root, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

// ---------------------------------------------------------------------------
// The stack: broker, Redis, SMS provider, configuration

type stack struct {
	dir     string
	brokers []string
	kafka   *kfake.Cluster
	redis   *testenv.Redis
	sms     *providertest.SlowTwilio
	config  string
	model   model
}

// newStack starts kfake with every topic, a redis-server and a Twilio fake
// answering after delay(), and writes a synthetic configuration.
func newStack(t *testing.T, delay func() time.Duration) *stack {
	t.Helper()
	s := &stack{dir: t.TempDir()}
	s.kafka, s.brokers = testenv.StartKafka(t, partitions, allTopics...)
	s.redis = testenv.StartRedis(t)
	s.sms = providertest.NewSlowTwilio(t, twilioSID, twilioToken, delay)
	s.model = defaultModel()
	s.config = filepath.Join(s.dir, "e2e.yaml")
	if err := os.WriteFile(s.config, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// uniformDelay draws a provider answer time uniformly from [lo, hi].
func uniformDelay(lo, hi time.Duration) func() time.Duration {
	return func() time.Duration { return lo + rand.N(hi-lo+1) }
}

// publish writes events to case-events keyed by case id with the CRC32
// partitioner (as `dispatcher publish` and kcat do).
func (s *stack) publish(t *testing.T, evs []caseEvent) {
	t.Helper()
	if err := s.publishErr(evs); err != nil {
		t.Fatal(err)
	}
}

func (s *stack) publishErr(evs []caseEvent) error {
	w := &kafka.Writer{Addr: kafka.TCP(s.brokers...), Topic: "case-events", Balancer: &kafka.CRC32Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchBytes: 1_000_000, BatchSize: 500}
	defer w.Close()
	msgs := make([]kafka.Message, len(evs))
	for i, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		msgs[i] = kafka.Message{Key: []byte(e.CaseID), Value: b}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publish %d events: %w", len(evs), err)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Processes

type proc struct {
	name     string
	cmd      *exec.Cmd
	http     string
	stdout   string
	stderr   string
	started  time.Time
	exited   chan struct{}
	exitedAt time.Time
	state    *os.ProcessState
	// tailLines is how many lines of stderr a failing test shows (20 when 0).
	tailLines int
}

// settings every test sets; the delivery ones are the lead engineer's
// (ignored by a binary that does not know them yet).
func (s *stack) env(httpAddr string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + s.dir, "TMPDIR=" + s.dir,
		"KAFKA_BROKERS=" + strings.Join(s.brokers, ","),
		"REDIS_URL=" + s.redis.URL(),
		"HTTP_ADDR=" + httpAddr,
		"LOG_LEVEL=info", "LOG_FORMAT=json",
		"TWILIO_ACCOUNT_SID=" + twilioSID, "TWILIO_AUTH_TOKEN=" + twilioToken,
		"TWILIO_FROM=" + twilioFrom, "TWILIO_API_URL=" + s.sms.URL(),
		"RATE_LIMIT_SMS=0", // unlimited: the slow provider is the bottleneck
		"DELIVER_SEND_TIMEOUT=3s", "DELIVER_LEASE=5s", "SHUTDOWN_GRACE=5s", "DELIVER_WORKERS=8",
	}
	if z := os.Getenv("ZONEINFO"); z != "" {
		env = append(env, "ZONEINFO="+z)
	}
	return env
}

// start runs `dispatcher run --config F args...` with the stack's
// settings plus extraEnv (later entries win), logging to files in the
// stack's directory. It is killed when the test ends if still running.
func (s *stack) start(t *testing.T, name string, args []string, extraEnv ...string) *proc {
	t.Helper()
	return s.startBin(t, dispatcherBinary(t), name, args, extraEnv...)
}

// startBin is start with another build of the dispatcher.
func (s *stack) startBin(t *testing.T, bin, name string, args []string, extraEnv ...string) *proc {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, http: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		stdout: filepath.Join(s.dir, name+".stdout"), stderr: filepath.Join(s.dir, name+".stderr"),
		exited: make(chan struct{})}
	out, err := os.Create(p.stdout)
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, append([]string{"run", "--config", s.config}, args...)...)
	p.cmd.Env = append(s.env(p.http), extraEnv...)
	p.cmd.Stdout, p.cmd.Stderr = out, errf
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.exitedAt = time.Now()
		p.state = p.cmd.ProcessState
		_ = out.Close()
		_ = errf.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.logTail(t)
		}
	})
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *proc) describe() string {
	if p.running() {
		return "running"
	}
	return p.state.String()
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.exited
}

// term sends SIGTERM.
func (p *proc) term() { _ = p.cmd.Process.Signal(syscall.SIGTERM) }

// waitExit waits up to d for the process to end.
func (p *proc) waitExit(d time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// waitReady polls /readyz until 200, the process exits or d passes.
func (p *proc) waitReady(t *testing.T, d time.Duration) {
	t.Helper()
	if err := p.ready(d); err != nil {
		t.Fatalf("%s: %v\n%s", p.name, err, tail(p.stderr, 25))
	}
}

func (p *proc) ready(d time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !p.running() {
			return fmt.Errorf("exited before ready (%s)", p.describe())
		}
		resp, err := c.Get("http://" + p.http + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s", d)
}

// logLines returns the process's stderr lines matching re.
func (p *proc) logLines(re *regexp.Regexp) []string {
	b, _ := os.ReadFile(p.stderr)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if re.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// logTail logs the process's last warnings and errors and last lines.
func (p *proc) logTail(t *testing.T) {
	t.Helper()
	n := p.tailLines
	if n == 0 {
		n = 20
	}
	warn := p.logLines(regexp.MustCompile(`"level":"(warning|error|fatal|panic)"`))
	t.Logf("--- %s (%s): %d warning/error lines, the last ones:\n%s\n--- %s, last lines of stderr:\n%s",
		p.name, p.describe(), len(warn), strings.Join(lastN(warn, 5), "\n"), p.name, tail(p.stderr, n))
	if o := tail(p.stdout, 5); o != "" {
		t.Logf("--- %s stdout:\n%s", p.name, o)
	}
}

func lastN(xs []string, n int) []string {
	if len(xs) > n {
		return xs[len(xs)-n:]
	}
	return xs
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---------------------------------------------------------------------------
// Topics and groups

// readTopic reads every partition of topic from its first to its last
// offset as of the call.
func (s *stack) readTopic(t *testing.T, topic string) []kafka.Message {
	t.Helper()
	msgs, err := s.readTopicErr(topic)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func (s *stack) readTopicErr(topic string) ([]kafka.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := s.offsets(ctx, topic, kafka.LastOffset)
	if err != nil {
		return nil, err
	}
	firsts, err := s.offsets(ctx, topic, kafka.FirstOffset)
	if err != nil {
		return nil, err
	}
	var out []kafka.Message
	for p, end := range ends {
		if end <= firsts[p] {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.brokers, Topic: topic, Partition: p,
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(firsts[p]); err != nil {
			_ = r.Close()
			return nil, err
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				_ = r.Close()
				return nil, fmt.Errorf("read %s[%d]: %w", topic, p, err)
			}
			out = append(out, m)
			if m.Offset+1 >= end {
				break
			}
		}
		_ = r.Close()
	}
	return out, nil
}

// offsets returns the first or last (next) offset of every partition.
func (s *stack) offsets(ctx context.Context, topic string, which int64) (map[int]int64, error) {
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(s.brokers...), Timeout: 10 * time.Second, Transport: tr}
	req := make([]kafka.OffsetRequest, partitions)
	for p := range req {
		req[p] = kafka.OffsetRequest{Partition: p, Timestamp: which}
	}
	res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	out := map[int]int64{}
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets of %s[%d]: %w", topic, po.Partition, po.Error)
		}
		if which == kafka.FirstOffset {
			out[po.Partition] = po.FirstOffset
		} else {
			out[po.Partition] = po.LastOffset
		}
	}
	return out, nil
}

// lag is how many messages of topic the group has not committed yet.
func (s *stack) lag(group, topic string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := s.offsets(ctx, topic, kafka.LastOffset)
	if err != nil {
		return 0, err
	}
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(s.brokers...), Timeout: 10 * time.Second, Transport: tr}
	parts := make([]int, partitions)
	for p := range parts {
		parts[p] = p
	}
	res, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return 0, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	var lag int64
	for _, po := range res.Topics[topic] {
		committed := max(po.CommittedOffset, 0)
		lag += ends[po.Partition] - committed
	}
	return lag, nil
}

// groupMembers describes a consumer group: its state and, per member
// (client host and id), the partitions of each topic it holds.
func (s *stack) groupMembers(group string) (string, map[string]map[string][]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(s.brokers...), Timeout: 10 * time.Second, Transport: tr}
	res, err := c.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return "", nil, err
	}
	if len(res.Groups) != 1 {
		return "", nil, fmt.Errorf("describe %s: %d groups", group, len(res.Groups))
	}
	g := res.Groups[0]
	if g.Error != nil {
		return "", nil, g.Error
	}
	out := map[string]map[string][]int{}
	for _, m := range g.Members {
		ts := map[string][]int{}
		for _, tp := range m.MemberAssignments.Topics {
			ts[tp.Topic] = append(ts[tp.Topic], tp.Partitions...)
		}
		out[m.MemberID] = ts
	}
	return g.GroupState, out, nil
}

// settle polls until the provider's messages and the audit topic cover
// every expected notification, or until deadline; it returns the last
// report. kills are passed through to check.
func (s *stack) settle(t *testing.T, exp map[notif]string, kills []time.Time, deadline time.Time) report {
	t.Helper()
	var rep report
	for {
		rs, err := s.resultsErr()
		if err != nil {
			t.Logf("read audit topic: %v (retrying)", err)
		} else {
			rep = s.model.check(exp, s.sms.Answers(), rs, kills)
			if rep.complete() {
				return rep
			}
		}
		if time.Now().After(deadline) {
			return rep
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// diagnose logs where the pipeline stands: consumer lags and in-flight sends.
func (s *stack) diagnose(t *testing.T) {
	t.Helper()
	var parts []string
	for _, gt := range [][2]string{{"dispatcher", "case-events"}, {"dispatcher", "case-events.internal"}, {"dispatcher-deliver", "notifications"}} {
		l, err := s.lag(gt[0], gt[1])
		if err != nil {
			parts = append(parts, fmt.Sprintf("%s/%s: %v", gt[0], gt[1], err))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s/%s lag %d", gt[0], gt[1], l))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ends, err := s.offsets(ctx, "notifications", kafka.LastOffset); err == nil {
		var n int64
		for _, e := range ends {
			n += e
		}
		parts = append(parts, fmt.Sprintf("intents written %d", n))
	}
	parts = append(parts, fmt.Sprintf("redis delivery queues %d jobs", s.queuedJobs()))
	parts = append(parts, fmt.Sprintf("provider in flight %d, requests %d", s.sms.InFlight(), len(s.sms.Arrivals())))
	t.Logf("pipeline: %s", strings.Join(parts, "; "))
}

// queuedJobs counts the jobs in the deliver stage's Redis queues, sorted
// sets of the delivery queue, sharded or not (diagnostics only: 0 if they are renamed).
func (s *stack) queuedJobs() int64 {
	c := redis.NewClient(&redis.Options{Addr: s.redis.Addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int64
	iter := c.Scan(ctx, 0, "*deliver:queue:*", 1000).Iterator()
	for iter.Next(ctx) {
		if k, err := c.ZCard(ctx, iter.Val()).Result(); err == nil {
			n += k
		}
	}
	return n
}
