package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/channels"
)

// throttled is a send its destination's rate limit held back. It is not
// an attempt: the job goes back to the queue, due after wait, and the
// worker moves on, so one busy destination never holds up the others.
type throttled struct{ wait time.Duration }

func (t throttled) Error() string { return fmt.Sprintf("rate limited: try again in %v", t.wait) }

func isThrottled(err error) (time.Duration, bool) {
	var t throttled
	if errors.As(err, &t) {
		return t.wait, true
	}
	return 0, false
}

// throttle takes a token of m's destination, or says when to try again.
// The limit is read from the configuration in use at each send.
func (d *Deliverer) throttle(ctx context.Context, in Intent, ch string, c channels.Channel, m channels.Message) error {
	if d.limits == nil {
		return nil
	}
	dest := Destination{Channel: ch, Name: channels.DestinationOf(c, m)}
	if dest.Name == "" {
		dest.Name = "default" // a channel without destinations: one budget
	}
	rcfg, _ := d.config()
	pagerEnv := ""
	if _, ct, ok := rcfg.Contact(in.ContactID); ok {
		pagerEnv = ct.PagerKeyEnv
	}
	l, explicit := rcfg.RateLimit(dest.Channel, dest.Name, pagerEnv)
	l = d.limits.Limit(dest.Channel, l, explicit)
	if wait := d.limits.Take(ctx, dest, l, in.Critical); wait > 0 {
		d.log.WithFields(logrus.Fields{"intent_id": in.ID, "alert_id": in.AlertID, "channel": ch,
			"destination": dest.Name, "wait": wait.String()}).Debug("rate limited: queued for its retry slot")
		return throttled{wait: wait}
	}
	return nil
}
