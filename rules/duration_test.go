package rules

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		str  string
	}{
		{"15m", 15 * time.Minute, "15m"},
		{"72h", 72 * time.Hour, "3d"},
		{"30d", 30 * 24 * time.Hour, "30d"},
		{"1d12h", 36 * time.Hour, "1d12h"},
		{"1h30m", 90 * time.Minute, "1h30m"},
		{"90s", 90 * time.Second, "1m30s"},
		{"0", 0, "0"},
	} {
		d, err := ParseDuration(tc.in)
		if err != nil || d.Std() != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, d.Std(), err, tc.want)
			continue
		}
		if d.String() != tc.str {
			t.Errorf("%q.String() = %q, want %q", tc.in, d.String(), tc.str)
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Errorf("round trip of %q: %v, %v", tc.in, back, err)
		}
	}
	for _, bad := range []string{"", "10x", "-5m", "d", "1.5d", "3d-1h", "5000d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	b, err := json.Marshal(struct{ D Duration }{Duration(2 * time.Hour)})
	if err != nil || string(b) != `{"D":"2h"}` {
		t.Fatalf("marshal: %s, %v", b, err)
	}
	var v struct{ D Duration }
	if err := json.Unmarshal([]byte(`{"D":"1d2h"}`), &v); err != nil || v.D.Std() != 26*time.Hour {
		t.Fatalf("unmarshal: %v, %v", v.D, err)
	}
	if err := json.Unmarshal([]byte(`{"D":60000000000}`), &v); err != nil || v.D.Std() != time.Minute {
		t.Fatalf("unmarshal nanoseconds: %v, %v", v.D, err)
	}
}
