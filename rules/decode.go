package rules

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/viogen-alerts/dispatcher/event"
)

// The decoder walks yaml.Node trees into the schema structs by reflection,
// so that every value keeps its line and column, unknown and duplicate keys
// are reported where they are, and one bad value does not stop the rest of
// the file from being checked.

var (
	durationType = reflect.TypeOf(Duration(0))
	levelType    = reflect.TypeOf(event.Level(0))
)

// field is the schema of one struct field, read from its tags.
type field struct {
	index    int
	key      string
	doc      string
	def      string
	required bool
}

var fieldCache sync.Map // reflect.Type -> []field

func fieldsOf(t reflect.Type) []field {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]field)
	}
	var fs []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		key := strings.Split(sf.Tag.Get("yaml"), ",")[0]
		if !sf.IsExported() || key == "" || key == "-" {
			continue
		}
		fs = append(fs, field{
			index:    i,
			key:      key,
			doc:      sf.Tag.Get("doc"),
			def:      sf.Tag.Get("default"),
			required: sf.Tag.Get("required") == "true",
		})
	}
	fieldCache.Store(t, fs)
	return fs
}

type decoder struct {
	*reporter
	values map[string]*yaml.Node // value node of every key path
}

func (d *decoder) record(path string, n *yaml.Node) {
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = pos{n.Line, n.Column}
	}
}

func (d *decoder) wrong(path string, n *yaml.Node, format string, args ...any) {
	d.errorAt(pos{n.Line, n.Column}, path, fmt.Sprintf(format, args...))
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.record(path, n)
	if isNull(n) {
		return
	}
	switch v.Type() {
	case durationType:
		if n.Kind != yaml.ScalarNode {
			d.wrong(path, n, "want a duration such as 15m, 72h or 30d, got %s", kindName(n))
			return
		}
		dur, err := ParseDuration(n.Value)
		if err != nil {
			d.wrong(path, n, "%v", err)
			return
		}
		v.SetInt(int64(dur))
		return
	case levelType:
		if n.Kind != yaml.ScalarNode {
			d.wrong(path, n, "want a risk level (bajo, medio, alto, extremo), got %s", kindName(n))
			return
		}
		l, err := event.ParseLevel(n.Value)
		if err != nil {
			d.wrong(path, n, "%v", err)
			return
		}
		v.SetInt(int64(l))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.wrong(path, n, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), indexPath(path, i))
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.wrong(path, n, "want a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.wrong(path, n, "want true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int:
		i, err := strconv.Atoi(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.wrong(path, n, "want a whole number, got %s", kindName(n))
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			d.wrong(path, n, "want a number, got %s", kindName(n))
			return
		}
		v.SetFloat(f)
	default:
		panic("rules: no decoder for " + v.Type().String())
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.wrong(path, n, "want a mapping, got %s", kindName(n))
		return
	}
	fs := fieldsOf(v.Type())
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	failed := map[string]bool{} // keys whose value was reported already
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := joinPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.wrong(kp, k, "duplicate key %q (first at line %d)", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		f, ok := findField(fs, k.Value)
		if !ok {
			d.wrong(kp, k, "unknown key %q%s", k.Value, suggest(k.Value, fs))
			continue
		}
		d.pos[kp] = pos{k.Line, k.Column}
		before := len(d.errs)
		d.decode(val, v.Field(f.index), kp)
		if len(d.errs) > before {
			failed[k.Value] = true
		}
		// Keep the key's position for the path: values of block scalars
		// and nested mappings start on later lines, the key is where an
		// operator looks.
		d.pos[kp] = pos{k.Line, k.Column}
		d.values[kp] = val
	}
	for _, f := range fs {
		if !f.required || failed[f.key] {
			continue
		}
		fv := v.Field(f.index)
		if k, ok := seen[f.key]; !ok || fv.IsZero() || (fv.Kind() == reflect.Slice && fv.Len() == 0) {
			p := pos{n.Line, n.Column}
			if ok {
				p = pos{k.Line, k.Column}
			}
			d.errorAt(p, joinPath(path, f.key), "required key is missing or empty")
		}
	}
}

func findField(fs []field, key string) (field, bool) {
	for _, f := range fs {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// suggest names the closest known key, for typos.
func suggest(key string, fs []field) string {
	best, bestD := "", 3
	for _, f := range fs {
		if dd := editDistance(key, f.key); dd < bestD {
			best, bestD = f.key, dd
		}
	}
	if best == "" {
		keys := make([]string, len(fs))
		for i, f := range fs {
			keys[i] = f.key
		}
		return " (known keys: " + strings.Join(keys, ", ") + ")"
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
