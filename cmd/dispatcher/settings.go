package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/internal/logjson"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/rules"
)

// settings are what run and dev share, from flags with environment defaults.
type settings struct {
	brokers  string
	redisURL string
	// redisAddrs (comma-separated host:port seeds) selects a Redis Cluster,
	// or with redisMaster the Sentinels of a Sentinel-managed master.
	redisAddrs  string
	redisMaster string
	// redisCluster forces cluster mode with a single seed address (a
	// cluster's configuration endpoint).
	redisCluster bool
	config       string
	httpAddr     string
	group        string
	topic        string
	logLevel     string
	logFormat    string
	dedupTTL     time.Duration
	writeFormat  dispatcher.WriteFormat
	templateDir  string
	stages       string
	// createTopics creates missing topics at start and when the consumer
	// finds one missing (a broker back empty).
	createTopics bool
	partitions   int
	replication  int
	// getenv reads the Redis credentials (never flags: a flag shows in ps).
	getenv env
	// devOperators are the made-up console operators of dispatcher dev.
	devOperators []rules.Operator
	// envErrs are environment values register could not read: refused at
	// start (checkStages), never silently replaced by a default.
	envErrs []error
}

// checkStages refuses an environment value register could not read, and a
// --stages value naming no stage or an unknown one: a typo such as
// "decide,delivr" must not start a process that silently never delivers.
func (s *settings) checkStages() error {
	if len(s.envErrs) > 0 {
		return s.envErrs[0]
	}
	names := splitList(s.stages)
	for _, x := range names {
		if x != "decide" && x != "deliver" {
			return fmt.Errorf("--stages %q: unknown stage %q; name decide, deliver or both (decide,deliver)", s.stages, x)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("--stages %q: name decide, deliver or both (decide,deliver)", s.stages)
	}
	return nil
}

func (s *settings) runs(stage string) bool {
	for _, x := range splitList(s.stages) {
		if x == stage {
			return true
		}
	}
	return false
}

const envHelp = `
Environment (flags win):
  KAFKA_BROKERS        comma-separated host:port list
  REDIS_URL            redis://[user:pass@]host:port/db (rediss:// for TLS): one server
  REDIS_ADDRS          comma-separated host:port list instead of REDIS_URL: two or more
                       = Redis Cluster seeds; with REDIS_MASTER_NAME = Sentinel addresses
  REDIS_MASTER_NAME    Sentinel master name (failover client)
  REDIS_CLUSTER        true: cluster mode even with one REDIS_ADDRS seed
  REDIS_USERNAME, REDIS_PASSWORD  ACL user and password for REDIS_ADDRS (also *_FILE)
  REDIS_SENTINEL_PASSWORD  password of the Sentinels themselves (also *_FILE)
  REDIS_TLS            true: TLS to REDIS_ADDRS
  DISPATCHER_CONFIG    configuration file (YAML)
  HTTP_ADDR            admin HTTP address (/healthz, /readyz, /metrics, ...)
  LOG_LEVEL, LOG_FORMAT  debug|info|warn|error; json|text
  KAFKA_CREATE_TOPICS  true|false: create missing topics (default false for run, true for dev)
  KAFKA_PARTITIONS, KAFKA_REPLICATION  partitions and replication factor of created topics (6, 1)
`

func (s *settings) register(fs *flag.FlagSet, getenv env, defaults settings) {
	str := func(p *string, name, envName, def, help string) {
		if v := getenv(envName); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, help+" (env "+envName+")")
	}
	str(&s.brokers, "brokers", "KAFKA_BROKERS", defaults.brokers, "Kafka brokers, comma-separated")
	str(&s.redisURL, "redis", "REDIS_URL", defaults.redisURL, "Redis URL")
	str(&s.redisAddrs, "redis-addrs", "REDIS_ADDRS", defaults.redisAddrs, "Redis Cluster seeds or Sentinel addresses, comma-separated (instead of --redis)")
	str(&s.redisMaster, "redis-master-name", "REDIS_MASTER_NAME", defaults.redisMaster, "Sentinel master name (with --redis-addrs)")
	boolEnv := func(envName string, def bool) bool {
		v := getenv(envName)
		if v == "" {
			return def
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.envErrs = append(s.envErrs, fmt.Errorf("%s=%q: want true or false", envName, v))
			return def
		}
		return b
	}
	cluster := boolEnv("REDIS_CLUSTER", defaults.redisCluster)
	fs.BoolVar(&s.redisCluster, "redis-cluster", cluster, "cluster mode even with one --redis-addrs seed (env REDIS_CLUSTER)")
	s.getenv = getenv
	str(&s.config, "config", "DISPATCHER_CONFIG", defaults.config, "configuration file")
	str(&s.httpAddr, "http", "HTTP_ADDR", defaults.httpAddr, "admin HTTP address; empty = off")
	str(&s.group, "group", "KAFKA_GROUP", "dispatcher", "consumer group of the decide stage")
	str(&s.topic, "topic", "KAFKA_TOPIC", dispatcher.TopicCaseEvents, "topic of upstream case events")
	str(&s.logLevel, "log-level", "LOG_LEVEL", "info", "log level")
	str(&s.logFormat, "log-format", "LOG_FORMAT", defaults.logFormat, "log format: json or text")
	str(&s.templateDir, "templates", "TEMPLATE_DIR", "", "directory of template overrides")
	str(&s.stages, "stages", "DISPATCHER_STAGES", "decide,deliver", "stages this process runs: decide (consume case events), deliver (send notifications), or both")
	ttl := 30 * 24 * time.Hour
	if v := getenv("DEDUP_TTL"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			ttl = d
		} else {
			s.envErrs = append(s.envErrs, fmt.Errorf("DEDUP_TTL=%q: want a positive duration such as 720h", v))
		}
	}
	fs.DurationVar(&s.dedupTTL, "dedup-ttl", ttl, "how long event ids are remembered for idempotency (env DEDUP_TTL)")
	format := defaults.writeFormat.String()
	if v := getenv("REDIS_WRITE_FORMAT"); v != "" {
		if _, err := dispatcher.ParseWriteFormat(v); err == nil {
			format = v
		} else {
			s.envErrs = append(s.envErrs, fmt.Errorf("REDIS_WRITE_FORMAT=%q: %w", v, err))
		}
	}
	fs.Func("redis-write-format", "layout of the records changed in 2026-12: current, or previous to keep a rollback to the release before possible (env REDIS_WRITE_FORMAT; default "+format+")", func(v string) error {
		f, err := dispatcher.ParseWriteFormat(v)
		s.writeFormat = f
		return err
	})
	s.writeFormat, _ = dispatcher.ParseWriteFormat(format)
	// dev's embedded broker is empty at each start: creation is on there.
	create := boolEnv("KAFKA_CREATE_TOPICS", defaults.createTopics || fs.Name() == "dev")
	fs.BoolVar(&s.createTopics, "create-topics", create, "create missing topics at start and when the broker loses them (env KAFKA_CREATE_TOPICS)")
	intEnv := func(p *int, name, envName string, def int, help string) {
		if v := getenv(envName); v != "" {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				def = n
			} else {
				s.envErrs = append(s.envErrs, fmt.Errorf("%s=%q: want a whole number above 0", envName, v))
			}
		}
		fs.IntVar(p, name, def, help+" (env "+envName+")")
	}
	intEnv(&s.partitions, "partitions", "KAFKA_PARTITIONS", 6, "partitions of topics the dispatcher creates")
	intEnv(&s.replication, "replication", "KAFKA_REPLICATION", 1, "replication factor of topics the dispatcher creates")
}

// topicSpecs are the topics to create, or none when creation is off.
func (s *settings) topicSpecs() []dispatcher.TopicSpec {
	if !s.createTopics {
		return nil
	}
	specs := dispatcher.AllTopics(s.partitions, s.replication)
	for i := range specs {
		if specs[i].Name == dispatcher.TopicCaseEvents && s.topic != "" {
			specs[i].Name = s.topic
		}
	}
	return specs
}

func (s *settings) logger(w io.Writer) (*logrus.Logger, error) {
	l := logrus.New()
	l.SetOutput(w)
	lvl, err := logrus.ParseLevel(s.logLevel)
	if err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	l.SetLevel(lvl)
	switch s.logFormat {
	case "json", "":
		l.SetFormatter(logjson.Formatter{}) // logrus.JSONFormatter's output, faster
	case "text":
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	default:
		return nil, fmt.Errorf("LOG_FORMAT %q: want json or text", s.logFormat)
	}
	return l, nil
}

func (s *settings) brokerList() []string {
	var out []string
	for _, b := range strings.Split(s.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

func (s *settings) redisClient() (redis.UniversalClient, error) {
	addrs := splitList(s.redisAddrs)
	switch {
	case len(addrs) > 0 && s.redisURL != "":
		return nil, fmt.Errorf("set either REDIS_URL or REDIS_ADDRS, not both")
	case len(addrs) > 0:
		return redis.NewUniversalClient(s.universalOptions(addrs)), nil
	case s.redisMaster != "":
		return nil, fmt.Errorf("REDIS_MASTER_NAME needs REDIS_ADDRS (the Sentinels)")
	case s.redisURL == "":
		return nil, fmt.Errorf("REDIS_URL (or REDIS_ADDRS) is not set")
	}
	opt, err := redis.ParseURL(s.redisURL)
	if err != nil {
		// Not wrapped: the parser's message repeats the URL, password included.
		return nil, fmt.Errorf("REDIS_URL is not a valid redis:// or rediss:// URL")
	}
	if opt.PoolSize == 0 { // pool_size in the URL wins
		opt.PoolSize = redisPoolSize()
	}
	return redis.NewClient(opt), nil
}

// redisPoolSize is the connection pool of a Redis client (per node): the
// deliver lanes run up to DELIVER_WORKERS sends each, and most of a send's
// Redis calls share round trips, but the rate limiter's and the queue's
// take a connection each. go-redis's default (10 per CPU: 10 under a
// one-CPU limit) would make them queue, and a rate-limit call that waits
// past its 2 s falls back to a per-instance budget.
func redisPoolSize() int { return max(64, 10*runtime.GOMAXPROCS(0)) }

// universalOptions are the options of REDIS_ADDRS: a Sentinel failover
// client with a master name, else a cluster client for two or more seeds
// (or REDIS_CLUSTER), else a plain client.
func (s *settings) universalOptions(addrs []string) *redis.UniversalOptions {
	get := s.getenv
	if get == nil {
		get = func(string) string { return "" }
	}
	o := &redis.UniversalOptions{Addrs: addrs, MasterName: s.redisMaster, IsClusterMode: s.redisCluster && s.redisMaster == "", PoolSize: redisPoolSize(),
		Username: get("REDIS_USERNAME"), Password: get("REDIS_PASSWORD"), SentinelPassword: get("REDIS_SENTINEL_PASSWORD")}
	if tlsOn, _ := strconv.ParseBool(get("REDIS_TLS")); tlsOn {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return o
}

func newFlagSet(name, synopsis string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "%s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; done is true when the command should exit with code.
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0, true
		}
		return 2, true
	}
	return 0, false
}
