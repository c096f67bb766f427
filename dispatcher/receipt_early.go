package dispatcher

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/channels/sms"
)

// Twilio can post a final status callback before it answers the request
// that sent the message (a carrier rejecting a number at once), and our
// sid → intent mapping is written only after that answer, with the
// sent-marker. Such a callback is kept under sms:<sid>:early (status →
// error code) for earlyReceiptTTL, and the send path applies it once the
// mapping is written (a re-run writes it again): an SMS that failed at
// once still falls back or tells the coordinating center, instead of
// waiting for the receipt check (or, not critical, being marked
// unconfirmed only). Either order is covered: the callback parks its
// status before it looks the sid up again, and the send path writes the
// mapping before it reads the parked statuses, so at least one of the two
// applies it (both may: a receipt is applied once). A callback that parks
// after the send path looked and then fails (500) is applied by the SMS's
// receipt check.

// earlyReceiptTTL is how long a callback for a sid not recorded yet is
// kept: the send path records the sid within its lease (30 s by default).
const earlyReceiptTTL = time.Hour

func earlyReceiptKey(sid string) string { return smsKey(sid) + ":early" }

// parkEarlyReceipt keeps a final status callback for a sid not recorded yet.
func (s *deliveryState) parkEarlyReceipt(ctx context.Context, cb sms.StatusCallback) error {
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, earlyReceiptKey(cb.MessageSid), cb.MessageStatus, cb.ErrorCode)
	pipe.PExpire(ctx, earlyReceiptKey(cb.MessageSid), earlyReceiptTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("keep an early sms status: %w", err)
	}
	return nil
}

// earlyReceipts returns the callbacks kept for sid, if any.
func (s *deliveryState) earlyReceipts(ctx context.Context, sid string) ([]sms.StatusCallback, error) {
	m, err := s.rdb.HGetAll(ctx, earlyReceiptKey(sid)).Result()
	if err != nil {
		return nil, fmt.Errorf("read early sms statuses: %w", err)
	}
	var out []sms.StatusCallback
	for status, code := range m {
		out = append(out, sms.StatusCallback{MessageSid: sid, MessageStatus: status, ErrorCode: code})
	}
	return out, nil
}

// applyEarly applies the callbacks kept for the SMS of in whose send r
// records. An error leaves them kept: the job runs again, finds its
// sent-marker and calls this again. They are applied to in, not to what
// the sid mapping names: the mapping may be what failed to be written.
func (d *Deliverer) applyEarly(ctx context.Context, in Intent, r Result) error {
	if r.Channel != sms.Name || r.ProviderID == "" {
		return nil
	}
	cbs, err := d.state.earlyReceipts(ctx, r.ProviderID)
	if err != nil || len(cbs) == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, receiptTimeout)
	defer cancel()
	for _, cb := range cbs {
		if _, err := d.receiptFor(ctx, in, cb); err != nil {
			return fmt.Errorf("apply an early sms status: %w", err)
		}
	}
	// Applied receipts are recorded (beginReceipt): if this fails, a later
	// call finds them done.
	_ = d.state.rdb.Del(ctx, earlyReceiptKey(r.ProviderID)).Err()
	return nil
}

// parkEarly keeps a callback whose sid is not recorded, then looks the sid
// up again: a send recorded meanwhile may not have seen the parked status.
func (d *Deliverer) parkEarly(ctx context.Context, cb sms.StatusCallback) (*Intent, error) {
	if err := d.state.parkEarlyReceipt(ctx, cb); err != nil {
		return nil, err
	}
	in, err := d.state.intentBySID(ctx, cb.MessageSid)
	if err == nil && in == nil {
		d.log.WithFields(logrus.Fields{"sid": cb.MessageSid, "status": cb.MessageStatus}).
			Warn("status callback for an unknown sms sid: kept for an hour, applied if its send is recorded")
	}
	return in, err
}
