package rules

import (
	"strings"
	"testing"
)

func withRates(yaml string) string { return baseConfig + "rate_limits:\n" + yaml }

// Bad limits are refused at load, at the line of the value.
func TestRateLimitsRefused(t *testing.T) {
	for _, tc := range []refusal{
		{"negative rate", withRates("  sms: {per_second: -1}\n"), "per_second: -1", "rate_limits.sms.per_second", "must not be negative"},
		{"rate not a number", withRates("  sms: {per_second: fast}\n"), "fast", "rate_limits.sms.per_second", `want a number, got "fast"`},
		{"missing rate", withRates("  pager: {burst: 3}\n"), "{burst", "rate_limits.pager.per_second", "required key is missing"},
		{"zero burst", withRates("  email: {per_second: 1, burst: 0}\n"), "burst: 0", "rate_limits.email.burst", "burst must be at least 1"},
		{"reserve the whole burst", withRates("  webhook: {per_second: 5, burst: 4, critical_reserve: 4}\n"), "critical_reserve: 4", "rate_limits.webhook.critical_reserve", "less than burst (4)"},
		{"reserve over default burst", withRates("  sms: {per_second: 2, critical_reserve: 2}\n"), "critical_reserve: 2", "rate_limits.sms.critical_reserve", "less than burst (2)"},
		{"two keys", withRates("  destinations:\n    - {sms_sender: VIOGEN, smtp_relay: \"relay:25\", per_second: 1}\n"), "{sms_sender", "rate_limits.destinations[0]", "name exactly one of"},
		{"no key", withRates("  destinations:\n    - {per_second: 1}\n"), "{per_second", "rate_limits.destinations[0]", "name exactly one of"},
		{"bad sender", withRates("  destinations:\n    - {sms_sender: \"+34 600\", per_second: 1}\n"), "sms_sender", "rate_limits.destinations[0].sms_sender", "invalid sender"},
		{"relay without port", withRates("  destinations:\n    - {smtp_relay: relay.example.org, per_second: 1}\n"), "smtp_relay", "rate_limits.destinations[0].smtp_relay", "want host:port"},
		{"pager env lower case", withRates("  destinations:\n    - {pager_key_env: pd_x, per_second: 1}\n"), "pager_key_env: pd_x", "rate_limits.destinations[0].pager_key_env", "invalid environment variable name"},
		{"webhook with path", withRates("  destinations:\n    - {webhook_host: \"https://hooks.example.org/v1\", per_second: 1}\n"), "webhook_host", "rate_limits.destinations[0].webhook_host", "no path"},
		{"webhook http", withRates("  destinations:\n    - {webhook_host: \"http://hooks.example.org\", per_second: 1}\n"), "webhook_host", "rate_limits.destinations[0].webhook_host", "want https://host[:port]"},
		{"duplicate destination", withRates("  destinations:\n    - {webhook_host: \"https://Hooks.example.org\", per_second: 1}\n    - {webhook_host: \"https://hooks.example.org:443/\", per_second: 2}\n"),
			"{webhook_host: \"https://hooks.example.org:443", "rate_limits.destinations[1]", "duplicate rate limit destination id"},
	} {
		t.Run(tc.name, func(t *testing.T) { assertRefusal(t, tc, testOpts) })
	}
}

// Limits resolve: defaults per channel, the file's channel limit, a
// destination's own; burst and reserve defaults; 0 unlimited.
func TestRateLimitResolution(t *testing.T) {
	src := withRates(`  email: {per_second: 0.5}
  webhook: {per_second: 0}
  destinations:
    - {sms_sender: MG0123456789abcdef0123456789abcdef, per_second: 30, burst: 60, critical_reserve: 10}
    - {pager_key_env: PD_FAST, per_second: 3}
    - {webhook_host: "https://Hooks.Example.org", per_second: 7}
    - {smtp_relay: "Relay.example.org:587", per_second: 2, critical_reserve: 0}
`)
	cfg, err := Parse([]byte(src), "test.yaml", testOpts)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		channel, dest, env string
		want               Limit
		explicit           bool
	}{
		{"sms", "VIOGEN", "", Limit{10, 10, 5}, false}, // the default
		{"sms", "MG0123456789abcdef0123456789abcdef", "", Limit{30, 60, 10}, true},
		{"pager", "key-0011223344556677", "PD_OTHER", Limit{2, 4, 2}, false},
		{"pager", "key-0011223344556677", "PD_FAST", Limit{3, 3, 1}, true},
		{"email", "other:25", "", Limit{0.5, 1, 0}, true},
		{"email", "relay.example.org:587", "", Limit{2, 2, 0}, true},
		{"webhook", "https://hooks.example.org:443", "", Limit{7, 7, 3}, true},
		{"webhook", "https://other.example.org:443", "", Limit{}, true}, // 0: unlimited
		{"log", "default", "", Limit{}, false},
	} {
		got, explicit := cfg.RateLimit(tc.channel, tc.dest, tc.env)
		if got != tc.want || explicit != tc.explicit {
			t.Errorf("%s %s %s: %+v explicit %v, want %+v explicit %v", tc.channel, tc.dest, tc.env, got, explicit, tc.want, tc.explicit)
		}
	}
	if !strings.Contains(Reference(), "rate_limits.destinations[]") {
		t.Fatal("the reference lacks the rate limits")
	}
}
