package rules

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from Reference()")

const referenceFile = "../docs/configuration.md"

// TestReferenceUpToDate fails when docs/configuration.md differs from what
// the schema structs generate. Fix with `go generate ./rules`.
func TestReferenceUpToDate(t *testing.T) {
	want := Reference()
	if *update {
		if err := os.WriteFile(referenceFile, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(referenceFile)
	if err != nil {
		t.Fatalf("%v (generate it with `go generate ./rules`)", err)
	}
	if string(got) != want {
		t.Fatalf("%s is out of date with the config structs; run `go generate ./rules`", referenceFile)
	}
}

// TestReferenceCoversEveryKey checks that every key of the schema and
// every name of the rule environment is documented.
func TestReferenceCoversEveryKey(t *testing.T) {
	ref := Reference()
	for _, s := range sections {
		for _, f := range fieldsOf(s.typ) {
			if f.doc == "" {
				t.Errorf("%s.%s has no doc tag", s.path, f.key)
			}
			if !strings.Contains(ref, "| `"+f.key+"` |") {
				t.Errorf("%s.%s missing from the reference", s.path, f.key)
			}
		}
	}
	for _, name := range []string{"event.alarm.kind", "case.unit_known", "transition.rising", "EXTREMO"} {
		if !strings.Contains(ref, "| `"+name+"` |") {
			t.Errorf("%s missing from the reference", name)
		}
	}
}
