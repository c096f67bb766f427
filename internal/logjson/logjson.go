// Package logjson is a logrus formatter that writes exactly what
// logrus.JSONFormatter writes (the same keys, values, order and escaping)
// without reflection for the field types the service logs: strings,
// booleans, integers, string slices, times and errors. Anything else goes
// through encoding/json as before. Two log lines a notification at info
// made JSONFormatter's map encoding a tenth of the dispatcher's CPU under
// load (issue 9). One difference: logrus drops a field whose value is a
// function and names it under "logrus_error", which it keeps unexported;
// here the line just lacks the field (the service logs no functions).
package logjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
)

// Formatter is logrus.JSONFormatter with its default settings, faster.
type Formatter struct{}

var _ logrus.Formatter = Formatter{}

type field struct {
	key   string
	val   any   // a logrus value, unless typed is set
	typed Field // a value given to Log
}

// clashes are logrus's own keys: a field of that name is kept as
// fields.<key> (replacing a field already named so, as in logrus).
var clashes = map[string]bool{logrus.FieldKeyTime: true, logrus.FieldKeyMsg: true, logrus.FieldKeyLevel: true, logrus.FieldKeyLogrusError: true}

var fieldPool = sync.Pool{New: func() any { s := make([]field, 0, 16); return &s }}

// Format writes one entry as a JSON object and a newline.
func (Formatter) Format(e *logrus.Entry) ([]byte, error) {
	fp := fieldPool.Get().(*[]field)
	defer func() { *fp = (*fp)[:0]; fieldPool.Put(fp) }()
	fs := fieldsOf(e, (*fp)[:0])
	*fp = fs
	b := e.Buffer
	if b == nil {
		b = new(bytes.Buffer)
	}
	if err := writeObject(b, fs); err != nil {
		return nil, fmt.Errorf("failed to marshal fields to JSON, %w", err)
	}
	return b.Bytes(), nil
}

// writeObject writes fs as a JSON object and a newline.
func writeObject(b *bytes.Buffer, fs []field) error {
	b.WriteByte('{')
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(b, f.key)
		b.WriteByte(':')
		if f.typed.kind != 0 {
			writeField(b, f.typed)
		} else if err := writeValue(b, f.val); err != nil {
			return err
		}
	}
	b.WriteString("}\n")
	return nil
}

// fieldsOf lists the entry's fields and logrus's own, sorted by key.
func fieldsOf(e *logrus.Entry, fs []field) []field {
	for k, v := range e.Data {
		if clashes[k] {
			k = "fields." + k
		} else if len(k) > 7 && k[:7] == "fields." && clashes[k[7:]] {
			if _, ok := e.Data[k[7:]]; ok {
				continue // replaced by the clashing field's value
			}
		}
		if err, ok := v.(error); ok {
			v = err.Error()
		}
		fs = append(fs, field{key: k, val: v})
	}
	fs = append(fs, field{key: logrus.FieldKeyTime, val: e.Time.Format(time.RFC3339)}, field{key: logrus.FieldKeyMsg, val: e.Message},
		field{key: logrus.FieldKeyLevel, val: e.Level.String()})
	if e.Caller != nil {
		fs = callerFields(e, fs)
	}
	slices.SortFunc(fs, func(a, b field) int { return strings.Compare(a.key, b.key) })
	return fs
}

// callerFields adds func and file as logrus does: a field of the same
// name is kept as fields.<key> (replacing one already named so).
func callerFields(e *logrus.Entry, fs []field) []field {
	for _, k := range []string{logrus.FieldKeyFunc, logrus.FieldKeyFile} {
		i := slices.IndexFunc(fs, func(f field) bool { return f.key == k })
		if i < 0 {
			continue
		}
		v := fs[i].val
		fs = slices.DeleteFunc(fs, func(f field) bool { return f.key == k || f.key == "fields."+k })
		fs = append(fs, field{key: "fields." + k, val: v})
	}
	return append(fs, field{key: logrus.FieldKeyFunc, val: e.Caller.Function},
		field{key: logrus.FieldKeyFile, val: e.Caller.File + ":" + strconv.Itoa(e.Caller.Line)})
}

func writeValue(b *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case string:
		writeString(b, v)
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case int:
		b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(v), 10))
	case int64:
		b.Write(strconv.AppendInt(b.AvailableBuffer(), v, 10))
	case int32:
		b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(v), 10))
	case uint64:
		b.Write(strconv.AppendUint(b.AvailableBuffer(), v, 10))
	case []string:
		if v == nil {
			b.WriteString("null")
			return nil
		}
		b.WriteByte('[')
		for i, s := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, s)
		}
		b.WriteByte(']')
	default:
		j, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.Write(j)
	}
	return nil
}

// writeString writes s as encoding/json does with HTML escaping: plain
// printable ASCII as it is, anything else through encoding/json.
func writeString(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s)
			b.Write(j)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}
