package event

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestFillWireMatchesEncodingJSON: for every message keysOK lets through,
// whatever fillWire takes reads exactly as json.Unmarshal reads it into the
// wire, and it takes nothing json.Unmarshal refuses. The corpus: the fuzz
// seeds (every example and the broken rows), every error row, and each of
// them bent: white space, a string with an escape or a raw invalid byte, a
// null for each value in turn, fractions and exponents, -0, a level as a
// number.
func TestFillWireMatchesEncodingJSON(t *testing.T) {
	var corpus [][]byte
	for _, b := range seeds(t) {
		corpus = append(corpus, b)
	}
	for _, r := range errRows() {
		corpus = append(corpus, r.message(t))
	}
	for _, b := range corpus[:len(corpus):len(corpus)] {
		corpus = append(corpus, bendEvent(b)...)
	}
	checked, took := 0, 0
	for _, b := range corpus {
		if !keysOK(b) {
			continue
		}
		checked++
		var fw, jw wire
		ok := fillWire(b, &fw)
		jerr := json.Unmarshal(b, &jw)
		if !ok {
			continue
		}
		took++
		if jerr != nil || !reflect.DeepEqual(fw, jw) {
			fj, _ := json.Marshal(fw)
			jj, _ := json.Marshal(jw)
			t.Errorf("%s\nfast: %s\njson: %s (%v)", b, fj, jj, jerr)
		}
	}
	t.Logf("fillWire took %d of the %d messages keysOK let through (%d in all)", took, checked, len(corpus))
	if took < 100 || took == checked {
		t.Errorf("fillWire took %d of %d messages: the test checks too little of one side", took, checked)
	}
}

var (
	valueRE = regexp.MustCompile(`("[a-z_]+":)("[^"\\]*"|-?[0-9][0-9.eE+-]*|true|false)`)
	strRE   = regexp.MustCompile(`(":")([a-z])`)
)

// bendEvent returns variants of a message, each changed in one way.
func bendEvent(b []byte) [][]byte {
	s := string(b)
	out := []string{
		strings.ReplaceAll(strings.ReplaceAll(s, `":`, "\" :\n "), `,"`, " ,\t\""),
		strRE.ReplaceAllString(s, `$1\u0061$2`),
		strRE.ReplaceAllString(s, "$1\xff$2"),
		regexp.MustCompile(`("version":)(\d+)`).ReplaceAllString(s, `${1}${2}.0`),
		regexp.MustCompile(`("version":)(\d+)`).ReplaceAllString(s, `${1}${2}e0`),
		regexp.MustCompile(`("distance_m":)(\d+)`).ReplaceAllString(s, `${1}-0`),
		regexp.MustCompile(`("(level|previous)":)"[a-z_]+"`).ReplaceAllString(s, `${1}3`),
		regexp.MustCompile(`("(step|round)":)(\d+)`).ReplaceAllString(s, `${1}-${3}`),
		" \n" + s + "\t ",
	}
	for k, m := range valueRE.FindAllStringSubmatchIndex(s, -1) {
		if k > 40 {
			break
		}
		out = append(out, s[:m[4]]+"null"+s[m[5]:])
	}
	bs := make([][]byte, len(out))
	for i, v := range out {
		bs[i] = []byte(v)
	}
	return bs
}

// BenchmarkDecodeAlarm: a device.alarm, the whole strict decode (keys,
// typed fill, validation), and the typed fill alone both ways.
func BenchmarkDecodeAlarm(b *testing.B) {
	msg := example(b, DeviceAlarm)
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fill_fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var w wire
			if !fillWire(msg, &w) {
				b.Fatal("fell back")
			}
		}
	})
	b.Run("fill_encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var w wire
			if err := json.Unmarshal(msg, &w); err != nil {
				b.Fatal(err)
			}
		}
	})
}
