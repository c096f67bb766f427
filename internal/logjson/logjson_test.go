package logjson

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

type point struct {
	X int    `json:"x"`
	Y string `json:"y"`
}

// entries covers every value type the fast paths write and the ones that
// go through encoding/json, with text that must be escaped.
func entries() []*logrus.Entry {
	at := time.Date(2026, 3, 29, 1, 30, 0, 123456789, time.FixedZone("CET", 3600))
	l := logrus.New()
	mk := func(lvl logrus.Level, msg string, f logrus.Fields) *logrus.Entry {
		e := logrus.NewEntry(l).WithFields(f)
		e.Time, e.Level, e.Message = at, lvl, msg
		return e
	}
	return []*logrus.Entry{
		mk(logrus.InfoLevel, "notification sent", logrus.Fields{"intent_id": "i-0001", "alert_id": "a1b2", "case_ref": "C-SIM-0001",
			"rule": "bracelet-alarm", "channel": "sms", "contact_id": "ct-07", "attempt": 1, "outcome": "sent", "latency_ms": int64(12)}),
		mk(logrus.InfoLevel, "alert opened", logrus.Fields{"targets": []string{"gc-ciudad-real/ct-01", "ses/ct-2"}, "critical": true,
			"unrouted": false, "empty": []string{}, "none": []string(nil), "policy": ""}),
		mk(logrus.WarnLevel, "attempt failed <retry> & \"quoted\" \\ \n\t\u2028 ñ \x01", logrus.Fields{"error": errors.New("dial tcp: <refused> & \"x\""),
			"weird": "tab\there, é, 日本, \xff invalid", "html": "<b>&amp;</b>", "lt": "a<b", "gt": "a>b", "amp": "a&b", "quote": "a\"b", "bs": "a\\b", "ctl": "a\x1fb", "del": "a\x7fb"}),
		mk(logrus.ErrorLevel, "types", logrus.Fields{"f": 1.5, "big": 1e21, "small": 1e-7, "d": 1500 * time.Millisecond, "at": at,
			"u": uint64(18446744073709551615), "i32": int32(-5), "neg": -42, "u8": uint8(7), "pt": point{1, "<y>"}, "ptr": &point{2, "z"},
			"m": map[string]int{"b": 2, "a": 1}, "nil": nil, "bytes": []byte("hi"), "ints": []int{1, 2}}),
		mk(logrus.DebugLevel, "clash", logrus.Fields{"time": "t", "msg": "m", "level": "l", "logrus_error": "x", "fields.time": "y"}),
		mk(logrus.InfoLevel, "", logrus.Fields{}),
		mk(logrus.TraceLevel, "no fields", nil),
	}
}

// Every line is byte for byte what logrus.JSONFormatter writes.
func TestSameAsLogrusJSONFormatter(t *testing.T) {
	for i, e := range entries() {
		want, err := (&logrus.JSONFormatter{}).Format(e)
		if err != nil {
			t.Fatal(err)
		}
		want = bytes.Clone(want)
		got, err := Formatter{}.Format(e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("entry %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// With the caller reported, func and file are added as logrus adds them.
func TestCallerAsLogrus(t *testing.T) {
	e := entries()[0]
	e.Caller = &runtime.Frame{Function: "main.run", File: "/src/main.go", Line: 42}
	e.Data["func"] = "clash"
	e.Data["fields.func"] = "replaced"
	e.Data["file"] = errors.New("an error")
	want, _ := (&logrus.JSONFormatter{}).Format(e)
	want = bytes.Clone(want)
	got, _ := Formatter{}.Format(e)
	if !bytes.Equal(got, want) {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

// A value encoding/json cannot encode is an error, as with logrus.
func TestUnencodableValueIsAnError(t *testing.T) {
	e := entries()[0]
	e.Data["ch"] = make(chan int)
	if _, err := (Formatter{}).Format(e); err == nil {
		t.Fatal("a channel value was encoded")
	}
}

func BenchmarkFormat(b *testing.B) {
	e := entries()[0]
	for _, f := range []logrus.Formatter{&logrus.JSONFormatter{}, Formatter{}} {
		b.Run(fmt.Sprintf("%T", f), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.Format(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
