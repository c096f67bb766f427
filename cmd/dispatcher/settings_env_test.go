package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/viogen-alerts/dispatcher/dispatcher"
)

// An environment value register cannot read is refused at start with its
// name, what it holds and what it wants; it was silently replaced by the
// default (DEDUP_TTL=30 days, for one, after a typo such as "7dias").
func TestSettingsRefuseUnreadableEnvironment(t *testing.T) {
	settingsWith := func(envs map[string]string) settings {
		t.Helper()
		var s settings
		fs := newFlagSet("run", "", io.Discard)
		s.register(fs, func(k string) string { return envs[k] }, settings{stages: "decide,deliver"})
		if err := fs.Parse(nil); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for name, want := range map[string]string{
		"DEDUP_TTL": "want a positive duration", "REDIS_CLUSTER": "want true or false", "KAFKA_CREATE_TOPICS": "want true or false",
		"KAFKA_PARTITIONS": "want a whole number", "KAFKA_REPLICATION": "want a whole number",
		"REDIS_WRITE_FORMAT": "want current or previous",
	} {
		s := settingsWith(map[string]string{name: "7dias"})
		err := s.checkStages()
		if err == nil || !strings.Contains(err.Error(), name+`="7dias"`) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=7dias: %v, want it refused (%s)", name, err, want)
		}
	}
	s := settingsWith(map[string]string{"DEDUP_TTL": "168h", "REDIS_CLUSTER": "true", "KAFKA_PARTITIONS": "12", "REDIS_WRITE_FORMAT": "previous"})
	if err := s.checkStages(); err != nil || s.dedupTTL != 168*time.Hour || !s.redisCluster || s.partitions != 12 || s.writeFormat != dispatcher.WritePrevious {
		t.Errorf("good values: %v; ttl %v cluster %v partitions %d format %v", err, s.dedupTTL, s.redisCluster, s.partitions, s.writeFormat)
	}
	if s := settingsWith(nil); s.writeFormat != dispatcher.WriteCurrent {
		t.Errorf("default write format %v, want current", s.writeFormat)
	}
}

// The flag is read as the variable is: previous and current are taken,
// and anything else stops the parse with the flag's name and what it
// wants (and overrides a good REDIS_WRITE_FORMAT).
func TestRedisWriteFormatFlag(t *testing.T) {
	parse := func(env string, args ...string) (settings, error) {
		t.Helper()
		var s settings
		fs := newFlagSet("run", "", io.Discard)
		s.register(fs, func(k string) string {
			if k == "REDIS_WRITE_FORMAT" {
				return env
			}
			return ""
		}, settings{stages: "decide,deliver"})
		return s, fs.Parse(args)
	}
	if s, err := parse("", "--redis-write-format", "previous"); err != nil || s.writeFormat != dispatcher.WritePrevious {
		t.Fatalf("--redis-write-format previous: %v, format %v", err, s.writeFormat)
	}
	if s, err := parse("previous", "--redis-write-format", "current"); err != nil || s.writeFormat != dispatcher.WriteCurrent {
		t.Fatalf("the flag over the variable: %v, format %v", err, s.writeFormat)
	}
	_, err := parse("previous", "--redis-write-format", "bogus")
	if err == nil || !strings.Contains(err.Error(), "redis-write-format") || !strings.Contains(err.Error(), "want current or previous") {
		t.Fatalf("--redis-write-format bogus: %v, want it refused", err)
	}
}
