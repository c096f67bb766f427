package rules

import "testing"

// An error without a line names only the file; errors at the same place
// keep the order they were found in (killed mutants: `e.Line > 0` made
// `>=`, the column comparison made `<=`).
func TestValidationErrorFormatAndOrder(t *testing.T) {
	if got := (ValidationError{File: "f.yaml", Msg: "m"}).Error(); got != "f.yaml: m" {
		t.Errorf("no line: %q", got)
	}
	if got := (ValidationError{File: "f.yaml", Line: 3, Col: 5, Path: "a.b", Msg: "m"}).Error(); got != "f.yaml:3:5: a.b: m" {
		t.Errorf("with line: %q", got)
	}
	es := ValidationErrors{
		{Line: 2, Col: 1, Msg: "c"}, {Line: 1, Col: 4, Msg: "a"}, {Line: 1, Col: 4, Msg: "b"}, {Line: 1, Col: 1, Msg: "first"},
	}.sorted()
	var got []string
	for _, e := range es {
		got = append(got, e.Msg)
	}
	if want := []string{"first", "a", "b", "c"}; len(got) != 4 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Errorf("sorted = %v, want %v", got, want)
	}
}
