package logjson

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// Field is one key and value of a line written by Log.
type Field struct {
	key  string
	kind uint8
	s    string
	n    int64
	ss   []string
}

const (
	kindString uint8 = iota + 1
	kindInt
	kindInt64
	kindBool
	kindStrings
)

// String is a string field.
func String(k, v string) Field { return Field{key: k, kind: kindString, s: v} }

// Int is an int field.
func Int(k string, v int) Field { return Field{key: k, kind: kindInt, n: int64(v)} }

// Int64 is an int64 field.
func Int64(k string, v int64) Field { return Field{key: k, kind: kindInt64, n: v} }

// Bool is a boolean field.
func Bool(k string, v bool) Field {
	f := Field{key: k, kind: kindBool}
	if v {
		f.n = 1
	}
	return f
}

// Strings is a field holding a list of strings.
func Strings(k string, v []string) Field { return Field{key: k, kind: kindStrings, ss: v} }

func (f Field) value() any {
	switch f.kind {
	case kindString:
		return f.s
	case kindInt:
		return int(f.n) // through logrus, a hook sees the type given
	case kindInt64:
		return f.n
	case kindBool:
		return f.n == 1
	default:
		return f.ss
	}
}

// Log writes msg with fs at level through l, byte for byte as
// l.WithFields(fs).Log(level, msg) writes it. When l is a logrus entry or
// logger that formats with Formatter, writes to a file (os.File writes
// are safe for concurrent use) and has no hook at level nor caller
// reporting, it writes the line itself: no fields map, no entry and none
// of logrus's copies of them. The decision line of every alert was a
// third of the decide stage's CPU under load (issue 9). Anything else
// goes through logrus.
func Log(l logrus.FieldLogger, level logrus.Level, msg string, fs ...Field) {
	lg, base := loggerOf(l)
	if lg != nil && !lg.IsLevelEnabled(level) {
		return
	}
	if lg == nil || !direct(lg, level, base, fs) {
		viaLogrus(l, level, msg, fs)
		return
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() { buf.Reset(); bufPool.Put(buf) }()
	if err := appendLine(buf, time.Now(), level, msg, base, fs); err != nil {
		viaLogrus(l, level, msg, fs)
		return
	}
	if _, err := lg.Out.Write(buf.Bytes()); err != nil {
		fmt.Fprintf(os.Stderr, "Failed to write to log: %v\n", err) // as logrus does
	}
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func loggerOf(l logrus.FieldLogger) (*logrus.Logger, logrus.Fields) {
	switch v := l.(type) {
	case *logrus.Entry:
		return v.Logger, v.Data
	case *logrus.Logger:
		return v, nil
	}
	return nil, nil
}

// direct reports whether the line can skip logrus: nothing but the
// formatter would see it, and no key needs logrus's renaming.
func direct(lg *logrus.Logger, level logrus.Level, base logrus.Fields, fs []Field) bool {
	if _, ok := lg.Formatter.(Formatter); !ok || lg.ReportCaller || len(lg.Hooks[level]) > 0 {
		return false
	}
	if _, ok := lg.Out.(*os.File); !ok {
		return false
	}
	for k := range base {
		if renamed(k) {
			return false
		}
	}
	for _, f := range fs {
		if renamed(f.key) {
			return false
		}
	}
	return true
}

// renamed reports a key logrus keeps as fields.<key> (clashes), or one
// of that form.
func renamed(k string) bool {
	switch k {
	case logrus.FieldKeyTime, logrus.FieldKeyMsg, logrus.FieldKeyLevel, logrus.FieldKeyLogrusError:
		return true
	}
	return strings.HasPrefix(k, "fields.")
}

func viaLogrus(l logrus.FieldLogger, level logrus.Level, msg string, fs []Field) {
	m := make(logrus.Fields, len(fs))
	for _, f := range fs {
		m[f.key] = f.value()
	}
	l.WithFields(m).Log(level, msg)
}

// appendLine writes the line Formatter writes for an entry with base and
// fs (fs replacing base fields of the same key) at level and time at.
func appendLine(b *bytes.Buffer, at time.Time, level logrus.Level, msg string, base logrus.Fields, fs []Field) error {
	lp := fieldPool.Get().(*[]field)
	defer func() { clear(*lp); *lp = (*lp)[:0]; fieldPool.Put(lp) }()
	lf := (*lp)[:0]
	for k, v := range base {
		if slices.ContainsFunc(fs, func(f Field) bool { return f.key == k }) {
			continue
		}
		if err, ok := v.(error); ok {
			v = err.Error()
		}
		lf = append(lf, field{key: k, val: v})
	}
	for i, f := range fs {
		if slices.ContainsFunc(fs[i+1:], func(g Field) bool { return g.key == f.key }) {
			continue // a later field of the same key wins, as in a map
		}
		lf = append(lf, field{key: f.key, typed: f})
	}
	lf = append(lf, field{key: logrus.FieldKeyTime, typed: String("", at.Format(time.RFC3339))},
		field{key: logrus.FieldKeyMsg, typed: String("", msg)}, field{key: logrus.FieldKeyLevel, typed: String("", level.String())})
	*lp = lf
	sortByKey(lf)
	return writeObject(b, lf)
}

// sortByKey sorts a line's few fields by key: an insertion sort, as
// slices.SortFunc moved these large structs about at a cost that showed
// in profiles. Keys are unique here.
func sortByKey(fs []field) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].key < fs[j-1].key; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

func writeField(b *bytes.Buffer, f Field) {
	switch f.kind {
	case kindString:
		writeString(b, f.s)
	case kindInt, kindInt64:
		b.Write(strconv.AppendInt(b.AvailableBuffer(), f.n, 10))
	case kindBool:
		b.WriteString(strconv.FormatBool(f.n == 1))
	default:
		_ = writeValue(b, f.ss) // a []string never fails
	}
}
