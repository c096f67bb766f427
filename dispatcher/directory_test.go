package dispatcher

import (
	"strings"
	"testing"
)

// Addresses and secrets come from the config and the environment at send
// time; errors name the contact and the variable, never a value.
func TestConfigDirectory(t *testing.T) {
	cfg := exampleEngine(t).Config()
	env := map[string]string{"PD_GC_CIUDAD_REAL": "pd-key-0000000000000000000000000", "WEBHOOK_SECRET_PL_PALMA": "x9q-tiny"}
	d := ConfigDirectory{Cfg: cfg, Secret: func(k string) string { return env[k] }}
	for _, tc := range []struct{ contact, channel, want, err string }{
		{"gc-cr-guardia", "sms", "+34600000011", ""},
		{"gc-cr-guardia", "email", "guardia.gc-cr@example.org", ""},
		{"gc-cr-guardia", "pager", "pd-key-0000000000000000000000000", ""},
		{"pl-herencia-guardia", "pager", "", "PD_PL_HERENCIA is not set"},
		{"imcm-coordinacion", "pager", "", "has no pager address"},
		{"no-such-contact", "sms", "", "no longer in the configuration"},
	} {
		got, err := d.Address(tc.contact, tc.channel)
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s/%s: %q, %v; want %q, %q", tc.contact, tc.channel, got, err, tc.want, tc.err)
		}
	}
	if s, err := d.SigningSecret("gc-cr-guardia"); s != nil || err != nil {
		t.Errorf("a contact without webhook_secret_env signs with the default: %q %v", s, err)
	}
	_, err := d.SigningSecret("pl-palma-webhook")
	if err == nil || strings.Contains(err.Error(), "x9q-tiny") || !strings.Contains(err.Error(), "WEBHOOK_SECRET_PL_PALMA") {
		t.Errorf("a too-short secret must be refused by name, not value: %v", err)
	}
	env["WEBHOOK_SECRET_PL_PALMA"] = "pl-palma-secret-0123456789"
	if s, err := d.SigningSecret("pl-palma-webhook"); err != nil || string(s) != env["WEBHOOK_SECRET_PL_PALMA"] {
		t.Errorf("secret %q %v", s, err)
	}
}
