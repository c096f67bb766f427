package logjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
)

// Every line appendLine writes is byte for byte what logrus.JSONFormatter
// writes for the same entry: base fields of every type, typed fields that
// replace base fields of the same key, a repeated key (the last wins),
// escapes, empty and nil lists.
func TestLineSameAsLogrusJSONFormatter(t *testing.T) {
	at := time.Date(2026, 3, 29, 1, 30, 0, 123456789, time.FixedZone("CET", 3600))
	cases := []struct {
		base logrus.Fields
		fs   []Field
		msg  string
	}{
		{logrus.Fields{"component": "decide"}, []Field{String("case_ref", "C-SIM-0001"), String("alert_id", "a1b2"), Bool("critical", true),
			Bool("unrouted", false), Int("attempt", 3), Int64("neg", -42), Strings("targets", []string{"gc-ciudad-real/ct-01", "ses/ct-2"})}, "alert notify"},
		{logrus.Fields{"component": "deliver", "err": errors.New("dial <tcp> & \"x\""), "n": 7, "d": 1500 * time.Millisecond},
			[]Field{String("component", "replaced"), Strings("empty", []string{}), Strings("none", nil), String("weird", "tab\there, é, \xff, <b>&amp;</b> \u2028")}, "attempt failed <retry> & \"quoted\" \\ \n"},
		{nil, []Field{String("k", "first"), String("k", "second")}, ""},
		{nil, nil, "no fields"},
	}
	for i, c := range cases {
		data := logrus.Fields{}
		for k, v := range c.base {
			data[k] = v
		}
		for _, f := range c.fs {
			data[f.key] = f.value()
		}
		e := &logrus.Entry{Logger: logrus.New(), Data: data, Time: at, Level: logrus.InfoLevel, Message: c.msg}
		want, err := (&logrus.JSONFormatter{}).Format(e)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := appendLine(&got, at, logrus.InfoLevel, c.msg, c.base, c.fs); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got.Bytes(), want)
		}
	}
}

func fileLogger(t *testing.T) (*logrus.Logger, *os.File) {
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	l := logrus.New()
	l.SetOutput(f)
	l.SetFormatter(Formatter{})
	return l, f
}

func lines(t *testing.T, f *os.File) []string {
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// Through a logger writing to a file, Log writes the line logrus writes,
// but for the time; at a disabled level neither writes.
func TestLogWritesWhatLogrusWrites(t *testing.T) {
	l, f := fileLogger(t)
	l.SetLevel(logrus.InfoLevel)
	e := l.WithField("component", "decide")
	fs := []Field{String("alert_id", "a1"), Int64("attempt", 2), Bool("critical", false), Strings("targets", []string{"u/c"})}
	Log(e, logrus.InfoLevel, "alert notify", fs...)
	e.WithFields(logrus.Fields{"alert_id": "a1", "attempt": int64(2), "critical": false, "targets": []string{"u/c"}}).Info("alert notify")
	Log(e, logrus.DebugLevel, "not written", fs...)
	Log(e, logrus.WarnLevel, "written", fs...)
	got := lines(t, f)
	if len(got) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(got), strings.Join(got, "\n"))
	}
	noTime := regexp.MustCompile(`"time":"[^"]*"`)
	if a, b := noTime.ReplaceAllString(got[0], ""), noTime.ReplaceAllString(got[1], ""); a != b || !strings.Contains(got[0], `"time":"20`) {
		t.Errorf("direct line\n %s\nlogrus line\n %s", got[0], got[1])
	}
	if !strings.Contains(got[2], `"level":"warning","msg":"written"`) {
		t.Errorf("warn line %s", got[2])
	}
}

// Anything but the formatter that would see the line (a hook, caller
// reporting, an output that is no file, a key logrus renames, another
// formatter) sends it through logrus.
func TestLogGoesThroughLogrusWhenAnythingElseWouldSeeIt(t *testing.T) {
	l, f := fileLogger(t)
	hook := test.NewLocal(l)
	Log(l, logrus.InfoLevel, "hooked", String("alert_id", "a1"))
	Log(l, logrus.InfoLevel, "typed", Int("attempt", 2), Int64("latency_ms", 5))
	if e := hook.LastEntry(); e == nil || e.Data["attempt"] != 2 || e.Data["latency_ms"] != int64(5) {
		t.Fatalf("the hook saw %+v", hook.AllEntries())
	}
	if e := hook.AllEntries()[0]; e.Message != "hooked" || e.Data["alert_id"] != "a1" {
		t.Fatalf("the hook saw %+v", hook.AllEntries())
	}
	if got := lines(t, f); len(got) != 2 || !strings.Contains(got[0], `"alert_id":"a1"`) {
		t.Fatalf("file holds %q", got)
	}

	var buf bytes.Buffer
	l2 := logrus.New()
	l2.SetOutput(&buf)
	l2.SetFormatter(Formatter{})
	Log(l2.WithField("component", "c"), logrus.InfoLevel, "to a buffer", String("msg", "clash"))
	if s := buf.String(); !strings.Contains(s, `"fields.msg":"clash"`) || !strings.Contains(s, `"msg":"to a buffer"`) {
		t.Fatalf("buffer holds %q", s)
	}

	l3, f3 := fileLogger(t)
	l3.SetFormatter(&logrus.TextFormatter{DisableColors: true})
	Log(l3, logrus.InfoLevel, "as text", Int("attempt", 1))
	if got := lines(t, f3); len(got) != 1 || !strings.Contains(got[0], `msg="as text" attempt=1`) {
		t.Fatalf("text logger holds %q", got)
	}
}

func BenchmarkLog(b *testing.B) {
	f, err := os.Create(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	l := logrus.New()
	l.SetOutput(f)
	l.SetFormatter(Formatter{})
	e := l.WithField("component", "decide")
	targets := []string{"gc-ciudad-real/ct-01"}
	b.Run("logrus", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e.WithFields(logrus.Fields{"case_ref": "C-0001", "alert_id": "a1b2c3", "rule": "risk-rise", "severity": "high", "critical": false,
				"policy": "p1", "unrouted": false, "event_id": "ev-1", "targets": targets}).Info("alert notify")
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Log(e, logrus.InfoLevel, "alert notify", String("case_ref", "C-0001"), String("alert_id", "a1b2c3"), String("rule", "risk-rise"),
				String("severity", "high"), Bool("critical", false), String("policy", "p1"), Bool("unrouted", false), String("event_id", "ev-1"),
				Strings("targets", targets))
		}
	})
}

// A writer that is no file (here a bytes.Buffer, unsafe for concurrent
// use) gets every line through logrus's lock: lines from Log and from
// logrus at once all arrive whole (and the race detector sees no race).
func TestLogToAWriterThatIsNoFileTakesLogrusLock(t *testing.T) {
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetFormatter(Formatter{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				Log(l, logrus.InfoLevel, "direct", Int("g", g), Int("i", i))
				l.WithFields(logrus.Fields{"g": g, "i": i}).Info("logrus")
			}
		}()
	}
	wg.Wait()
	got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(got) != 400 {
		t.Fatalf("%d lines, want 400", len(got))
	}
	for _, s := range got {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("line %q: %v", s, err)
		}
	}
}

// A base field that cannot be encoded sends the line through logrus,
// which reports it (as logrus does for any entry) instead of writing a
// partial line: the file holds only the next, whole line.
func TestLogWritesNoPartialLine(t *testing.T) {
	l, f := fileLogger(t)
	Log(l.WithField("ch", make(chan int)), logrus.InfoLevel, "unencodable", String("alert_id", "a1"))
	Log(l, logrus.InfoLevel, "whole", String("alert_id", "a2"))
	got := lines(t, f)
	if len(got) != 1 {
		t.Fatalf("%d lines, want 1: %q", len(got), got)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(got[0]), &m); err != nil || m["msg"] != "whole" {
		t.Fatalf("line %q: %v", got[0], err)
	}
}

// A line the file refuses is reported on standard error as logrus reports
// its own (the same words), and leaves nothing behind: the logger's next
// line, to a good file, is written whole and alone.
func TestLogReportsAFailedWriteAsLogrusDoes(t *testing.T) {
	l, f := fileLogger(t)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	viaLogrus := stderrOf(t, func() { l.WithField("alert_id", "a1").Info("refused") })
	direct := stderrOf(t, func() { Log(l, logrus.InfoLevel, "refused", String("alert_id", "a1")) })
	if !strings.HasPrefix(direct, "Failed to write to log: ") || direct != viaLogrus {
		t.Fatalf("Log reported %q on standard error, logrus %q", direct, viaLogrus)
	}
	_, g := fileLogger(t)
	l.SetOutput(g)
	Log(l, logrus.InfoLevel, "whole", String("alert_id", "a2"))
	if got := lines(t, g); len(got) != 1 || !strings.Contains(got[0], `"msg":"whole"`) {
		t.Fatalf("after a failed write: %q", got)
	}
}

// stderrOf runs fn with os.Stderr captured (tests here do not run in
// parallel) and returns what it wrote.
func stderrOf(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	saved := os.Stderr
	os.Stderr = w
	fn()
	os.Stderr = saved
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
