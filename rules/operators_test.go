package rules

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// testHash is the bcrypt hash (cost 10) of a synthetic password.
func testHash(t *testing.T) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("synthetic-pass"), 10)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestOperatorsValid(t *testing.T) {
	h := testHash(t)
	src := baseConfig + "operators:\n" +
		"  - {id: op-unit, agency: unit, password_bcrypt: '" + h + "'}\n" +
		"  - {id: op-center, agency: center, role: viewer, watch: [unit], password_bcrypt: '" + h + "'}\n"
	c, err := Parse([]byte(src), "test.yaml", testOpts)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := c.Operator("op-center")
	if !ok || o.CanAck() || strings.Join(o.Scope(), ",") != "center,unit" {
		t.Fatalf("op-center = %+v, %v", o, ok)
	}
	if o, _ := c.Operator("op-unit"); !o.CanAck() {
		t.Fatal("op-unit cannot acknowledge")
	}
}

func TestOperatorsErrors(t *testing.T) {
	h := testHash(t)
	cheap, _ := bcrypt.GenerateFromPassword([]byte("x"), 4)
	for _, tc := range []struct{ name, line, path, msg string }{
		{"bad id", "{id: Op1, agency: unit, password_bcrypt: '" + h + "'}", "operators[0].id", "invalid operator id"},
		{"unknown agency", "{id: op1, agency: nowhere, password_bcrypt: '" + h + "'}", "operators[0].agency", "unknown agency"},
		{"role", "{id: op1, agency: unit, role: admin, password_bcrypt: '" + h + "'}", "operators[0].role", "unknown role"},
		{"plain password", "{id: op1, agency: unit, password_bcrypt: 'hunter2'}", "operators[0].password_bcrypt", "not a bcrypt hash"},
		{"cheap hash", "{id: op1, agency: unit, password_bcrypt: '" + string(cheap) + "'}", "operators[0].password_bcrypt", "cost 4"},
		{"watch from a unit", "{id: op1, agency: unit, watch: [center], password_bcrypt: '" + h + "'}", "operators[0].watch", "only an operator of a coordinating_center"},
		{"watch unknown", "{id: op1, agency: center, watch: [nowhere], password_bcrypt: '" + h + "'}", "operators[0].watch[0]", "unknown agency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := baseConfig + "operators:\n  - " + tc.line + "\n"
			errs := parseErrs(t, src)
			for _, e := range errs {
				if e.Path == tc.path && strings.Contains(e.Msg, tc.msg) {
					if want := lineOf(t, src, "operators:") + 1; e.Line != want || e.File != "test.yaml" {
						t.Errorf("at %s:%d, want test.yaml:%d", e.File, e.Line, want)
					}
					return
				}
			}
			t.Fatalf("no %s error %q in %v", tc.path, tc.msg, errs)
		})
	}
	src := baseConfig + "operators:\n  - {id: op1, agency: unit, password_bcrypt: '" + h + "'}\n  - {id: op1, agency: unit, password_bcrypt: '" + h + "'}\n"
	if errs := parseErrs(t, src); !strings.Contains(errs.Error(), "duplicate operator id") {
		t.Fatalf("duplicate not reported: %v", errs)
	}
}
