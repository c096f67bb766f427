package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/internal/providertest"
)

// reloadCalvia is a local police for 07011 (Calvià), a municipality of
// the islands that the example configuration has no local police for.
const reloadCalvia = `  - id: pl-calvia
    name: Policía Local de Calvià
    kind: local_police
    serves: {municipalities: ["07011"]}
    contacts:
      - {id: pl-calvia-guardia, role: on_call, sms: "+34600000071", pager_key_env: PD_PL_CALVIA}
      - {id: pl-calvia-reten, role: duty, sms: "+34600000072", email: reten.pl-calvia@example.org}
      - {id: pl-calvia-jefatura, role: supervisor, sms: "+34600000073", email: jefatura.pl-calvia@example.org}

`

// reloadEvent is an extremo risk assessment of a new case in Calvià.
func reloadEvent(caseID string) string {
	return fmt.Sprintf(`{"id":"%s-1","type":"risk.assessed","case_id":"%s","occurred_at":"%s","source":"viogen",`+
		`"jurisdiction":{"municipality":"07011","province":"07","region":"IB"},"responsible_unit":"pn-illes-balears",`+
		`"version":1,"risk":{"level":"extremo","previous":"alto"}}`, strings.ToLower(caseID), caseID, time.Now().Format(time.RFC3339))
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%s changed: %q not found", exampleConfig, old)
	}
	return strings.Replace(s, old, new, 1)
}

// TestReload runs `dispatcher run` (both stages), reloads its
// configuration as SIGHUP does, and checks that: a municipality's new
// local police is reached by events after the reload and not before; an
// escalation opened before the reload climbs the steps of its own policy
// snapshot though the reload removed its last step; bad files (a YAML
// error, an unknown template) keep the running configuration, log their
// errors with file:line and count as failed reloads.
func TestReload(t *testing.T) {
	st := newPVStack(t, "127.0.0.1:0")
	defer trustWebhookCert(st.pool)()
	st.env["PD_PL_CALVIA"] = "routing-key-pd_pl_calvia"

	// Configuration A: the example with a risk-extremo ladder of 2 s steps.
	raw, err := os.ReadFile(st.config)
	if err != nil {
		t.Fatal(err)
	}
	cfgA := replaceOnce(t, string(raw), "        ack_within: 10m\n        repeat: 1\n", "        ack_within: 2s\n")
	cfgA = replaceOnce(t, cfgA, "        ack_within: 15m\n", "        ack_within: 2s\n")
	// Configuration B: Calvià's local police added, risk-extremo's last
	// step (the SES on call) removed.
	cfgB := replaceOnce(t, cfgA, "  # Island council", reloadCalvia+"  # Island council")
	cfgB = replaceOnce(t, cfgB, "      - notify:\n          - {agency: ses-viogen, role: on_call, via: [pager, sms]}\n        ack_within: 30m\n", "")
	write := func(cfg string) {
		t.Helper()
		if err := os.WriteFile(st.config, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(cfgA)

	logger := providertest.CaptureLog()
	s := runSettings(t, st.getenv(), "--stages", "decide,deliver")
	reload := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	sv := &served{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan *dispatcher.Service, 1)
	go func() {
		sv.done <- serveReload(ctx, s, st.getenv(), logger.Logger, false, func(svc *dispatcher.Service) { ready <- svc }, reload)
	}()
	select {
	case sv.svc = <-ready:
	case err := <-sv.done:
		t.Fatalf("serve stopped: %v\n%s", err, tail(logger.String()))
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve not ready")
	}
	defer sv.stop(t)
	admin := "http://" + sv.svc.HTTPAddr()

	dir := t.TempDir()
	n := 0
	publish := func(caseID string) {
		t.Helper()
		n++
		f := filepath.Join(dir, fmt.Sprintf("ev%d.jsonl", n))
		if err := os.WriteFile(f, []byte(reloadEvent(caseID)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, out, errOut := run(t, "", envMap(nil), "publish", "--brokers", strings.Join(st.brokers, ","), f); code != 0 {
			t.Fatalf("publish: %d %s %s", code, out, errOut)
		}
	}
	// intentsFor returns the intents of a case, waiting until one matches.
	waitIntent := func(caseID, what string, match func(dispatcher.Intent) bool) []dispatcher.Intent {
		t.Helper()
		var got []dispatcher.Intent
		waitFor(t, 30*time.Second, what, func() bool {
			got = got[:0]
			found := false
			for _, in := range intentsOn(t, st.brokers) {
				if in.CaseRef == caseID {
					got = append(got, in)
					found = found || match(in)
				}
			}
			return found
		})
		return got
	}
	sentTo := func(contactID string) bool {
		ids := map[string]bool{}
		for _, in := range intentsOn(t, st.brokers) {
			if in.ContactID == contactID {
				ids[in.ID] = true
			}
		}
		for _, r := range resultsOn(t, st.brokers) {
			if ids[r.IntentID] && r.Outcome == dispatcher.OutcomeSent {
				return true
			}
		}
		return false
	}
	reloads := func() map[string]float64 { return series(scrape(t, admin), "dispatcher_config_reload_total") }
	signal := func(wantSuccess, wantFailure float64) {
		t.Helper()
		reload <- struct{}{}
		deadline := time.Now().Add(10 * time.Second)
		waitFor(t, 11*time.Second, fmt.Sprintf("reloads success=%v failure=%v", wantSuccess, wantFailure), func() bool {
			r := reloads()
			if time.Now().After(deadline) {
				t.Logf("reloads: %v\n%s", r, tail(logger.String()))
			}
			return r["result=success"] == wantSuccess && r["result=failure"] == wantFailure
		})
	}

	// Before the reload: Calvià has no local police.
	publish("C-RL-1")
	before := waitIntent("C-RL-1", "the first alert of C-RL-1", func(in dispatcher.Intent) bool { return in.Step == 0 })
	for _, in := range before {
		// (pl-palma-webhook is a fixed target writeTestConfig adds.)
		if strings.HasPrefix(in.AgencyID, "pl-") && in.ContactID != "pl-palma-webhook" {
			t.Fatalf("before the reload C-RL-1 reached a local police: %+v", in)
		}
	}
	hashA := series(scrape(t, admin), "dispatcher_config_info")

	// Reload with configuration B.
	write(cfgB)
	signal(1, 0)
	if hashB := series(scrape(t, admin), "dispatcher_config_info"); len(hashB) != 1 || fmt.Sprint(hashB) == fmt.Sprint(hashA) {
		t.Errorf("config info after the reload: %v (before %v)", hashB, hashA)
	}
	publish("C-RL-2")
	waitIntent("C-RL-2", "C-RL-2 to reach Calvià's local police", func(in dispatcher.Intent) bool {
		return in.Step == 0 && in.ContactID == "pl-calvia-guardia"
	})
	waitFor(t, 30*time.Second, "an SMS or page to Calvià's on call", func() bool { return sentTo("pl-calvia-guardia") })

	// The escalation opened before the reload keeps its three steps: the
	// step removed from the configuration (the SES on call) is still sent.
	waitIntent("C-RL-1", "C-RL-1's escalation to climb to its snapshot's step 2", func(in dispatcher.Intent) bool {
		return in.Step == 2 && in.ContactID == "ses-viogen-guardia"
	})

	// Bad files keep configuration B.
	write(cfgB + "\nagencies: [\n")
	signal(1, 1)
	yamlLine := regexp.MustCompile(regexp.QuoteMeta(st.config) + `:\d+`)
	if !yamlLine.MatchString(logger.String()) {
		t.Errorf("no error with file:line logged for the YAML error:\n%s", tail(logger.String()))
	}
	logged := strings.Count(logger.String(), "configuration reload failed")
	write(strings.Replace(cfgB, "template: risk_rise", "template: no_such_template", 1))
	signal(1, 2)
	out := logger.String()
	if strings.Count(out, "configuration reload failed") <= logged {
		t.Errorf("no error logged for the unknown template")
	}
	tmplLine := regexp.MustCompile(regexp.QuoteMeta(st.config) + `:\d+:\d+: [^\n]*no_such_template`)
	if !tmplLine.MatchString(out) {
		t.Errorf("the unknown template's error is not logged with file:line:\n%s", tail(out))
	}
	publish("C-RL-3")
	waitIntent("C-RL-3", "C-RL-3 to reach Calvià's local police after failed reloads", func(in dispatcher.Intent) bool {
		return in.Step == 0 && in.ContactID == "pl-calvia-guardia"
	})
}
