package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// TestTopicsCommand: `dispatcher topics` creates the missing topics with
// the partitions, replication and retention asked for, leaves an existing
// one as it is (and warns that the two case-event topics differ), lists
// them all, and is safe to run again.
func TestTopicsCommand(t *testing.T) {
	// case-events exists already, with 2 partitions.
	_, brokers := testenv.StartKafka(t, 2, dispatcher.TopicCaseEvents)
	b := strings.Join(brokers, ",")
	code, out, errOut := run(t, "", envMap(nil), "topics", "--brokers", b, "--partitions", "3", "--replication", "1",
		"--retention", "48h", "--audit-retention", "8760h")
	if code != 0 {
		t.Fatalf("topics: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Log(out)
	for _, name := range []string{dispatcher.TopicInternal, dispatcher.TopicDLQ, dispatcher.TopicIntents, dispatcher.TopicResults} {
		if !strings.Contains(out, "created "+name+"\n") {
			t.Errorf("%s not reported created", name)
		}
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s+3\s+1\s+`).MatchString(out) {
			t.Errorf("%s not listed with 3 partitions and replication 1", name)
		}
	}
	if !strings.Contains(out, "exists  "+dispatcher.TopicCaseEvents) ||
		!regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(dispatcher.TopicCaseEvents)+`\s+2\s+1\s+`).MatchString(out) {
		t.Errorf("the existing %s is not reported as left with its 2 partitions", dispatcher.TopicCaseEvents)
	}
	if !strings.Contains(out, "WARNING: case-events has 2 partitions and case-events.internal 3") {
		t.Error("no warning that case-events and case-events.internal differ in partitions")
	}
	want := map[string]string{
		dispatcher.TopicResults:  "31536000000",
		dispatcher.TopicIntents:  "172800000",
		dispatcher.TopicInternal: "172800000",
		dispatcher.TopicDLQ:      "2592000000",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, closeClient := dispatcher.KafkaSecurity{}.Client(brokers, 0)
	defer closeClient()
	for topic, ms := range want {
		resp, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"}}}})
		if err != nil || len(resp.Resources) != 1 {
			t.Fatalf("describe %s: %v %+v", topic, err, resp)
		}
		got := ""
		for _, e := range resp.Resources[0].ConfigEntries {
			if e.ConfigName == "retention.ms" {
				got = e.ConfigValue
			}
		}
		if got != ms {
			t.Errorf("%s: retention.ms %q, want %s", topic, got, ms)
		}
	}
	if !regexp.MustCompile(`(?m)^notifications\.results\s+3\s+1\s+8760h0m0s$`).MatchString(out) {
		t.Error("the audit topic's retention is not listed as 8760h")
	}

	// Again: everything exists.
	code, out, errOut = run(t, "", envMap(nil), "topics", "--brokers", b)
	if code != 0 || strings.Contains(out, "created") || strings.Count(out, "exists  ") != 5 {
		t.Errorf("second run: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestTopicsUnreachableBroker(t *testing.T) {
	start := time.Now()
	code, out, errOut := run(t, "", envMap(map[string]string{"KAFKA_BROKERS": "127.0.0.1:1"}), "topics", "--timeout", "5s")
	if code != 1 || !strings.Contains(errOut, "cannot reach Kafka at 127.0.0.1:1") || out != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and a clear error", code, out, errOut)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("took %s", d)
	}
	if code, _, errOut := run(t, "", envMap(nil), "topics", "--partitions", "0"); code != 2 || !strings.Contains(errOut, "--partitions") {
		t.Errorf("--partitions 0: exit %d: %s", code, errOut)
	}
}
