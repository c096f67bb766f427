package event

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzDecode: whatever the bytes, the decoder does not panic; an error is
// an *Error naming a field with a reason; an accepted event encodes back
// to JSON that decodes to the same event.
//
// Seeds live in testdata/fuzz/FuzzDecode; `go test ./event -run
// TestFuzzSeeds -args -write-seeds` rewrites them from the examples and
// error rows.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		up, upErr := Decode(b)
		in, inErr := DecodeInternal(b)
		checkFuzzErr(t, "Decode", up, upErr)
		checkFuzzErr(t, "DecodeInternal", in, inErr)
		if upErr == nil {
			if up.Type.IsInternal() {
				t.Fatalf("Decode accepted internal type %s", up.Type)
			}
			if inErr != nil || !reflect.DeepEqual(up, in) {
				t.Fatalf("DecodeInternal disagrees with Decode: %+v, %v", in, inErr)
			}
			checkRoundTrip(t, up, Decode)
		}
		if inErr == nil {
			checkRoundTrip(t, in, DecodeInternal)
		}
	})
}

func checkFuzzErr(t *testing.T, name string, ev Event, err error) {
	t.Helper()
	if err == nil {
		return
	}
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("%s: error %T (%v) is not an *Error", name, err, err)
	}
	if e.Field == "" || e.Reason == "" {
		t.Fatalf("%s: error %#v lacks a field or a reason", name, e)
	}
	if !reflect.DeepEqual(ev, Event{}) {
		t.Fatalf("%s: error %v came with a non-zero event", name, err)
	}
}

func checkRoundTrip(t *testing.T, ev Event, decode func([]byte) (Event, error)) {
	t.Helper()
	if ev.OccurredAt.Location().String() != "UTC" {
		t.Fatalf("occurred_at %v is not UTC", ev.OccurredAt)
	}
	b, err := Encode(ev)
	if err != nil {
		t.Fatalf("Encode of an accepted event: %v", err)
	}
	back, err := decode(b)
	if err != nil {
		t.Fatalf("decode of the encoded event %s: %v", b, err)
	}
	if !reflect.DeepEqual(back, ev) {
		t.Fatalf("round trip changed the event\n got %+v\nwant %+v", back, ev)
	}
}

var writeSeeds = flag.Bool("write-seeds", false, "rewrite testdata/fuzz/FuzzDecode from the examples and error rows")

const seedDir = "testdata/fuzz/FuzzDecode"

// seedErrRows names the error rows kept as broken seeds.
var seedErrRows = []string{
	"missing id", "missing jurisdiction", "id with space", "unknown type", "internal type via Decode",
	"occurred_at not RFC 3339", "occurred_at year 0 in UTC", "province not matching municipality",
	"region lower case", "bad level", "level as number", "missing risk on risk.assessed",
	"bad checkin kind", "missing checkin unit", "bad destination", "bad effective_at",
	"bad alarm kind", "negative distance", "missing relocation.to", "alarm on risk.assessed",
	"victim_name", "unknown field in body", "key in other case", "empty key", "duplicate nested key",
	"measures as string", "version zero", "version overflows int64", "truncated", "trailing brace",
	"timeout without escalation_id",
}

// seeds returns the seed corpus: name → message.
func seeds(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for typ := range upstreamExamples {
		out["valid-"+string(typ)] = example(t, typ)
	}
	for typ := range internalExamples {
		out["internal-"+string(typ)] = example(t, typ)
	}
	rows := map[string]errRow{}
	for _, r := range errRows() {
		rows[r.name] = r
	}
	for _, name := range seedErrRows {
		r, ok := rows[name]
		if !ok {
			t.Fatalf("no error row %q", name)
		}
		out["broken-"+strings.ReplaceAll(name, " ", "-")] = r.message(t)
	}
	// Shapes the examples do not have: optional bodies, null and empty.
	out["valid-no_apreciado"] = edited(t, RiskAssessed, set("risk.level", "no_apreciado"))
	out["valid-empty-measures"] = edited(t, ProtectionOrderIssued, set("protection_order.measures", []string{}))
	out["valid-bare-incident"] = edited(t, IncidentReported, del("incident"), del("version"))
	out["broken-raw-text"] = []byte("not json")
	out["broken-empty"] = []byte{}
	return out
}

func seedFile(b []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
}

// readSeed parses one corpus file of a single []byte value.
func readSeed(t *testing.T, path string) []byte {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rest, ok := bytes.CutPrefix(raw, []byte("go test fuzz v1\n[]byte("))
	rest = bytes.TrimSpace(rest)
	if !ok || !bytes.HasSuffix(rest, []byte(")")) {
		t.Fatalf("%s: not a one-[]byte corpus file", path)
	}
	s, err := strconv.Unquote(string(rest[:len(rest)-1]))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// TestFuzzSeeds keeps the committed corpus in step with the examples: a
// valid seed for every type and the named broken ones, each behaving as
// its name says.
func TestFuzzSeeds(t *testing.T) {
	want := seeds(t)
	if *writeSeeds {
		if err := os.MkdirAll(seedDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range want {
			if err := os.WriteFile(filepath.Join(seedDir, name), seedFile(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, b := range want {
		got := readSeed(t, filepath.Join(seedDir, name))
		if !bytes.Equal(got, b) {
			t.Errorf("seed %s is out of date (run with -write-seeds)", name)
		}
	}
	files, err := os.ReadDir(seedDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b := readSeed(t, filepath.Join(seedDir, f.Name()))
		_, err := DecodeInternal(b)
		switch {
		case strings.HasPrefix(f.Name(), "valid-"):
			if _, err := Decode(b); err != nil {
				t.Errorf("seed %s: %v", f.Name(), err)
			}
		case strings.HasPrefix(f.Name(), "internal-"):
			if err != nil {
				t.Errorf("seed %s: %v", f.Name(), err)
			}
		case strings.HasPrefix(f.Name(), "broken-"):
			if _, uerr := Decode(b); uerr == nil {
				t.Errorf("seed %s decodes", f.Name())
			}
		}
		// Other names are crashers the fuzzer found: kept as regressions.
	}
}
