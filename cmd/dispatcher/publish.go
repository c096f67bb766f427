package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/segmentio/kafka-go"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/event"
)

func cmdPublish(ctx context.Context, args []string, io stdio, getenv env) int {
	fs := newFlagSet("publish", `Usage: dispatcher publish [flags] FILE|-

Send JSON-lines events (one per line; blank lines and lines starting with #
are skipped) to Kafka, keyed by case_id, with the same partitioner as
librdkafka/kcat (CRC32). Lines are sent as they are, so malformed ones reach
the dead-letter topic; --strict refuses the whole file instead.

Example: dispatcher publish deploy/examples/events.jsonl
         kcat -P -b 127.0.0.1:9092 -t case-events -K '|' does the same with key|json lines.`, io.err)
	brokers := fs.String("brokers", envOr(getenv, "KAFKA_BROKERS", "127.0.0.1:9092"), "Kafka brokers (env KAFKA_BROKERS)")
	topic := fs.String("topic", envOr(getenv, "KAFKA_TOPIC", dispatcher.TopicCaseEvents), "topic (env KAFKA_TOPIC)")
	strict := fs.Bool("strict", false, "validate every line first and send nothing if one is invalid")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	msgs, err := readEvents(fs.Arg(0), io.in, *topic, *strict)
	if err != nil {
		fmt.Fprintln(io.err, "dispatcher publish:", err)
		return 1
	}
	log := logrus.New()
	log.SetOutput(io.err)
	sec, err := kafkaSecurity(getenv, log, false)
	if err != nil {
		fmt.Fprintln(io.err, "dispatcher publish:", err)
		return 2
	}
	w := sec.NewWriter(splitList(*brokers), log)
	defer w.Close()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		fmt.Fprintf(io.err, "dispatcher publish: send to %s: %v\n", *topic, explainKafkaErr(ctx, sec, splitList(*brokers), err))
		return 1
	}
	fmt.Fprintf(io.out, "published %d events to %s\n", len(msgs), *topic)
	return 0
}

// readEvents reads JSON lines into keyed messages. The key is the line's
// case_id; a line without one gets the key "" and will be dead-lettered.
func readEvents(path string, stdin io.Reader, topic string, strict bool) ([]kafka.Message, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("open events: %w", err)
		}
		defer f.Close()
		r = f
	}
	var msgs []kafka.Message
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strict {
			if _, err := event.Decode([]byte(line)); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
		}
		var k struct {
			CaseID string `json:"case_id"`
		}
		_ = json.Unmarshal([]byte(line), &k)
		msgs = append(msgs, kafka.Message{Topic: topic, Key: []byte(k.CaseID), Value: []byte(line)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return msgs, nil
}

func envOr(getenv env, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
