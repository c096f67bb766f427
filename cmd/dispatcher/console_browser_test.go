package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/internal/testenv"
)

// consoleClient is a Go HTTP session of the console, logged in as op.
type consoleClient struct {
	t     *testing.T
	admin string
	c     *http.Client
}

var consoleCSRFRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func consoleLogin(t *testing.T, admin, op, password string) *consoleClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	cc := &consoleClient{t: t, admin: admin, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	_, page := cc.get("/console/login")
	m := consoleCSRFRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("login page:\n%s", page)
	}
	resp, err := cc.c.PostForm(admin+"/console/login", url.Values{"csrf": {m[1]}, "operator": {op}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login %s: %d", op, resp.StatusCode)
	}
	return cc
}

func (cc *consoleClient) get(path string) (int, string) {
	cc.t.Helper()
	resp, err := cc.c.Get(cc.admin + path)
	if err != nil {
		cc.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var rowIDRe = regexp.MustCompile(`data-escalation="([^"]+)"`)

// openIDs lists the escalation ids of the operator's open list.
func (cc *consoleClient) openIDs() []string {
	cc.t.Helper()
	_, rows := cc.get("/console/?partial=1")
	var ids []string
	for _, m := range rowIDRe.FindAllStringSubmatch(rows, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// chromiumPath finds Debian's chromium (make deps installs it). Without
// it the browser test is skipped, except in CI, where it fails.
func chromiumPath(t *testing.T) string {
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not installed: make deps installs it")
	}
	t.Skip("chromium not installed (make deps installs it)")
	return ""
}

func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1100, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// The first run starts the browser: no timeout on its context.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	tctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	t.Cleanup(cancel)
	return tctx
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// screenshot writes the page to $CONSOLE_SCREENSHOTS/name.png when that
// directory is set (docs/console.md's images come from here).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// demoLines writes lines [from, to) of the example events to a file.
func demoLines(t *testing.T, from, to int) string {
	t.Helper()
	raw, err := os.ReadFile(exampleEvents)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	to = min(to, len(lines))
	p := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(lines[from:to], "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func publishFile(t *testing.T, brokers, path string) {
	t.Helper()
	var out, errOut syncBuffer
	if code := cmdPublish(context.Background(), []string{"--brokers", brokers, path}, stdio{in: strings.NewReader(""), out: &out, err: &errOut}, envMap(nil)); code != 0 {
		t.Fatalf("publish: %d %s", code, errOut.String())
	}
}

// TestConsoleInBrowser drives a real headless Chromium against the
// dispatcher (dev: in-process Kafka-protocol broker, real redis-server):
// log in, see a new critical escalation appear without a reload, open its
// timeline, have a form without its CSRF token refused, acknowledge, see
// the ladder stop, and be refused another agency's escalation.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	ctx := newBrowser(t)
	rds := testenv.StartRedis(t)
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	brokers := "127.0.0.1:" + strconv.Itoa(port)
	var out, errOut syncBuffer
	dctx, stopDev := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- dispatch(dctx, []string{"dev", "--kafka-port", strconv.Itoa(port), "--http", "127.0.0.1:0", "--config", exampleConfig},
			stdio{in: strings.NewReader(""), out: &out, err: &errOut}, envMap(map[string]string{"REDIS_URL": rds.URL()}))
	}()
	defer func() {
		stopDev()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("dev did not stop")
		}
	}()
	admin := waitMatch(t, &out, regexp.MustCompile(`admin on (http://127\.0\.0\.1:\d+)`))
	password := func(op string) string {
		return waitMatch(t, &out, regexp.MustCompile(`operator `+op+`\s+password (\S+)`))
	}
	const op = "dev-gc-ciudad-real"
	// The scenario up to, not including, Herencia's first device alarm
	// (line 22): both regions get escalations.
	publishFile(t, brokers, demoLines(t, 0, 21))
	other := consoleLogin(t, admin, "dev-pn-illes-balears", password("dev-pn-illes-balears"))
	mine := consoleLogin(t, admin, op, password(op))
	var otherIDs []string
	for deadline := time.Now().Add(20 * time.Second); len(otherIDs) == 0; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no open escalation for pn-illes-balears; stderr:\n%s", tail(errOut.String()))
		}
		otherIDs = other.openIDs()
	}

	// Log in.
	do(t, ctx, chromedp.Navigate(admin+"/console/login"), chromedp.WaitVisible(chromedp.CSS("#operator")))
	screenshot(t, ctx, "login")
	do(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#operator"), op),
		chromedp.SendKeys(chromedp.CSS("#password"), password(op)),
		chromedp.Click(chromedp.CSS("form.login button")),
		chromedp.WaitVisible(chromedp.CSS("#open-rows")),
	)
	eval[bool](t, ctx, `window.__noReload = true`)
	before := mine.openIDs()

	// A new critical escalation appears without a reload, within 2 s of
	// being listable.
	publishFile(t, brokers, demoLines(t, 21, 22))
	var id string
	for deadline := time.Now().Add(20 * time.Second); id == ""; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no new escalation after the device alarm; stderr:\n%s", tail(errOut.String()))
		}
		for _, x := range mine.openIDs() {
			if !contains(before, x) {
				id = x
			}
		}
	}
	listed := time.Now()
	sel := `#open-rows tr[data-escalation="` + id + `"]`
	for eval[int](t, ctx, `document.querySelectorAll('`+sel+`.critical').length`) != 1 {
		// The page polls every second; 10 s leaves a loaded machine room, and
		// a page that does not refresh itself never shows it.
		if time.Since(listed) > 10*time.Second {
			t.Fatalf("the new critical escalation %s did not appear in the open list within 10 s", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !eval[bool](t, ctx, `window.__noReload === true`) {
		t.Fatal("the page was reloaded")
	}
	screenshot(t, ctx, "open")

	// Its timeline.
	do(t, ctx, chromedp.Click(chromedp.CSS(sel+` a`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="ack"]`)))
	if !strings.Contains(eval[string](t, ctx, `document.body.textContent`), id) {
		t.Fatal("the timeline does not name the escalation")
	}
	screenshot(t, ctx, "timeline")

	// A form without its CSRF token is refused.
	eval[bool](t, ctx, `document.querySelector('form[action$="/ack"] input[name=csrf]').remove(); true`)
	do(t, ctx, chromedp.Click(chromedp.CSS(`[data-testid="ack"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="message"]`)))
	msg := text(t, ctx, `[data-testid="message"]`)
	time.Sleep(time.Second)
	if !contains(mine.openIDs(), id) {
		t.Fatalf("a form without its CSRF token acknowledged %s (%q)", id, msg)
	}

	// Acknowledge: the ladder stops. Before, its next step is scheduled
	// (else the check after would prove nothing).
	rdb := rds.Client(t)
	if !stepScheduled(t, rdb, id) {
		t.Fatalf("escalation %s has no next step scheduled before its acknowledgement", id)
	}
	do(t, ctx,
		chromedp.Navigate(admin+"/console/escalations/"+id),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="ack"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="ack"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)),
	)
	var acked string
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(acked, op); {
		if time.Now().After(deadline) {
			t.Fatalf("acknowledgement not applied: %q; stderr:\n%s", acked, tail(errOut.String()))
		}
		time.Sleep(300 * time.Millisecond)
		do(t, ctx, chromedp.Navigate(admin+"/console/escalations/"+id), chromedp.WaitVisible(chromedp.CSS(`[data-testid="state"]`)))
		acked = eval[string](t, ctx, `(document.querySelector('[data-testid="acked"]')||{textContent:""}).textContent`)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="ack"]').length`); n != 0 {
		t.Fatal("an acknowledged escalation still offers the acknowledge button")
	}
	// Its notifications, by contact id, channel and outcome.
	if n := eval[int](t, ctx, `Array.from(document.querySelectorAll('[data-testid="outcome"]')).filter(e => e.textContent === "sent").length`); n == 0 {
		t.Fatalf("the timeline lists no sent notification:\n%s", eval[string](t, ctx, `document.querySelector('main').innerText`))
	}
	if contains(mine.openIDs(), id) {
		t.Fatalf("acknowledged escalation %s still open", id)
	}
	// No further step will notify anyone: its step timer is gone.
	if stepScheduled(t, rdb, id) {
		t.Fatalf("acknowledged escalation %s still has its next step scheduled: the ladder did not stop", id)
	}
	if !strings.Contains(errOut.String(), `operator=`+op) {
		t.Errorf("the log does not record the operator of the acknowledgement")
	}

	// A note: one with a phone number is refused, a plain one is shown on
	// the timeline with the operator.
	do(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#note"), "llamar al 600 000 000"),
		chromedp.Click(chromedp.CSS(`[data-testid="add-note"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="note-error"]`)),
	)
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="note"]').length`); n != 0 {
		t.Fatalf("a note with a phone number was added (%d notes)", n)
	}
	const noteText = "Patrulla avisada; revisar en el cambio de turno"
	do(t, ctx,
		chromedp.Navigate(admin+"/console/escalations/"+id),
		chromedp.WaitVisible(chromedp.CSS("#note")),
		chromedp.SendKeys(chromedp.CSS("#note"), noteText),
		chromedp.Click(chromedp.CSS(`[data-testid="add-note"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="note"]`)),
	)
	if note := text(t, ctx, `[data-testid="note"]`); !strings.Contains(note, noteText) || !strings.Contains(note, op) {
		t.Fatalf("the note on the timeline: %q", note)
	}
	screenshot(t, ctx, "acknowledged")

	// The history finds it by case reference, acknowledged by the operator.
	do(t, ctx,
		chromedp.Navigate(admin+"/console/history"),
		chromedp.WaitVisible(chromedp.CSS("#case")),
		chromedp.SendKeys(chromedp.CSS("#case"), "C-HER-0001"),
		chromedp.Click(chromedp.CSS("form.search button")),
	)
	// The unfiltered page lists the escalation too: wait for the search's
	// own page before reading its row (else the row read may be the old
	// page's, gone mid-read: "No node with given id found").
	for deadline := time.Now().Add(devWait); ; time.Sleep(50 * time.Millisecond) {
		// An evaluation may meet the navigation itself: an error is a "not yet".
		loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`location.search.includes("case=C-HER-0001") && document.readyState === "complete"`))
		if err == nil && loaded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the history search did not load its page (%v)", err)
		}
	}
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS(`tr[data-escalation="`+id+`"]`)))
	if row := text(t, ctx, `tr[data-escalation="`+id+`"]`); !strings.Contains(row, op) {
		t.Fatalf("history row of %s: %q", id, row)
	}
	screenshot(t, ctx, "history")

	// Another agency's escalation: 404, as an unknown one.
	do(t, ctx, chromedp.Navigate(admin+"/console/escalations/"+otherIDs[0]), chromedp.WaitVisible(chromedp.CSS(`[data-testid="message"]`)))
	if code, _ := mine.get("/console/escalations/" + otherIDs[0]); code != http.StatusNotFound {
		t.Fatalf("another agency's escalation: %d, want 404", code)
	}
	if code, _ := mine.get("/console/escalations/" + id); code != http.StatusOK {
		t.Fatalf("own escalation: %d", code)
	}

	// A silence on the unit's cases holds back the rest of the scenario's
	// non-critical alerts, and not its critical ones.
	do(t, ctx,
		chromedp.Navigate(admin+"/console/silences"),
		chromedp.WaitVisible(chromedp.CSS("#reason")),
		chromedp.SendKeys(chromedp.CSS("#reason"), "prueba de silencio"),
		chromedp.Click(chromedp.CSS(`[data-testid="create-silence"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="held-count"]`)),
	)
	before = mine.openIDs()
	publishFile(t, brokers, demoLines(t, 22, 1000))
	var held int
	for deadline := time.Now().Add(20 * time.Second); held == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the silence held back nothing; stderr:\n%s", tail(errOut.String()))
		}
		time.Sleep(300 * time.Millisecond)
		do(t, ctx, chromedp.Navigate(admin+"/console/silences"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="held-count"]`)))
		held, _ = strconv.Atoi(text(t, ctx, `[data-testid="held-count"]`))
	}
	screenshot(t, ctx, "silences")
	// A held-back alert's page names the silence; the history lists it.
	silence := eval[string](t, ctx, `document.querySelector('[data-silence]').dataset.silence`)
	do(t, ctx, chromedp.Click(chromedp.CSS(`[data-testid="held-alert"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="held-by"]`)))
	if by := text(t, ctx, `[data-testid="held-by"]`); !strings.HasPrefix(by, silence+" ") {
		t.Fatalf("held alert's page: held by %q, want silence %s", by, silence)
	}
	screenshot(t, ctx, "held")
	do(t, ctx, chromedp.Navigate(admin+"/console/history"), chromedp.WaitVisible(chromedp.CSS(`tr[data-held="`+silence+`"]`)))
	// The note and the silence are on the audit trail with the operator.
	audit := map[string]bool{}
	for _, m := range readAll(t, []string{brokers}, dispatcher.TopicResults) {
		var r dispatcher.Result
		if json.Unmarshal(m.Value, &r) == nil && r.Operator == op {
			audit[r.Outcome] = true
		}
	}
	for _, o := range []string{dispatcher.OutcomeAcked, dispatcher.OutcomeNote, dispatcher.OutcomeSilenceCreated} {
		if !audit[o] {
			t.Errorf("no %s audit record with operator %s on %s", o, op, dispatcher.TopicResults)
		}
	}
	var newCritical int
	for deadline := time.Now().Add(20 * time.Second); newCritical == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("no critical escalation got through the silence; stderr:\n%s", tail(errOut.String()))
		}
		time.Sleep(300 * time.Millisecond)
		do(t, ctx, chromedp.Navigate(admin+"/console/"), chromedp.WaitVisible(chromedp.CSS("#open-rows")))
		for _, x := range mine.openIDs() {
			if contains(before, x) {
				continue
			}
			if eval[int](t, ctx, `document.querySelectorAll('#open-rows tr[data-escalation="`+x+`"].critical').length`) != 1 {
				t.Fatalf("a non-critical escalation %s got through the silence", x)
			}
			newCritical++
		}
	}
}

// stepScheduled reports whether an escalation's next step (or repeat) is
// in the escalation timer sets, whatever their sharding.
func stepScheduled(t *testing.T, rdb *redis.Client, alertID string) bool {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*timers:escalation*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		members, err := rdb.ZRange(ctx, k, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			if strings.HasSuffix(m, "|"+alertID) {
				return true
			}
		}
	}
	return false
}
