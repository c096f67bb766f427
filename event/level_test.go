package event

import (
	"encoding/json"
	"testing"
)

func TestLevelOrder(t *testing.T) {
	order := []Level{LevelNone, Bajo, Medio, Alto, Extremo}
	for i := 1; i < len(order); i++ {
		if !(order[i-1] < order[i]) {
			t.Errorf("%v is not below %v", order[i-1], order[i])
		}
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]Level{
		"bajo": Bajo, "medio": Medio, "alto": Alto, "extremo": Extremo, "no_apreciado": Bajo,
	} {
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "Alto", "high", "no apreciado", "muy_alto"} {
		if got, err := ParseLevel(in); err == nil {
			t.Errorf("ParseLevel(%q) = %v, want an error", in, got)
		}
	}
}

func TestLevelJSON(t *testing.T) {
	for l, want := range map[Level]string{
		LevelNone: `""`, Bajo: `"bajo"`, Medio: `"medio"`, Alto: `"alto"`, Extremo: `"extremo"`,
	} {
		b, err := json.Marshal(l)
		if err != nil || string(b) != want {
			t.Errorf("Marshal(%d) = %s, %v; want %s", l, b, err, want)
		}
		var back Level = 99
		if err := json.Unmarshal(b, &back); err != nil || back != l {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", b, back, err, l)
		}
	}
	var l Level
	if err := json.Unmarshal([]byte(`"no_apreciado"`), &l); err != nil || l != Bajo {
		t.Errorf(`Unmarshal("no_apreciado") = %v, %v; want bajo`, l, err)
	}
	for _, in := range []string{`3`, `"high"`, `{}`, `true`} {
		if err := json.Unmarshal([]byte(in), &l); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want an error", in, l)
		}
	}
	if s := Level(9).String(); s != "level(9)" {
		t.Errorf("Level(9).String() = %q", s)
	}
	// A Case keeps its level by name.
	b, err := json.Marshal(Case{ID: "C-HER-0001", Level: Alto})
	if err != nil {
		t.Fatal(err)
	}
	var c Case
	if err := json.Unmarshal(b, &c); err != nil || c.Level != Alto {
		t.Errorf("case round trip: %+v, %v (json %s)", c, err, b)
	}
}

func TestNewTransition(t *testing.T) {
	for _, c := range []struct {
		from, to        Level
		rising, falling bool
	}{
		{LevelNone, Medio, true, false},
		{Medio, Alto, true, false},
		{Extremo, Alto, false, true},
		{Alto, Alto, false, false},
		{Alto, LevelNone, false, false},
	} {
		tr := NewTransition(c.from, c.to)
		if tr.Rising != c.rising || tr.Falling != c.falling {
			t.Errorf("%v→%v: rising %v falling %v", c.from, c.to, tr.Rising, tr.Falling)
		}
	}
}
