package pager

import (
	"errors"
	"testing"
)

// A synthetic v3 incident.acknowledged body (ids and names invented).
const ackBody = `{"event":{"id":"01EVT000SYNTH","event_type":"incident.acknowledged","resource_type":"incident",
"occurred_at":"2026-03-10T09:05:00.000Z","agent":{"html_url":"https://example.pagerduty.com/users/PUSER01",
"id":"PUSER01","self":"https://api.pagerduty.com/users/PUSER01","summary":"Synthetic Oncall","type":"user_reference"},
"client":null,"data":{"id":"PINC001","type":"incident","number":7,"status":"acknowledged",
"incident_key":"alert-0001","title":"ALERTA exp C-0001"}}}`

func TestVerifyWebhook(t *testing.T) {
	body := []byte(ackBody)
	good := SignWebhook("whsec-synthetic-1", body)
	other := SignWebhook("whsec-synthetic-old", body)
	for _, c := range []struct {
		name, header string
		ok           bool
	}{
		{"one good signature", good, true},
		{"rotation: old then new", other + "," + good, true},
		{"rotation with spaces", other + ", " + good, true},
		{"only another secret's", other, false},
		{"none", "", false},
		{"no v1 prefix", good[3:], false},
		{"not hex", "v1=zz", false},
		{"truncated", good[:20], false},
	} {
		err := VerifyWebhook("whsec-synthetic-1", c.header, body)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
		if err != nil && !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v is not ErrBadSignature", c.name, err)
		}
	}
	if VerifyWebhook("whsec-synthetic-1", good, append(body, ' ')) == nil {
		t.Error("a changed body verified")
	}
	if VerifyWebhook("", SignWebhook("", body), body) == nil {
		t.Error("an empty secret verified")
	}
}

func TestParseWebhook(t *testing.T) {
	ev, err := ParseWebhook([]byte(ackBody))
	if err != nil {
		t.Fatal(err)
	}
	if ev.EventType != EventIncidentAcknowledged || ev.IncidentKey != "alert-0001" || ev.IncidentID != "PINC001" ||
		ev.AgentID != "PUSER01" || ev.ID != "01EVT000SYNTH" || ev.ResourceType != "incident" {
		t.Fatalf("%+v", ev)
	}
	for _, bad := range []string{"", "{", "[]", `{"event":{}}`, `{"event":"x"}`} {
		if _, err := ParseWebhook([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
