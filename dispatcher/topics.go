package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"
)

// TopicSpec is one topic EnsureTopics creates when it is missing.
type TopicSpec struct {
	Name              string
	Partitions        int // default 6
	ReplicationFactor int // default 1
}

// AllTopics lists the dispatcher's topics with the given partitions and
// replication factor (0 = the defaults).
func AllTopics(partitions, replication int) []TopicSpec {
	names := []string{TopicCaseEvents, TopicInternal, TopicDLQ, TopicIntents, TopicResults}
	out := make([]TopicSpec, len(names))
	for i, n := range names {
		out[i] = TopicSpec{Name: n, Partitions: partitions, ReplicationFactor: replication}
	}
	return out
}

// EnsureTopics creates the topics that do not exist yet; a topic that
// already exists (whatever its settings) counts as success. It is safe to
// call at any time, from any number of instances.
func EnsureTopics(ctx context.Context, brokers []string, topics []TopicSpec) error {
	_, err := ensureTopics(ctx, brokers, topics)
	return err
}

// ensureTopics is EnsureTopics that also reports which topics it created.
func (s KafkaSecurity) ensureTopics(ctx context.Context, brokers []string, topics []TopicSpec) ([]string, error) {
	if len(topics) == 0 {
		return nil, nil
	}
	if len(brokers) == 0 {
		return nil, errors.New("ensure topics: no brokers")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		p, r := t.Partitions, t.ReplicationFactor
		if p <= 0 {
			p = 6
		}
		if r <= 0 {
			r = 1
		}
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t.Name, NumPartitions: p, ReplicationFactor: r})
	}
	c, closeClient := s.Client(brokers, 0)
	defer closeClient()
	resp, err := c.CreateTopics(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("create topics: %w", err)
	}
	var created []string
	var errs []error
	for name, terr := range resp.Errors {
		switch {
		case terr == nil:
			created = append(created, name)
		case errors.Is(terr, kafka.TopicAlreadyExists):
		default:
			errs = append(errs, fmt.Errorf("create topic %s: %w", name, terr))
		}
	}
	sort.Strings(created)
	return created, errors.Join(errs...)
}

// isUnknownTopic reports a missing topic or partition anywhere in err.
func isUnknownTopic(err error) bool { return kafkaErrIs(err, kafka.UnknownTopicOrPartition) }

// kafkaErrIs is errors.Is that also looks into the per-message errors of
// a kafka.WriteErrors (which does not unwrap).
func kafkaErrIs(err error, target error) bool {
	if errors.Is(err, target) {
		return true
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil && errors.Is(e, target) {
				return true
			}
		}
	}
	return false
}

// createForRejoin creates the missing topics of specs and, when it created
// any, asks the consumer to rejoin its group (non-blocking): a member that
// joined while they were missing keeps an empty assignment otherwise.
func (s KafkaSecurity) createForRejoin(ctx context.Context, brokers []string, specs []TopicSpec, timeout time.Duration,
	log logrus.FieldLogger, rejoin chan<- struct{}) {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	created, err := s.ensureTopics(tctx, brokers, specs)
	if err != nil && ctx.Err() == nil {
		log.WithError(err).Warn("creating missing topics failed")
	}
	if len(created) > 0 {
		log.WithField("topics", created).Warn("created missing topics")
		select {
		case rejoin <- struct{}{}:
		default:
		}
	}
}
