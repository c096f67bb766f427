package main

import "testing"

// The simulator's commands run on one processor unless GOMAXPROCS says
// otherwise; every other command keeps them all.
func TestOneProcessorForTheSimulator(t *testing.T) {
	unset := func(string) string { return "" }
	set := func(k string) string {
		if k == "GOMAXPROCS" {
			return "2"
		}
		return ""
	}
	for _, c := range []struct {
		args   []string
		getenv env
		want   bool
	}{
		{[]string{"simulate", "--config", "c.yaml"}, unset, true},
		{[]string{"test", "a.yaml"}, unset, true},
		{[]string{"simulate"}, set, false},
		{[]string{"run"}, unset, false},
		{[]string{"dev"}, unset, false},
		{nil, unset, false},
	} {
		if got := oneProcessor(c.args, c.getenv); got != c.want {
			t.Errorf("oneProcessor(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}
