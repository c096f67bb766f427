package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
	"github.com/viogen-alerts/dispatcher/rules"
)

const exampleEvents = "../../deploy/examples/events.jsonl"

// readTopic reads n messages of topic from the start.
func readTopic(t *testing.T, brokers []string, topic string, n int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, GroupTopics: []string{topic}, GroupID: "read-" + strconv.FormatInt(time.Now().UnixNano(), 10),
		MaxWait: 100 * time.Millisecond, StartOffset: kafka.FirstOffset})
	defer r.Close()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read %s after %d: %v", topic, len(out), err)
		}
		out = append(out, m)
	}
	return out
}

func TestPublishKeysEveryEventByCaseID(t *testing.T) {
	_, brokers := testenv.StartKafka(t, 4, dispatcher.TopicCaseEvents)
	code, out, errOut := run(t, "", envMap(nil), "publish", "--brokers", strings.Join(brokers, ","), exampleEvents)
	if code != 0 || !strings.Contains(out, "published 38 events to case-events") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	for _, m := range readTopic(t, brokers, dispatcher.TopicCaseEvents, 38) {
		ev, err := event.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != ev.CaseID {
			t.Errorf("key %q for case %s", m.Key, ev.CaseID)
		}
	}
}

func TestPublishStrictRefusesAnInvalidFile(t *testing.T) {
	_, brokers := testenv.StartKafka(t, 1, dispatcher.TopicCaseEvents)
	lines, err := os.ReadFile(exampleEvents)
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(string(lines), "\n", 2)[0]
	path := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(path, []byte(first+"\n"+`{"id":"x","type":"case.exploded"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, "", envMap(nil), "publish", "--strict", "--brokers", strings.Join(brokers, ","), path)
	if code != 1 || !strings.Contains(errOut, "bad.jsonl:2:") {
		t.Fatalf("exit %d, stderr %q: want 1 and the bad line named", code, errOut)
	}
	// Without --strict the line goes as it is, to be dead-lettered.
	code, out, _ := run(t, "", envMap(nil), "publish", "--brokers", strings.Join(brokers, ","), path)
	if code != 0 || !strings.Contains(out, "published 2 events") {
		t.Fatalf("exit %d: %s", code, out)
	}
	if n := endOffset(t, brokers, dispatcher.TopicCaseEvents); n != 2 {
		t.Fatalf("topic holds %d messages, want the 2 of the second run: --strict must send nothing", n)
	}
}

func endOffset(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	c, closeClient := dispatcher.KafkaSecurity{}.Client(brokers, 0)
	defer closeClient()
	resp, err := c.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[topic][0].LastOffset
}

func TestRunRefusesABadConfigAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("timezone: Europe/Madrid\nagencies: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, "", envMap(map[string]string{"KAFKA_BROKERS": "127.0.0.1:1", "REDIS_URL": "redis://127.0.0.1:1"}),
		"run", "--config", path, "--http", "")
	if code != 1 || !strings.Contains(errOut, "bad.yaml:2:") {
		t.Fatalf("exit %d, stderr %q: want 1 with file:line", code, errOut)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// dev (what make run runs) starts its own broker and Redis, publishes the
// demo scenario, and shows what would have been sent at /outbox.
func TestDevShowsTheDemoInTheOutbox(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, []string{"dev", "--kafka-port", strconv.Itoa(port), "--http", "127.0.0.1:0",
			"--config", exampleConfig, "--demo", exampleEvents}, stdio{in: strings.NewReader(""), out: &out, err: &errOut}, envMap(nil))
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("dev exited %d: %s", code, errOut.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("dev did not stop on cancel")
		}
	}()
	admin := waitMatch(t, &out, regexp.MustCompile(`admin on (http://127\.0\.0\.1:\d+)`))
	var sent []map[string]any
	deadline := time.Now().Add(devWait)
	for len(sent) < 10 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		sent = getJSON(t, admin+"/outbox")
	}
	if len(sent) < 10 {
		t.Fatalf("outbox has %d messages after the demo; stderr:\n%s", len(sent), tail(errOut.String()))
	}
	for _, m := range sent {
		to, _ := m["to"].(string)
		if !strings.Contains(to, "*") {
			t.Errorf("outbox shows an unmasked address %q", to)
		}
	}
	if resp, err := http.Get(admin + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	devConsoleShowsEscalations(t, out.String(), admin)
}

// devConsoleShowsEscalations checks that dev printed the console's URL
// and a login for every agency of the example (coordinating centers
// included), and that a login shows the demo's open escalations.
func devConsoleShowsEscalations(t *testing.T, out, admin string) {
	t.Helper()
	if !strings.Contains(out, "alert console:  "+admin+"/console/") {
		t.Fatalf("no console URL in output:\n%s", out)
	}
	cfg, err := rules.LoadFile(exampleConfig, rules.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	passwords := map[string]string{}
	for _, a := range cfg.Agencies {
		m := regexp.MustCompile(`operator dev-` + regexp.QuoteMeta(a.ID) + `\s+password (\S+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no dev login for agency %s in output:\n%s", a.ID, out)
		}
		passwords[a.ID] = m[1]
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	page := func(u string) string {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	login := page(admin + "/console/login")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(login)
	if m == nil {
		t.Fatalf("login page:\n%s", login)
	}
	resp, err := c.PostForm(admin+"/console/login", url.Values{"csrf": {m[1]}, "operator": {"dev-ses-viogen"}, "password": {passwords["ses-viogen"]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p := page(admin + "/console/")
		if strings.Contains(p, "data-escalation=") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the coordinating center's console shows no open escalation of the demo:\n%s", p)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// devWait bounds waits for dev to start and to show the demo: things that
// do happen, only slowly under -race on a busy machine (30 s was once not
// enough for the start in a full make test). Nothing is timed with it.
const devWait = 2 * time.Minute

func waitMatch(t *testing.T, b *syncBuffer, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(devWait)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(b.String()); m != nil {
			return m[1]
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s in output:\n%s", re, b.String())
	return ""
}

func getJSON(t *testing.T, url string) []map[string]any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v []map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v: %s", url, err, b)
	}
	return v
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}
