package main

import (
	"strings"
	"testing"
	"time"
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
