package templates

import (
	"strings"
	"testing"
)

func TestGSM7Segments(t *testing.T) {
	cases := []struct {
		name string
		in   string
		segs int
		gsm  bool
	}{
		{"empty", "", 0, true},
		{"ascii 160", strings.Repeat("a", 160), 1, true},
		{"ascii 161", strings.Repeat("a", 161), 2, true},
		{"ascii 306", strings.Repeat("a", 306), 2, true},
		{"ascii 307", strings.Repeat("a", 307), 3, true},
		{"spanish basic letters", "ñÑéÉüÜ¿¡àèìòù", 1, true},
		{"á is UCS-2", "á", 1, false},
		{"í ó ú ç are UCS-2", "iou" + "í", 1, false},
		{"ucs2 70", strings.Repeat("á", 70), 1, false},
		{"ucs2 71", strings.Repeat("á", 71), 2, false},
		{"ucs2 134", strings.Repeat("á", 134), 2, false},
		{"ucs2 135", strings.Repeat("á", 135), 3, false},
		{"euro counts 2", strings.Repeat("a", 158) + "€", 1, true},
		{"euro over 160", strings.Repeat("a", 159) + "€", 2, true},
		{"brackets count 2", strings.Repeat("[]", 40), 1, true},
		{"brackets 81", strings.Repeat("[]", 40) + "{", 2, true},
		// 152 septets then an escape pair: the pair moves to segment 2.
		{"escape not split", strings.Repeat("a", 152) + "€" + strings.Repeat("a", 151), 2, true},
		{"escape not split 2", strings.Repeat("a", 152) + "€" + strings.Repeat("a", 152), 3, true},
		{"emoji is 2 units", strings.Repeat("a", 68) + "🚨", 1, false},
		{"emoji over 70", strings.Repeat("a", 69) + "🚨", 2, false},
		{"newline is basic", "a\nb\rc", 1, true},
		{"tab is not", "a\tb", 1, false},
	}
	for _, c := range cases {
		segs, gsm := GSM7Segments(c.in)
		if segs != c.segs || gsm != c.gsm {
			t.Errorf("%s: GSM7Segments = %d, %v; want %d, %v", c.name, segs, gsm, c.segs, c.gsm)
		}
	}
}

func TestGSMAlphabetSize(t *testing.T) {
	if n := len([]rune(gsmBasic)); n != 127 { // 128 code points minus ESC
		t.Errorf("basic table has %d characters, want 127", n)
	}
	if n := len([]rune(gsmExtension)); n != 10 {
		t.Errorf("extension table has %d characters, want 10", n)
	}
}

func TestToGSM7(t *testing.T) {
	in := "Atención: revisión «urgente» — Policía Local de Alcalá; col·laboració, Plaça… ñ é ü"
	out := ToGSM7(in)
	want := `Atencion: revision "urgente" - Policia Local de Alcala; col.laboracio, Placa... ñ é ü`
	if out != want {
		t.Errorf("ToGSM7 = %q, want %q", out, want)
	}
	if _, gsm := GSM7Segments(out); !gsm {
		t.Errorf("folded text is not GSM-7: %q", out)
	}
	if got := ToGSM7("ok 🚨"); got != "ok 🚨" {
		t.Errorf("unfoldable character changed: %q", got)
	}
}
