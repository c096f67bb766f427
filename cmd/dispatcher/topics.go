package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/dispatcher"
)

const topicsHelp = `Usage: dispatcher topics [flags]

Create the dispatcher's topics that do not exist yet, then list them with
their partitions, replication factor and retention. A topic that exists is
left as it is (its partitions and retention are not changed). Run it once
before the first start, with the partitions and replication the cluster
needs; it is safe to run again.

Retention (retention.ms, set on creation): --retention for the event,
internal and intent topics; --dlq-retention for case-events.dlq;
--audit-retention for notifications.results, the audit trail: give it the
legal retention period unless the records are sunk to an append-only store
(then 30 days is enough). 0 leaves the broker's default; a negative value
keeps records forever (retention.ms=-1).

Kafka TLS and SASL are read from the environment as for 'run'.`

// topicsOptions are the flags of `dispatcher topics`.
type topicsOptions struct {
	brokers        []string
	upstream       string // the case-events topic's name
	partitions     int
	replication    int
	retention      time.Duration
	dlqRetention   time.Duration
	auditRetention time.Duration
	timeout        time.Duration
}

func cmdTopics(ctx context.Context, args []string, io stdio, getenv env) int {
	fs := newFlagSet("topics", topicsHelp+kafkaEnvHelp, io.err)
	var o topicsOptions
	brokers := fs.String("brokers", envOr(getenv, "KAFKA_BROKERS", "127.0.0.1:9092"), "Kafka brokers, comma-separated (env KAFKA_BROKERS)")
	fs.StringVar(&o.upstream, "topic", envOr(getenv, "KAFKA_TOPIC", dispatcher.TopicCaseEvents), "topic of upstream case events (env KAFKA_TOPIC)")
	fs.IntVar(&o.partitions, "partitions", envInt(getenv, "KAFKA_PARTITIONS", 6), "partitions of each created topic (env KAFKA_PARTITIONS)")
	fs.IntVar(&o.replication, "replication", envInt(getenv, "KAFKA_REPLICATION", 1), "replication factor of each created topic (env KAFKA_REPLICATION)")
	fs.DurationVar(&o.retention, "retention", 7*24*time.Hour, "retention of case-events, case-events.internal and notifications")
	fs.DurationVar(&o.dlqRetention, "dlq-retention", 30*24*time.Hour, "retention of case-events.dlq")
	fs.DurationVar(&o.auditRetention, "audit-retention", 30*24*time.Hour, "retention of notifications.results, the audit trail (the legal period unless sunk elsewhere)")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Second, "give up when the broker does not answer within this time")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(io.err, "dispatcher topics: unexpected arguments %q\n", fs.Args())
		return 2
	}
	o.brokers = splitList(*brokers)
	if len(o.brokers) == 0 || o.partitions <= 0 || o.replication <= 0 {
		fmt.Fprintln(io.err, "dispatcher topics: --brokers, --partitions and --replication must be set (partitions and replication at least 1)")
		return 2
	}
	log := logrus.New()
	log.SetOutput(io.err)
	sec, err := kafkaSecurity(getenv, log, false)
	if err != nil {
		fmt.Fprintln(io.err, "dispatcher topics:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := runTopics(ctx, sec, o, io.out); err != nil {
		fmt.Fprintln(io.err, "dispatcher topics:", err)
		return 1
	}
	return 0
}

func envInt(getenv env, name string, def int) int {
	if v, err := strconv.Atoi(getenv(name)); err == nil {
		return v
	}
	return def
}

// topicPlan is the topics with their retention.
func (o topicsOptions) plan() []kafka.TopicConfig {
	var out []kafka.TopicConfig
	for _, spec := range dispatcher.AllTopics(o.partitions, o.replication) {
		name, keep := spec.Name, o.retention
		switch name {
		case dispatcher.TopicCaseEvents:
			name = o.upstream
		case dispatcher.TopicDLQ:
			keep = o.dlqRetention
		case dispatcher.TopicResults:
			keep = o.auditRetention
		}
		tc := kafka.TopicConfig{Topic: name, NumPartitions: spec.Partitions, ReplicationFactor: spec.ReplicationFactor}
		if keep != 0 {
			tc.ConfigEntries = []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: retentionMS(keep)}}
		}
		out = append(out, tc)
	}
	return out
}

func retentionMS(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// runTopics creates the missing topics and prints what exists.
func runTopics(ctx context.Context, sec dispatcher.KafkaSecurity, o topicsOptions, out io.Writer) error {
	brokers := strings.Join(o.brokers, ",")
	if err := sec.Check(ctx, o.brokers); err != nil {
		return fmt.Errorf("cannot reach Kafka at %s: %w", brokers, err)
	}
	c, closeClient := sec.Client(o.brokers, o.timeout)
	defer closeClient()
	plan := o.plan()
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: plan})
	if err != nil {
		return fmt.Errorf("create topics on %s: %w", brokers, err)
	}
	var errs []error
	for _, tc := range plan {
		switch terr := resp.Errors[tc.Topic]; {
		case terr == nil:
			fmt.Fprintf(out, "created %s\n", tc.Topic)
		case errors.Is(terr, kafka.TopicAlreadyExists):
			fmt.Fprintf(out, "exists  %s (left as it is)\n", tc.Topic)
		default:
			errs = append(errs, fmt.Errorf("create %s: %w", tc.Topic, terr))
		}
	}
	names := make([]string, len(plan))
	for i, tc := range plan {
		names[i] = tc.Topic
	}
	if err := listTopics(ctx, c, names, out); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// listTopics prints each topic's partitions, replication factor and
// retention, and warns when the two case-event topics differ in
// partitions (the consumer needs them equal).
func listTopics(ctx context.Context, c *kafka.Client, names []string, out io.Writer) error {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return fmt.Errorf("read topic metadata: %w", err)
	}
	type row struct {
		parts, repl int
		err         error
	}
	rows := map[string]row{}
	for _, t := range md.Topics {
		r := row{parts: len(t.Partitions), err: t.Error}
		for _, p := range t.Partitions {
			r.repl = max(r.repl, len(p.Replicas))
		}
		rows[t.Name] = r
	}
	keep := retentions(ctx, c, names)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tREPLICATION\tRETENTION")
	var missing []string
	for _, n := range names {
		r, ok := rows[n]
		if !ok || r.err != nil || r.parts == 0 {
			missing = append(missing, n)
			fmt.Fprintf(tw, "%s\t-\t-\tmissing\n", n)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", n, r.parts, r.repl, keep[n])
	}
	_ = tw.Flush()
	if len(names) > 1 {
		a, b := rows[names[0]], rows[dispatcher.TopicInternal]
		if a.parts > 0 && b.parts > 0 && a.parts != b.parts {
			fmt.Fprintf(out, "WARNING: %s has %d partitions and %s %d: they must be equal (see docs/operations.md#topics)\n",
				names[0], a.parts, dispatcher.TopicInternal, b.parts)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("topics missing after creation: %s", strings.Join(missing, ", "))
	}
	return nil
}

// retentions reads retention.ms of each topic; "?" where the broker does
// not say.
func retentions(ctx context.Context, c *kafka.Client, names []string) map[string]string {
	out := map[string]string{}
	req := &kafka.DescribeConfigsRequest{}
	for _, n := range names {
		out[n] = "?"
		req.Resources = append(req.Resources, kafka.DescribeConfigRequestResource{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: n, ConfigNames: []string{"retention.ms"}})
	}
	resp, err := c.DescribeConfigs(ctx, req)
	if err != nil {
		return out
	}
	for _, r := range resp.Resources {
		if r.Error != nil {
			continue
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName != "retention.ms" {
				continue
			}
			ms, err := strconv.ParseInt(e.ConfigValue, 10, 64)
			switch {
			case err != nil:
				out[r.ResourceName] = e.ConfigValue
			case ms < 0:
				out[r.ResourceName] = "forever"
			default:
				out[r.ResourceName] = (time.Duration(ms) * time.Millisecond).String()
			}
			if e.IsDefault {
				out[r.ResourceName] += " (broker default)"
			}
		}
	}
	return out
}
