// Package console is the alert console: server-rendered pages, served by
// the dispatcher's admin HTTP server, where named operators of an agency
// see the escalations that notified their agency (and the agencies they
// watch) and acknowledge them. It sits above the engine: it reads
// escalations through the EscalationStore and acknowledges through the
// same Acknowledger as the acknowledgement API; the engine never imports
// it. See docs/console.md.
package console

import (
	"context"
	"embed"
	"io"
	"io/fs"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/rules"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Store is what the console reads of escalations.
type Store interface {
	Open(ctx context.Context, limit int64) ([]*dispatcher.Escalation, error)
	ByID(ctx context.Context, alertID string) (*dispatcher.Escalation, error)
	Get(ctx context.Context, caseRef, alertID string) (*dispatcher.Escalation, error)
}

// Acker publishes an acknowledgement (dispatcher.Acknowledger).
type Acker interface {
	AcknowledgeAs(ctx context.Context, e *dispatcher.Escalation, agency, via, operator string) error
}

// Console serves the pages under Prefix.
type Console struct {
	// Rules supplies the configuration in use (operators, agencies).
	Rules func() *rules.Config
	Store Store
	Acks  Acker
	// Silences, when set with Audit, serves the silence pages.
	Silences Silences
	// Audit publishes notes and silences on the audit trail: without it
	// neither is served. Notes also need a Store that keeps them
	// (NoteStore).
	Audit Auditor
	// Extra operators, looked up after the configuration's: the made-up
	// ones of `dispatcher dev` (DevOperators).
	Extra []rules.Operator
	// Redis holds the sessions, so any replica serves any operator.
	Redis redis.UniversalClient
	Log   logrus.FieldLogger
	Now   func() time.Time
	// IdleTimeout ends a session unused this long (default 30 min);
	// MaxAge ends any session this old (default 12 h).
	IdleTimeout, MaxAge time.Duration
	// LoginLimit failed logins per LoginWindow, per client address and per
	// operator id, are allowed before 429 (default 5 per 10 min), counted
	// in Redis across replicas.
	LoginLimit  int
	LoginWindow time.Duration
	// PollInterval is how often the open list refreshes itself in the
	// browser (default 1 s: a new critical escalation shows within 2 s).
	PollInterval time.Duration

	once    sync.Once
	pages   *pages
	limiter *limiter
}

// Prefix is the console's URL path.
const Prefix = "/console/"

// Acknowledgements made in the console carry this channel (event.Ack.Via).
const ViaConsole = dispatcher.ViaConsole

const (
	requestTimeout = 10 * time.Second
	// openLimit caps the open escalations read per page (as the ack API).
	openLimit = 10000
)

func (c *Console) init() {
	c.once.Do(func() {
		if c.Now == nil {
			c.Now = time.Now
		}
		if c.Log == nil {
			l := logrus.New()
			l.Out = io.Discard
			c.Log = l
		}
		if c.IdleTimeout <= 0 {
			c.IdleTimeout = 30 * time.Minute
		}
		if c.MaxAge <= 0 {
			c.MaxAge = 12 * time.Hour
		}
		if c.LoginLimit <= 0 {
			c.LoginLimit = 5
		}
		if c.LoginWindow <= 0 {
			c.LoginWindow = 10 * time.Minute
		}
		if c.PollInterval <= 0 {
			c.PollInterval = time.Second
		}
		c.pages = mustParsePages()
		c.limiter = newLimiter(c.Redis, c.LoginLimit, c.LoginWindow, c.Log)
	})
}

// Register adds the console's routes to mux.
func (c *Console) Register(mux *http.ServeMux) {
	c.init()
	assets, _ := fs.Sub(assetFS, "assets")
	mux.Handle("GET "+Prefix+"assets/", c.headers(http.StripPrefix(Prefix+"assets/", http.FileServerFS(assets)), true))
	mux.Handle("GET "+Prefix+"login", c.headers(http.HandlerFunc(c.loginPage), false))
	mux.Handle("POST "+Prefix+"login", c.headers(http.HandlerFunc(c.login), false))
	mux.Handle("POST "+Prefix+"logout", c.headers(c.authed(c.logout), false))
	mux.Handle("GET "+Prefix+"{$}", c.headers(c.authed(c.openPage), false))
	mux.Handle("GET "+Prefix+"escalations/{id}", c.headers(c.authed(c.timelinePage), false))
	mux.Handle("POST "+Prefix+"escalations/{id}/ack", c.headers(c.authed(c.ack), false))
	if _, ok := c.notes(); ok {
		mux.Handle("POST "+Prefix+"escalations/{id}/notes", c.headers(c.authed(c.addNote), false))
	}
	mux.Handle("GET "+Prefix+"history", c.headers(c.authed(c.historyPage), false))
	if c.Silences != nil && c.Audit != nil {
		mux.Handle("GET "+Prefix+"silences", c.headers(c.authed(c.silencesPage), false))
		mux.Handle("POST "+Prefix+"silences", c.headers(c.authed(c.createSilence), false))
		mux.Handle("POST "+Prefix+"silences/{id}/expire", c.headers(c.authed(c.expireSilence), false))
		mux.Handle("GET "+Prefix+"silences/{id}/held/{alert}", c.headers(c.authed(c.heldPage), false))
	}
	mux.Handle("GET /console", http.RedirectHandler(Prefix, http.StatusMovedPermanently))
}

// operator finds an operator by id in the configuration, then in Extra.
func (c *Console) operator(id string) (*rules.Operator, bool) {
	if op, ok := c.Rules().Operator(id); ok {
		return op, true
	}
	for i := range c.Extra {
		if c.Extra[i].ID == id {
			return &c.Extra[i], true
		}
	}
	return nil, false
}

// headers sets the security headers of every console answer: no caching
// of pages that list case references, no framing, no third-party content.
func (c *Console) headers(h http.Handler, cacheable bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		if !cacheable {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}
