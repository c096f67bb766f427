package channels_test

import (
	"testing"

	"github.com/viogen-alerts/dispatcher/channels"
)

func TestMask(t *testing.T) {
	cases := map[string]string{
		"":                                 "",
		"+34600000001":                     "+34*******01",
		"+34600000123":                     "+34*******23",
		"jane@example.org":                 "j***@example.org",
		"@example.org":                     "***@example.org",
		"ñu@example.org":                   "ñ***@example.org",
		"abc":                              "***",
		"1234567":                          "*******",
		"R0123456789abcdef0123456789abcde": "R01" + "***************************" + "de",
		"https://hooks.example.org/T0/secret?x=1": "https://hooks.example.org/***",
		"https://hooks.example.org":               "https://hooks.example.org",
		"http://127.0.0.1:8080/hook":              "http://127.0.0.1:8080/***",
	}
	for in, want := range cases {
		if got := channels.Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTruncate(t *testing.T) {
	cases := []struct {
		in   string
		max  int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 4, "hel…"},
		{"ñandú€€", 3, "ña…"},
		{"abc", 0, ""},
		{"abc", 1, "…"},
	}
	for _, c := range cases {
		if got := channels.Truncate(c.in, c.max); got != c.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}
