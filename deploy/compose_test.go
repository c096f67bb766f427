package deploy

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The compose file's fields this stack uses; decoding is strict, so a
// misspelled key fails here as it would in `docker compose config`.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image    string `yaml:"image"`
	Hostname string `yaml:"hostname"`
	Build    *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
		Target     string `yaml:"target"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	EnvFile     []struct {
		Path     string `yaml:"path"`
		Required bool   `yaml:"required"`
	} `yaml:"env_file"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Ports       []string    `yaml:"ports"`
	Volumes     []yaml.Node `yaml:"volumes"`
	ReadOnly    bool        `yaml:"read_only"`
	SecurityOpt []string    `yaml:"security_opt"`
	CapDrop     []string    `yaml:"cap_drop"`
	StopGrace   string      `yaml:"stop_grace_period"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
}

type composeMount struct {
	Type     string `yaml:"type"`
	Source   string `yaml:"source"`
	Target   string `yaml:"target"`
	ReadOnly bool   `yaml:"read_only"`
}

const composeDir = "compose"

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, filepath.Join(composeDir, "docker-compose.yaml"))))
	dec.KnownFields(true)
	var c composeFile
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	return c
}

func TestCompose(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"kafka", "redis", "dispatcher"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("no %s service", name)
		}
	}
	for name, s := range c.Services {
		if s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
			t.Errorf("service %s has no healthcheck", name)
		}
		if s.Image == "" && s.Build == nil {
			t.Errorf("service %s has neither image nor build", name)
		}
		if s.Build == nil && (!strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest")) {
			t.Errorf("service %s: image %q is not pinned to a version", name, s.Image)
		}
		if strings.Contains(s.Image, "zookeeper") {
			t.Errorf("service %s: ZooKeeper; Kafka runs in KRaft mode", name)
		}
		for k, v := range s.Environment {
			if why := inlinedSecret(k, v); why != "" {
				t.Errorf("service %s: %s: secrets go in .env, never in the compose file", name, why)
			}
		}
	}

	// Kafka in KRaft mode, one node that is both broker and controller.
	k := c.Services["kafka"]
	if !strings.HasPrefix(k.Image, "apache/kafka:") {
		t.Errorf("kafka image %q; want apache/kafka", k.Image)
	}
	if v := strings.TrimPrefix(k.Image, "apache/kafka:"); !strings.HasPrefix(v, "3.") {
		// kafka-go v0.4 uses JoinGroup v1 and CreateTopics v0, which Kafka 4.0 removed.
		t.Errorf("kafka image %q: kafka-go v0.4 needs a 3.x broker", k.Image)
	}
	roles := strings.Split(k.Environment["KAFKA_PROCESS_ROLES"], ",")
	if !has(roles, "broker") || !has(roles, "controller") || k.Environment["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "" {
		t.Errorf("kafka is not a KRaft broker+controller: roles %v, voters %q", roles, k.Environment["KAFKA_CONTROLLER_QUORUM_VOTERS"])
	}
	if k.Environment["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] != "1" {
		t.Error("single-node Kafka needs KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR=1 or consumer groups never start")
	}

	d := c.Services["dispatcher"]
	env := d.Environment
	// Built from the repository's Dockerfile, at a target that exists.
	if d.Build == nil {
		t.Fatal("dispatcher is not built from the repository")
	}
	ctx := filepath.Join(composeDir, d.Build.Context)
	if abs, _ := filepath.Abs(ctx); abs != mustAbs(t, repoRoot) {
		t.Errorf("build context %s is not the repository root", d.Build.Context)
	}
	if _, err := os.Stat(filepath.Join(ctx, d.Build.Dockerfile)); err != nil {
		t.Errorf("build dockerfile: %v", err)
	}
	targets := map[string]bool{}
	for _, s := range parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile")) {
		targets[s.name] = true
	}
	if d.Build.Target != "" && !targets[d.Build.Target] {
		t.Errorf("build target %q is not a Dockerfile stage", d.Build.Target)
	}
	// Every broker it is given is an advertised listener of the kafka service.
	adv := k.Environment["KAFKA_ADVERTISED_LISTENERS"]
	for _, b := range strings.Split(env["KAFKA_BROKERS"], ",") {
		if !strings.Contains(adv, "//"+b) {
			t.Errorf("KAFKA_BROKERS %s is not among kafka's advertised listeners %s", b, adv)
		}
	}
	if !strings.HasPrefix(env["REDIS_URL"], "redis://redis:") {
		t.Errorf("REDIS_URL %q does not point at the redis service", env["REDIS_URL"])
	}
	if ok, err := strconv.ParseBool(env["KAFKA_CREATE_TOPICS"]); err != nil || !ok {
		t.Error("KAFKA_CREATE_TOPICS is not true: nothing creates the topics (broker auto-creation is off)")
	}
	for _, dep := range []string{"kafka", "redis"} {
		if d.DependsOn[dep].Condition != "service_healthy" {
			t.Errorf("dispatcher does not wait for %s to be healthy", dep)
		}
	}
	// The configuration: mounted read-only where DISPATCHER_CONFIG says,
	// from the example config.
	cfg := env["DISPATCHER_CONFIG"]
	var mounted *composeMount
	for _, n := range d.Volumes {
		var m composeMount
		if err := n.Decode(&m); err != nil {
			t.Fatalf("dispatcher volume at line %d: use the long syntax (type, source, target, read_only): %v", n.Line, err)
		}
		if m.Target == cfg {
			mounted = &m
		}
	}
	switch {
	case cfg == "":
		t.Error("DISPATCHER_CONFIG is not set")
	case mounted == nil:
		t.Errorf("nothing is mounted at DISPATCHER_CONFIG %s", cfg)
	default:
		if !mounted.ReadOnly || mounted.Type != "bind" {
			t.Errorf("config mount %+v: want a read-only bind", *mounted)
		}
		src := filepath.Join(composeDir, mounted.Source)
		if !bytes.Equal(readFile(t, src), readFile(t, filepath.Join(repoRoot, "deploy/config/viogen.yaml"))) {
			t.Errorf("config mount source %s is not the example config", mounted.Source)
		}
	}
	// The healthcheck asks /readyz on the admin port.
	port := strings.TrimPrefix(env["HTTP_ADDR"], ":")
	hc := strings.Join(d.Healthcheck.Test, " ")
	if !strings.Contains(hc, "/readyz") || !strings.Contains(hc, ":"+port+"/") {
		t.Errorf("dispatcher healthcheck %q does not ask /readyz on port %s", hc, port)
	}
	if len(d.Command) == 0 || d.Command[0] != "run" {
		t.Errorf("dispatcher command %v; want run", d.Command)
	}
	names := make([]string, 0, len(env))
	for n := range env {
		names = append(names, n)
	}
	checkEnvNames(t, "compose dispatcher", names)

	// Secrets come from an env_file, whose tracked example holds
	// placeholders only; the real .env is ignored by git.
	if len(d.EnvFile) == 0 || d.EnvFile[0].Path != ".env" {
		t.Errorf("dispatcher env_file %+v; want .env", d.EnvFile)
	}
	ex := readEnvFile(t, filepath.Join(composeDir, ".env.example"))
	var exNames []string
	for n, v := range ex {
		exNames = append(exNames, n)
		if why := inlinedSecret(n, v); why != "" {
			t.Errorf(".env.example: %s", why)
		}
	}
	checkEnvNames(t, ".env.example", exNames)
	if !strings.Contains(string(readFile(t, filepath.Join(composeDir, ".gitignore"))), ".env") {
		t.Error("deploy/compose/.gitignore does not ignore .env")
	}
}

// readEnvFile reads NAME=value lines, including commented-out ones
// ("#NAME=value"), which are examples too.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, path)))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		l = strings.TrimPrefix(l, "#")
		k, v, ok := strings.Cut(l, "=")
		if !ok || strings.ContainsAny(k, " \t") || k == "" {
			continue
		}
		out[k] = v
	}
	return out
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
