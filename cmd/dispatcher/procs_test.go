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

// The service collects garbage at GOGC 200 unless GOGC says otherwise;
// other commands keep the runtime's default.
func TestGCPercentForTheService(t *testing.T) {
	unset := func(string) string { return "" }
	set := func(k string) string {
		if k == "GOGC" {
			return "50"
		}
		return ""
	}
	for _, c := range []struct {
		args   []string
		getenv env
		want   int
	}{
		{[]string{"run"}, unset, 200},
		{[]string{"dev"}, unset, 200},
		{[]string{"run"}, set, -1},
		{[]string{"simulate"}, unset, -1},
		{[]string{"publish"}, unset, -1},
		{nil, unset, -1},
	} {
		if got := gcPercent(c.args, c.getenv); got != c.want {
			t.Errorf("gcPercent(%q) = %d, want %d", c.args, got, c.want)
		}
	}
}
