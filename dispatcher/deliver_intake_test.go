package dispatcher

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

// nopCommits is a Source whose commits succeed and do nothing.
type nopCommits struct{ Source }

func (nopCommits) CommitMessages(context.Context, ...kafka.Message) error { return nil }

// A batch larger than its lane's room: the lane takes what fits, critical
// jobs first; the rest is queued due now (critical ones ahead) in the
// same write: one ZADD per job, none leased and at once given back.
func TestIntakeQueuesWhatTheLaneCannotTakeDueNow(t *testing.T) {
	e := newDeliverEnv(t)
	d := newDeliverer(t, e.decideEnv, e.prov) // not running: no worker empties the lane
	l := d.lanes["sms"]
	room := l.free()
	var batch []kafka.Message
	critical := map[string]bool{}
	for i := range room + 3 {
		in := testIntent(fmt.Sprint("intake-room-", i))
		in.Critical = i >= room-1 // the last 4: one would fit anyway, 3 only if taken first
		critical[in.ID] = in.Critical
		batch = append(batch, intentMsg(t, in))
	}
	zadds := &cmdCounter{match: func(c redis.Cmder) bool { return strings.EqualFold(c.Name(), "zadd") }}
	rescores := &cmdCounter{match: func(c redis.Cmder) bool {
		return strings.EqualFold(c.Name(), "zadd") && strings.EqualFold(fmt.Sprint(c.Args()[2]), "xx")
	}}
	d.queue.rdb.AddHook(zadds)
	d.queue.rdb.AddHook(rescores)
	now := d.now()
	if !d.intake(context.Background(), nopCommits{}, batch) {
		t.Fatal("intake stopped")
	}
	if n := zadds.n.Load(); n != int64(room+3) || rescores.n.Load() != 0 {
		t.Errorf("%d ZADDs (%d of them re-scoring) for %d jobs, want one each and none re-scoring", n, rescores.n.Load(), room+3)
	}
	if len(l.crit) != 4 || len(l.norm) != room-4 {
		t.Fatalf("lane holds %d critical and %d other jobs, want 4 and %d", len(l.crit), len(l.norm), room-4)
	}
	inLane := map[string]bool{}
	for _, q := range append(append([]queued{}, l.crit...), l.norm...) {
		inLane[q.job.Intent.ID] = true
	}
	jobs, _ := d.jobsOf(batch)
	for _, q := range jobs {
		score, err := d.queue.rdb.ZScore(context.Background(), d.queue.at(q), q.raw).Result()
		if err != nil {
			t.Fatalf("job %s not queued: %v", q.job.Intent.ID, err)
		}
		leased := score > ms(now.Add(d.cfg.Lease/2)) // due ones: now, or a day ahead when critical
		if leased != inLane[q.job.Intent.ID] {
			t.Errorf("job %s (critical %v): in the lane %v, leased %v (score %v, now %v)",
				q.job.Intent.ID, critical[q.job.Intent.ID], inLane[q.job.Intent.ID], leased, score, ms(now))
		}
	}
}
