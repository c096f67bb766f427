package main

import (
	"io"
	"testing"

	"github.com/viogen-alerts/dispatcher/dispatcher"
)

// TestTopicCreationSettings: topic creation is off by default for run, on
// for dev, follows KAFKA_CREATE_TOPICS / --create-topics, and creates the
// configured upstream topic with KAFKA_PARTITIONS and KAFKA_REPLICATION.
func TestTopicCreationSettings(t *testing.T) {
	parse := func(cmd string, envs map[string]string, args ...string) settings {
		t.Helper()
		var s settings
		fs := newFlagSet(cmd, "", io.Discard)
		s.register(fs, func(k string) string { return envs[k] }, settings{})
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := parse("run", nil); s.createTopics || s.topicSpecs() != nil {
		t.Errorf("run creates topics by default")
	}
	if s := parse("dev", nil); !s.createTopics {
		t.Errorf("dev does not create topics by default")
	}
	if s := parse("dev", map[string]string{"KAFKA_CREATE_TOPICS": "false"}); s.createTopics {
		t.Errorf("KAFKA_CREATE_TOPICS=false ignored by dev")
	}
	s := parse("run", map[string]string{"KAFKA_CREATE_TOPICS": "true", "KAFKA_PARTITIONS": "12", "KAFKA_REPLICATION": "3"}, "--topic", "upstream-events")
	specs := s.topicSpecs()
	if len(specs) != 5 {
		t.Fatalf("specs %+v", specs)
	}
	names := map[string]bool{}
	for _, sp := range specs {
		names[sp.Name] = true
		if sp.Partitions != 12 || sp.ReplicationFactor != 3 {
			t.Errorf("spec %+v, want 12 partitions, replication 3", sp)
		}
	}
	if !names["upstream-events"] || names[dispatcher.TopicCaseEvents] || !names[dispatcher.TopicDLQ] {
		t.Errorf("topics %v", names)
	}
	if s := parse("run", nil, "--create-topics"); !s.createTopics {
		t.Errorf("--create-topics ignored")
	}
}
