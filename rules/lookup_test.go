package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func lookupHash(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

// lookupConfig has two agencies with tokens (one hash in upper case), a
// token configured for two agencies, and a desk phone shared by two.
func lookupConfig(t *testing.T) *Config {
	t.Helper()
	src := `fallback_agency: center
agencies:
  - id: center
    name: Coordination center
    kind: coordinating_center
    serves: {regions: [CM]}
    contacts:
      - {id: center-duty, role: duty, sms: "+34600000099"}
      - {id: center-shared, role: desk, sms: "+34600000077"}
    tokens_sha256: ["` + lookupHash("center-token") + `", "` + lookupHash("shared-token") + `"]
  - id: unit
    name: Police unit
    kind: responsible_unit
    serves: {provinces: ["13"]}
    contacts:
      - {id: unit-oncall, role: on_call, sms: "+34600000098"}
      - {id: unit-shared, role: desk, sms: "+34600000077"}
    tokens_sha256: ["` + strings.ToUpper(lookupHash("unit-token")) + `", "` + lookupHash("shared-token") + `"]
  - id: social
    name: Social services
    kind: social_services
    serves: {municipalities: ["13047"]}
    contacts:
      - {id: social-desk, role: duty, email: desk@example.org}
policies:
  - id: page
    steps:
      - notify:
          - {agency: responsible, role: on_call, via: [sms]}
rules:
  - id: rise
    when: 'event.type == "risk.assessed" && transition.rising'
    policy: page
    template: risk_rise
`
	cfg, err := Parse([]byte(src), "lookup.yaml", LoadOptions{})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return cfg
}

func TestLookupAgencyByToken(t *testing.T) {
	cfg := lookupConfig(t)
	for _, tc := range []struct {
		token, want string
	}{
		{"center-token", "center"},
		{"unit-token", "unit"}, // configured hash in upper-case hex
		{"", ""},
		{"nope", ""},
		{"center-token ", ""},
		{lookupHash("center-token"), ""}, // the hash is not the token
		{"shared-token", ""},             // ambiguous: fail closed
	} {
		a, ok := cfg.AgencyByToken(tc.token)
		got := ""
		if ok {
			got = a.ID
		}
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("AgencyByToken(%q) = %q, %v; want %q", tc.token, got, ok, tc.want)
		}
	}
	var nilCfg *Config
	if _, ok := nilCfg.AgencyByToken("center-token"); ok {
		t.Error("nil config matched a token")
	}
}

func TestLookupAgencyByTokenIgnoresMalformedHash(t *testing.T) {
	cfg := &Config{Agencies: []Agency{
		{ID: "a", TokensSHA256: []string{"zz", strings.Repeat("0", 200), ""}},
		{ID: "b", TokensSHA256: []string{lookupHash("b-token")}},
	}}
	if _, ok := cfg.AgencyByToken("x"); ok {
		t.Error("malformed hashes matched")
	}
	if a, ok := cfg.AgencyByToken("b-token"); !ok || a.ID != "b" {
		t.Errorf("b-token: %v %v", a, ok)
	}
}

func TestLookupContactByPhone(t *testing.T) {
	cfg := lookupConfig(t)
	a, c, ok := cfg.ContactByPhone("+34600000098")
	if !ok || a.ID != "unit" || c.ID != "unit-oncall" {
		t.Fatalf("ContactByPhone(unit) = %v %v %v", a, c, ok)
	}
	// The pointers are the config's own.
	if a != &cfg.Agencies[1] || c != &cfg.Agencies[1].Contacts[0] {
		t.Error("ContactByPhone returned copies")
	}
	if _, _, ok := cfg.ContactByPhone("+34600000001"); ok {
		t.Error("unknown number matched")
	}
	if _, _, ok := cfg.ContactByPhone(""); ok {
		t.Error("empty number matched a contact without sms")
	}
	a, c, ok = cfg.ContactByPhone("+34600000077")
	if !ok || a.ID != "center" || c.ID != "center-shared" {
		t.Errorf("shared number: first in config order, got %v %v %v", a, c, ok)
	}
	all := cfg.ContactsByPhone("+34600000077")
	if len(all) != 2 || all[0].Contact.ID != "center-shared" || all[1].Contact.ID != "unit-shared" || all[1].Agency.ID != "unit" {
		t.Errorf("ContactsByPhone(shared) = %+v", all)
	}
}
