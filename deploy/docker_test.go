package deploy

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
	line int
}

type stage struct {
	base, name string
	ins        []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func (s stage) last(cmd string) (instruction, bool) {
	all := s.all(cmd)
	if len(all) == 0 {
		return instruction{}, false
	}
	return all[len(all)-1], true
}

func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	var ins []instruction
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(string(readFile(t, path)), "\n") {
		line := strings.TrimSpace(raw)
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(line, "#") {
			continue // comment inside a continuation
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		f := strings.SplitN(cur.String(), " ", 2)
		in := instruction{cmd: strings.ToUpper(f[0]), line: start}
		if len(f) == 2 {
			in.args = strings.TrimSpace(f[1])
		}
		ins = append(ins, in)
		cur.Reset()
	}
	var stages []stage
	for _, in := range ins {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := stage{base: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile:%d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	return stages
}

// goBuild is the Dockerfile's `go build` command: its environment
// assignments and its arguments after "go".
type goBuild struct {
	env  []string
	args []string
	out  string
}

// shellWords splits a simple shell command: spaces, double and single quotes.
func shellWords(s string) []string {
	var out []string
	var w strings.Builder
	in := false
	var q rune
	for _, r := range s {
		switch {
		case q != 0 && r == q:
			q = 0
		case q != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			q, in = r, true
		case r == ' ' || r == '\t':
			if in {
				out = append(out, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, w.String())
	}
	return out
}

func dockerGoBuild(t *testing.T, build stage) goBuild {
	t.Helper()
	for _, in := range build.all("RUN") {
		words := shellWords(in.args)
		for i := 0; i+1 < len(words); i++ {
			if words[i] != "go" || words[i+1] != "build" {
				continue
			}
			var gb goBuild
			for _, w := range words[:i] {
				if !regexp.MustCompile(`^[A-Z_]+=`).MatchString(w) {
					t.Fatalf("Dockerfile:%d: unexpected %q before go build", in.line, w)
				}
				gb.env = append(gb.env, w)
			}
			gb.args = words[i+1:]
			for j, a := range gb.args {
				if a == "-o" && j+1 < len(gb.args) {
					gb.out = gb.args[j+1]
				}
			}
			return gb
		}
	}
	t.Fatal("Dockerfile: no RUN ... go build in the build stage")
	return goBuild{}
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages; want a builder and a runtime stage", len(stages))
	}
	build := stages[0]
	if !strings.HasPrefix(build.base, "golang:") || build.name == "" {
		t.Errorf("first stage is %q AS %q; want a named golang builder", build.base, build.name)
	}
	gb := dockerGoBuild(t, build)
	for _, e := range []string{"CGO_ENABLED=0"} {
		if !has(gb.env, e) {
			t.Errorf("go build runs without %s (env %v)", e, gb.env)
		}
	}
	if !has(gb.args, "-trimpath") {
		t.Errorf("go build without -trimpath: %v", gb.args)
	}
	ld := ""
	for i, a := range gb.args {
		if a == "-ldflags" && i+1 < len(gb.args) {
			ld = gb.args[i+1]
		}
	}
	if !has(strings.Fields(ld), "-s") || !has(strings.Fields(ld), "-w") {
		t.Errorf("go build -ldflags %q; want -s -w", ld)
	}
	if gb.args[len(gb.args)-1] != "./cmd/dispatcher" || gb.out == "" {
		t.Errorf("go build %v: want -o OUT ... ./cmd/dispatcher", gb.args)
	}

	final := stages[len(stages)-1]
	if final.base != "scratch" && !strings.HasPrefix(final.base, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %s; want scratch or distroless/static", final.base)
	}
	if !strings.Contains(final.base, "nonroot") && final.base != "scratch" {
		t.Errorf("final stage FROM %s; want the nonroot variant", final.base)
	}
	// Every stage not based on golang ships the binary: the final one and
	// the compose target.
	for _, s := range stages[1:] {
		if strings.HasPrefix(s.base, "golang:") {
			continue
		}
		where := "stage " + s.base
		u, ok := s.last("USER")
		if !ok {
			t.Errorf("%s: no USER", where)
		} else {
			uid, err := strconv.Atoi(strings.SplitN(u.args, ":", 2)[0])
			if err != nil || uid == 0 {
				t.Errorf("%s: USER %q; want a numeric non-root uid (runAsNonRoot needs a number)", where, u.args)
			}
		}
		copied := false
		for _, c := range s.all("COPY") {
			f := strings.Fields(c.args)
			copied = copied || (len(f) == 3 && f[0] == "--from="+build.name && f[1] == gb.out && f[2] == "/dispatcher")
		}
		if !copied {
			t.Errorf("%s: no COPY --from=%s %s /dispatcher", where, build.name, gb.out)
		}
		if e, _ := s.last("ENTRYPOINT"); e.args != `["/dispatcher"]` {
			t.Errorf("%s: ENTRYPOINT %s; want [\"/dispatcher\"]", where, e.args)
		}
		if c, _ := s.last("CMD"); c.args != `["run"]` {
			t.Errorf("%s: CMD %s; want [\"run\"]", where, c.args)
		}
		env := map[string]string{}
		for _, e := range s.all("ENV") {
			for _, kv := range shellWords(e.args) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
		if env["DISPATCHER_CONFIG"] != "/etc/dispatcher/config.yaml" {
			t.Errorf("%s: DISPATCHER_CONFIG=%q; want /etc/dispatcher/config.yaml (the documented mount)", where, env["DISPATCHER_CONFIG"])
		}
		port := strings.TrimPrefix(env["HTTP_ADDR"], ":")
		if x, _ := s.last("EXPOSE"); port == "" || x.args != port {
			t.Errorf("%s: EXPOSE %q but HTTP_ADDR %q", where, x.args, env["HTTP_ADDR"])
		}
		for k, v := range env {
			if why := inlinedSecret(k, v); why != "" || secretName.MatchString(k) {
				t.Errorf("%s: ENV %s: secrets never go in the image", where, k)
			}
		}
		names := make([]string, 0, len(env))
		for k := range env {
			names = append(names, k)
		}
		checkEnvNames(t, "Dockerfile "+where, names)
	}
	for _, s := range stages {
		for _, a := range s.all("ARG") {
			if secretName.MatchString(strings.SplitN(a.args, "=", 2)[0]) {
				t.Errorf("Dockerfile:%d: ARG %s: build arguments end up in the image history", a.line, a.args)
			}
		}
	}
}

// TestDockerignore: the build context keeps what the build needs and
// leaves out the repository history and local secrets.
func TestDockerignore(t *testing.T) {
	var pats []*regexp.Regexp
	for _, l := range strings.Split(string(readFile(t, filepath.Join(repoRoot, ".dockerignore"))), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "!") {
			t.Fatalf(".dockerignore: exceptions (%s) are not handled by this test", l)
		}
		pats = append(pats, globRegexp(strings.TrimSuffix(strings.TrimPrefix(l, "/"), "/")))
	}
	ignored := func(p string) bool {
		// A pattern matching a directory excludes everything below it.
		parts := strings.Split(p, "/")
		for i := 1; i <= len(parts); i++ {
			for _, re := range pats {
				if re.MatchString(strings.Join(parts[:i], "/")) {
					return true
				}
			}
		}
		return false
	}
	tmpl, _ := filepath.Glob(filepath.Join(repoRoot, "templates/default/*/*.tmpl"))
	if len(tmpl) == 0 {
		t.Fatal("no embedded templates found")
	}
	rel, _ := filepath.Rel(repoRoot, tmpl[0])
	for _, p := range []string{"go.mod", "go.sum", "cmd/dispatcher/main.go", "dispatcher/apply.lua", filepath.ToSlash(rel)} {
		if ignored(p) {
			t.Errorf(".dockerignore excludes %s, which the build needs", p)
		}
	}
	for _, p := range []string{".git/config", ".env", "deploy/compose/.env", "bin/dispatcher"} {
		if !ignored(p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
}

// globRegexp turns a .dockerignore pattern (with **) into a regexp.
func globRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// TestStaticBinary builds the binary the way the Dockerfile does (its own
// go build command, read from it) and checks that it is static, stripped
// and trimmed, so it runs on distroless/static or scratch, and that it runs.
func TestStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the dispatcher binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	stages := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	gb := dockerGoBuild(t, stages[0])
	bin := filepath.Join(t.TempDir(), "dispatcher")
	args := append([]string(nil), gb.args...)
	for i := range args {
		if i > 0 && args[i-1] == "-o" {
			args[i] = bin
		}
	}
	cmd := exec.Command(goTool, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), gb.env...)
	// The image runs on linux; build for this machine's arch so the binary runs here.
	cmd.Env = append(cmd.Env, "GOOS=linux", "GOFLAGS=-mod=readonly")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("go %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: it is dynamically linked", p.Type)
		}
	}
	if f.Section(".dynamic") != nil || f.Section(".interp") != nil {
		t.Error("binary has a .dynamic or .interp section: it is dynamically linked")
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("binary keeps its symbol table: -ldflags -s did not apply")
	}
	abs, _ := filepath.Abs(repoRoot)
	if b := readFile(t, bin); bytes.Contains(b, []byte(abs+"/")) {
		t.Errorf("binary contains the build path %s: -trimpath did not apply", abs)
	}

	// An empty environment, as in the image: nothing of this machine's
	// (SSL_CERT_FILE and the like) leaks into the check.
	var out bytes.Buffer
	run := exec.Command(bin, "--help")
	run.Env = []string{}
	run.Stdout, run.Stderr = &out, &out
	if err := run.Run(); err != nil {
		t.Fatalf("dispatcher --help: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "Usage: dispatcher") || !strings.Contains(out.String(), "run") {
		t.Errorf("dispatcher --help printed:\n%s", out.String())
	}
	out.Reset()
	run = exec.Command(bin, "run", "--help")
	run.Env = []string{}
	run.Stdout, run.Stderr = &out, &out
	if err := run.Run(); err != nil {
		t.Fatalf("dispatcher run --help: %v\n%s", err, out.String())
	}
	for _, want := range []string{"DISPATCHER_CONFIG", "TEMPLATE_DIR", "-stages"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dispatcher run --help does not mention %s", want)
		}
	}
}
