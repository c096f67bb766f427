package dispatcher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/event"
	"github.com/viogen-alerts/dispatcher/rules"
)

// waitProcessed returns once the pipeline's consumer group has committed
// every event published so far on the case-event and internal topics:
// ingest commits a batch only after its intents are written and its
// escalations saved, so anything those events did is then visible. It is
// the "processed up to here" point of tests that check something did not
// happen.
func (p *pipeline) waitProcessed(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, closeClient := KafkaSecurity{}.Client(p.brokers, 0)
	defer closeClient()
	topics := []string{TopicCaseEvents, TopicInternal}
	end := map[string]map[int]int64{}
	req := map[string][]kafka.OffsetRequest{}
	parts := map[string][]int{}
	meta, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	for _, tp := range meta.Topics {
		for _, pt := range tp.Partitions {
			req[tp.Name] = append(req[tp.Name], kafka.LastOffsetOf(pt.ID))
			parts[tp.Name] = append(parts[tp.Name], pt.ID)
		}
	}
	lo, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	for tp, ps := range lo.Topics {
		end[tp] = map[int]int64{}
		for _, pt := range ps {
			end[tp][pt.Partition] = pt.LastOffset
		}
	}
	var lag string
	for {
		resp, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "pipeline", Topics: parts})
		if err == nil {
			lag = ""
			for tp, ps := range end {
				for part, want := range ps {
					got := int64(-1)
					for _, r := range resp.Topics[tp] {
						if r.Partition == part {
							got = r.CommittedOffset
						}
					}
					if want > 0 && got < want {
						lag += fmt.Sprintf(" %s/%d committed %d of %d", tp, part, got, want)
					}
				}
			}
			if lag == "" {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("events not processed:%s (%v)", lag, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ladderTimeout is the escalation.timeout event the timers publish for
// escalation x waiting on step and round.
func ladderTimeout(x *Escalation, step, round int) event.Event {
	ev := internalEvent(fmt.Sprintf("timer:esc:%s:%d:%d", x.ID, step, round), event.EscalationTimeout, x.CaseRef, x.Alert.Route, x.DueAt)
	ev.Timer = &event.Timer{DueAt: x.DueAt, EscalationID: x.ID, Step: step, Round: round}
	return ev
}

// openExtremo decides a rise to extremo synchronously and returns its open
// escalation (risk-extremo: step 0 repeated once, then steps 1 and 2).
func openExtremo(t *testing.T, e *mergeEnv, caseRef string) *Escalation {
	t.Helper()
	e.run(t, ev(caseRef+"-o", event.CaseOpened, caseRef, 1, event.Medio), ev(caseRef+"-x", event.RiskAssessed, caseRef, 2, event.Extremo))
	x, err := e.ladder.Store.Get(context.Background(), caseRef, rules.AlertID(caseRef+"-x", "risk-rises-to-extremo"))
	if err != nil || x.State != EscOpen || x.Step != 0 || x.Round != 0 {
		t.Fatalf("escalation %+v (%v), want open at step 0", x, err)
	}
	return x
}

// stepIntents are the intents of alert id sent for step and round.
func stepIntents(ins []Intent, id string, step, round int) []Intent {
	var out []Intent
	for _, in := range ins {
		if in.AlertID == id && in.Kind == KindAlert && in.PagerAction == "" && in.Step == step && in.Round == round {
			out = append(out, in)
		}
	}
	return out
}

// Issue 13: an escalation.timeout delivered for an acknowledged escalation
// (a timer fired just before the acknowledgement was applied) sends
// nothing. The event goes straight to the decide stage, whose return means
// processed; the intents topic is then read to its end. This fails when
// Ladder.Timeout loses its "State != open" guard.
func TestLadderTimeoutAfterAckSendsNothing(t *testing.T) {
	e := newMergeEnv(t)
	x := openExtremo(t, e, "C-LG1")
	e.ack(t, x.CaseRef, x.ID, time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC))
	before := len(e.intents(t))
	e.run(t, ladderTimeout(x, 0, 0))
	if err := e.ladder.Timeout(context.Background(), ladderTimeout(x, 0, 0), time.Now()); err != nil {
		t.Fatal(err)
	}
	all := e.intents(t)
	for _, in := range all[before:] {
		t.Errorf("timeout of an acknowledged escalation sent %+v", in)
	}
	if got, _ := e.ladder.Store.Get(context.Background(), x.CaseRef, x.ID); got == nil || got.State != EscAcked || got.Step != 0 || got.Round != 0 {
		t.Fatalf("escalation after the timeout: %+v", got)
	}
}

// Issue 13: the same escalation.timeout replayed (through the decide stage
// as a redelivered event, and called again) sends exactly one set of the
// next round's intents and moves the ladder once. This fails when the
// timeout's step/round check is removed.
func TestLadderReplayedTimeoutSendsOnce(t *testing.T) {
	e := newMergeEnv(t)
	x := openExtremo(t, e, "C-LG2")
	step0 := stepIntents(e.intents(t), x.ID, 0, 0)
	if len(step0) == 0 {
		t.Fatal("no step 0 intents")
	}
	to := ladderTimeout(x, 0, 0)
	e.run(t, to)
	e.run(t, to) // redelivered: a duplicate event
	if err := e.ladder.Timeout(context.Background(), to, time.Now()); err != nil {
		t.Fatal(err)
	}
	all := e.intents(t)
	if got := stepIntents(all, x.ID, 0, 1); len(got) != len(step0) {
		t.Errorf("%d intents for step 0 round 1, want one set of %d", len(got), len(step0))
	}
	for _, in := range all {
		if in.AlertID == x.ID && in.Step > 0 {
			t.Errorf("a replayed timeout climbed to step %d: %s", in.Step, in.ContactID)
		}
	}
	if got, _ := e.ladder.Store.Get(context.Background(), x.CaseRef, x.ID); got == nil || got.Step != 0 || got.Round != 1 || got.State != EscOpen {
		t.Fatalf("escalation after a replayed timeout: %+v, want step 0 round 1", got)
	}
}
