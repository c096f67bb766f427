package dispatcher

import "testing"

// Every lane but e-mail runs Workers sends at once (128 by default); the
// e-mail lane runs EmailWorkers, by default 8 or Workers if smaller.
func TestLaneWorkers(t *testing.T) {
	for _, c := range []struct {
		cfg            DeliverConfig
		webhook, email int
	}{
		{DeliverConfig{}, 128, 8},
		{DeliverConfig{Workers: 2}, 2, 2},
		{DeliverConfig{Workers: 300}, 300, 8},
		{DeliverConfig{Workers: 16, EmailWorkers: 20}, 16, 20},
	} {
		cfg := c.cfg
		cfg.defaults()
		if got := cfg.laneWorkers("webhook"); got != c.webhook {
			t.Errorf("%+v: webhook lane %d, want %d", c.cfg, got, c.webhook)
		}
		if got := cfg.laneWorkers("sms"); got != c.webhook {
			t.Errorf("%+v: sms lane %d, want %d", c.cfg, got, c.webhook)
		}
		if got := cfg.laneWorkers("email"); got != c.email {
			t.Errorf("%+v: e-mail lane %d, want %d", c.cfg, got, c.email)
		}
	}
}
