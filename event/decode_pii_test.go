package event

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"testing"
)

// piiSamples are synthetic personal data of the shapes that reach the
// decoder by mistake: a phone number, an e-mail address, a full name, a
// DNI. None may ever appear in an error text (errors go to logs and to
// the dead-letter reason header).
var piiSamples = []string{"+34600000001", "ana.garcia@example.org", "Maria Lopez Garcia", "12345678Z"}

// piiMessages builds malformed messages carrying sample s in every place
// the decoder reads: as the value of every field of every example (as a
// string, and for the digits also as a number), as an unknown key in
// every object, as an element of every array, and inside broken JSON.
func piiMessages(t testing.TB, s string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	types := append(append([]Type(nil), UpstreamTypes...), InternalTypes...)
	for _, typ := range types {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(example(t, typ)))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		var paths, objects []string
		walkPaths(m, "", &paths, &objects)
		for _, p := range paths {
			out[string(typ)+" value "+p] = edited(t, typ, set(p, s))
			out[string(typ)+" array "+p] = edited(t, typ, set(p, []any{s}))
			if digits := strings.Trim(s, "+Z"); isDigits(digits) {
				out[string(typ)+" number "+p] = edited(t, typ, set(p, json.Number(digits)))
			}
		}
		for _, o := range append(objects, "") {
			key := s
			if o != "" {
				key = o + "." + s
			}
			if strings.Contains(s, ".") { // set splits on dots: add the key by hand
				out[string(typ)+" key in "+o] = addKey(t, edited(t, typ), o, s)
				continue
			}
			out[string(typ)+" key in "+o] = edited(t, typ, set(key, 1))
			out[string(typ)+" key and value in "+o] = edited(t, typ, set(key, s))
		}
		// An unknown key with an object value holding personal data.
		out[string(typ)+" nested unknown"] = addKey(t, edited(t, typ), "", "x", map[string]any{s: s})
	}
	q, _ := json.Marshal(s)
	for name, raw := range map[string]string{
		"plain text":          s,
		"quoted":              string(q),
		"bare in object":      `{"id":` + s + `}`,
		"bare key":            `{` + s + `:1}`,
		"after value":         `{"id":"e1" ` + string(q) + `:1}`,
		"trailing text":       `{"id":"e1"} ` + s,
		"trailing string":     `{"id":"e1"} ` + string(q),
		"bad escape":          `{"id":"` + s + `\x"}`,
		"control char":        `{"id":"` + s + "\x01" + `"}`,
		"truncated":           `{"id":` + string(q),
		"truncated key":       `{` + string(q),
		"array":               `[` + string(q) + `]`,
		"key after bad comma": `{"id":"e1",,` + string(q) + `:1}`,
		"number with sign":    `{"version":` + s + `}`,
	} {
		out["raw "+name] = []byte(raw)
	}
	return out
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// walkPaths collects the dotted paths of all leaves and of all objects.
func walkPaths(m map[string]any, prefix string, leaves, objects *[]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if sub, ok := m[k].(map[string]any); ok {
			*objects = append(*objects, p)
			walkPaths(sub, p, leaves, objects)
			continue
		}
		*leaves = append(*leaves, p)
	}
}

// addKey adds key (with value v, default 1) to the object at dotted path
// obj ("" = top level) of message b.
func addKey(t testing.TB, b []byte, obj, key string, v ...any) []byte {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	target := m
	if obj != "" {
		for _, k := range strings.Split(obj, ".") {
			target = target[k].(map[string]any)
		}
	}
	var val any = 1
	if len(v) > 0 {
		val = v[0]
	}
	target[key] = val
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDecodeErrorsNeverRepeatPersonalData feeds each sample in every
// position and fails if an error text repeats it, whole or in part.
func TestDecodeErrorsNeverRepeatPersonalData(t *testing.T) {
	refused := 0
	for _, s := range piiSamples {
		for name, msg := range piiMessages(t, s) {
			for _, internal := range []bool{false, true} {
				_, err := decodeWith(internal)(msg)
				if err == nil {
					continue // e.g. a name is a valid free text in some fields
				}
				refused++
				if leak := leaked(err.Error(), s); leak != "" {
					t.Errorf("%s (internal=%v): error %q repeats %q", name, internal, err, leak)
				}
			}
		}
	}
	if refused < 1000 {
		t.Errorf("only %d messages refused: the generator lost coverage", refused)
	}
}

// leaked returns the part of sample s found in text: s itself, its
// digits, or any word of it (e-mail address parts, name parts).
func leaked(text, s string) string {
	parts := []string{s, strings.Trim(s, "+Z")}
	parts = append(parts, strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '@' || r == '.' })...)
	for _, p := range parts {
		if len(p) >= 3 && p != "org" && strings.Contains(text, p) {
			return p
		}
	}
	return ""
}
