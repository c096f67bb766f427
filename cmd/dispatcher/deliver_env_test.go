package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/dispatcher"
)

func TestSMSReceiptTimeoutSetting(t *testing.T) {
	for _, c := range []struct {
		val  string
		want time.Duration
		bad  bool
	}{
		{"", 5 * time.Minute, false},
		{"0", 0, false},
		{"90s", 90 * time.Second, false},
		{"-1m", 0, true},
		{"soon", 0, true},
	} {
		getenv := func(k string) string {
			if k == "SMS_RECEIPT_TIMEOUT" {
				return c.val
			}
			return ""
		}
		cfg, err := deliverConfig(getenv, nil)
		if c.bad {
			if err == nil || !strings.Contains(err.Error(), "SMS_RECEIPT_TIMEOUT") {
				t.Errorf("%q: error %v, want one naming SMS_RECEIPT_TIMEOUT", c.val, err)
			}
			continue
		}
		if err != nil || cfg.ReceiptTimeout != c.want {
			t.Errorf("%q: %v %v, want %v", c.val, cfg.ReceiptTimeout, err, c.want)
		}
	}
}

// DELIVER_WORKERS and DELIVER_EMAIL_WORKERS are read as whole numbers;
// anything else is refused by name. The lanes they size are checked in
// the dispatcher package (TestLaneWorkers).
func TestDeliverWorkerSettings(t *testing.T) {
	for _, c := range []struct {
		workers, email string
		want, wantMail int
		bad            string
	}{
		{"", "", 0, 0, ""},
		{"64", "", 64, 0, ""},
		{"", "3", 0, 3, ""},
		{"0", "", 0, 0, "DELIVER_WORKERS"},
		{"", "many", 0, 0, "DELIVER_EMAIL_WORKERS"},
		{"", "1001", 0, 0, "DELIVER_EMAIL_WORKERS"},
	} {
		getenv := func(k string) string {
			switch k {
			case "DELIVER_WORKERS":
				return c.workers
			case "DELIVER_EMAIL_WORKERS":
				return c.email
			}
			return ""
		}
		cfg, err := deliverConfig(getenv, nil)
		if c.bad != "" {
			if err == nil || !strings.Contains(err.Error(), c.bad+"=") {
				t.Errorf("%q/%q: error %v, want one naming %s", c.workers, c.email, err, c.bad)
			}
			continue
		}
		if err != nil || cfg.Workers != c.want || cfg.EmailWorkers != c.wantMail {
			t.Errorf("%q/%q: %d/%d %v, want %d/%d", c.workers, c.email, cfg.Workers, cfg.EmailWorkers, err, c.want, c.wantMail)
		}
	}
}

// Each HTTP channel is built with a connection cap no lower than the sends
// its lane runs at once (see buildChannels).
func TestChannelsSizedToTheirLanes(t *testing.T) {
	getenv := func(k string) string {
		switch k {
		case "WEBHOOK_SECRET":
			return "test-secret-0123456789"
		case "TWILIO_ACCOUNT_SID":
			return "AC00000000000000000000000000000000"
		case "TWILIO_AUTH_TOKEN":
			return "testtoken0123456789"
		case "TWILIO_FROM":
			return "+34600000999"
		}
		return ""
	}
	asked := map[string]bool{}
	dcfg := dispatcher.DeliverConfig{Workers: 100}
	_, err := buildChannels(getenv, logrus.New(), false, func(ch string) int {
		asked[ch] = true
		return dcfg.SendsAtOnce(ch)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"sms", "pager", "webhook"} {
		if !asked[ch] {
			t.Errorf("the %s channel was built without its lane's size", ch)
		}
	}
	if got := dcfg.SendsAtOnce("webhook"); got != 100 {
		t.Errorf("webhook lane %d, want 100", got)
	}
}

// The receipt check follows the status callbacks: off without them (no
// receipt could arrive); with them and SMS_RECEIPT_TIMEOUT=0, a sweep
// still finishes the callbacks that failed half-way.
func TestSettleReceipts(t *testing.T) {
	for _, c := range []struct {
		timeout        time.Duration
		callbacks      bool
		wantT, wantSwp time.Duration
		logs           bool
	}{
		{5 * time.Minute, true, 5 * time.Minute, 0, false},
		{5 * time.Minute, false, 0, 0, true},
		{0, true, 0, defaultReceiptTimeout, false},
		{0, false, 0, 0, false},
	} {
		cfg := dispatcher.DeliverConfig{ReceiptTimeout: c.timeout}
		msg := settleReceipts(&cfg, c.callbacks)
		if cfg.ReceiptTimeout != c.wantT || cfg.ReceiptSweep != c.wantSwp || (msg != "") != c.logs {
			t.Errorf("%v, callbacks %v: timeout %v sweep %v %q", c.timeout, c.callbacks, cfg.ReceiptTimeout, cfg.ReceiptSweep, msg)
		}
	}
}

// DELIVER_HANDOFF is on unless set to off (or false, as the other
// switches take); anything else is refused by name. (The wiring is exercised by internal/e2e's hand-off kill test.)
func TestDeliverHandoffSetting(t *testing.T) {
	for _, c := range []struct {
		val     string
		wantOff bool
		bad     bool
	}{{"", false, false}, {"on", false, false}, {"off", true, false}, {"OFF ", true, false}, {"false", true, false},
		{"true", false, false}, {"0", true, false}, {"no", false, true}, {"of", false, true}} {
		getenv := func(k string) string {
			if k == "DELIVER_HANDOFF" {
				return c.val
			}
			return ""
		}
		cfg, err := deliverConfig(getenv, nil)
		if c.bad {
			if err == nil || !strings.Contains(err.Error(), "DELIVER_HANDOFF") {
				t.Errorf("%q: error %v, want one naming DELIVER_HANDOFF", c.val, err)
			}
			continue
		}
		if err != nil || cfg.NoHandoff != c.wantOff {
			t.Errorf("%q: off %v, %v; want off %v", c.val, cfg.NoHandoff, err, c.wantOff)
		}
	}
}
