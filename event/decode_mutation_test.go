package event

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Tests written to kill mutants that survived `make mutate` (see
// docs/testing.md): the exact reasons of JSON syntax and type errors, which
// TestDecodeErrors checks only by field.

func decodeReason(t *testing.T, raw string) string {
	t.Helper()
	_, err := Decode([]byte(raw))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Decode(%q) = %v, want an *Error", raw, err)
	}
	if e.Field != "$" && !strings.HasPrefix(e.Reason, "must be") {
		t.Fatalf("Decode(%q): field %q", raw, e.Field)
	}
	return e.Reason
}

// An empty or truncated message says so; other invalid JSON gives the byte
// offset (syntaxErr's io.EOF test negated made every error "end of input").
func TestSyntaxErrorReasons(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"", "invalid JSON: unexpected end of input"},
		{"   ", "invalid JSON: unexpected end of input"},
		{`{"id":"e1",`, "invalid JSON: unexpected end of input"},
		{`{"id":"e1" "type":"case.opened"}`, "invalid JSON at byte 11"},
		{`{"id" 1}`, "invalid JSON at byte "},
		{`x`, "invalid JSON at byte 1"},
	} {
		if got := decodeReason(t, tc.raw); !strings.HasPrefix(got, tc.want) {
			t.Errorf("Decode(%q) reason %q, want prefix %q", tc.raw, got, tc.want)
		}
	}
}

// A value of the wrong JSON type names the kind the field wants (jsonKind's
// nil test negated named "another JSON type" for every field).
func TestTypeErrorReasonsNameTheWantedKind(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
	}{
		{`{"id":12}`, "must be a string, got a JSON number"},
		{`{"version":"1"}`, "must be a"},
		{`{"jurisdiction":"13047"}`, "must be a"},
	} {
		got := decodeReason(t, tc.raw)
		if !strings.HasPrefix(got, tc.want) || strings.Contains(got, "another JSON type") {
			t.Errorf("Decode(%q) reason %q, want prefix %q and a named kind", tc.raw, got, tc.want)
		}
	}
	if got := jsonKind(nil); got != "another JSON type" {
		t.Errorf("jsonKind(nil) = %q", got)
	}
}

// Bounds are inclusive: a free-text field of exactly its maximum length and
// times in 1970 and 9999 (in UTC) are accepted; one byte or one second
// beyond is refused (killed mutants: `len(v) > max` and the year tests made
// `>=`/`<=`).
func TestDecodeBoundsAreInclusive(t *testing.T) {
	ok := [][]byte{
		edited(t, CaseClosed, set("closure.reason", strings.Repeat("r", 128))),
		edited(t, BreachReported, set("breach.channel", strings.Repeat("c", 64))),
		edited(t, CaseOpened, set("occurred_at", "1970-01-01T00:00:00Z")),
		edited(t, CaseOpened, set("occurred_at", "9999-12-31T23:59:59Z")),
	}
	for _, b := range ok {
		if _, err := Decode(b); err != nil {
			t.Errorf("Decode(%s): %v", b, err)
		}
	}
	bad := [][]byte{
		edited(t, CaseClosed, set("closure.reason", strings.Repeat("r", 129))),
		edited(t, CaseOpened, set("occurred_at", "1969-12-31T23:59:59Z")),
		edited(t, CaseOpened, set("occurred_at", "1970-01-01T00:30:00+01:00")),
		edited(t, CaseOpened, set("occurred_at", "9999-12-31T23:00:00-02:00")),
	}
	for _, b := range bad {
		if _, err := Decode(b); err == nil {
			t.Errorf("Decode(%s) succeeded, want an error", b)
		}
	}
}

// More bounds: 32 protection measures are accepted, 33 are not (the latter
// is in TestDecodeErrors); an ack.via over 64 bytes is refused; a Level past
// the last name prints as a number instead of panicking.
func TestDecodeMoreBounds(t *testing.T) {
	measures := make([]string, 32)
	for i := range measures {
		measures[i] = "m"
	}
	if _, err := Decode(edited(t, ProtectionOrderIssued, set("protection_order.measures", measures))); err != nil {
		t.Errorf("32 measures: %v", err)
	}
	long := edited(t, EscalationAcknowledged, set("ack.via", strings.Repeat("v", 65)))
	if _, err := DecodeInternal(long); err == nil {
		t.Error("an ack.via of 65 bytes was accepted")
	}
	ok := edited(t, EscalationAcknowledged, set("ack.via", strings.Repeat("v", 64)))
	if _, err := DecodeInternal(ok); err != nil {
		t.Errorf("an ack.via of 64 bytes: %v", err)
	}
	if s := Level(len(levelNames)).String(); s != fmt.Sprintf("level(%d)", len(levelNames)) {
		t.Errorf("Level(len(levelNames)).String() = %q", s)
	}
}
