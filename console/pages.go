package console

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/rules"
)

type pages struct{ t map[string]*template.Template }

var pageNames = []string{"login", "open", "timeline", "message", "silences", "history", "held"}

func mustParsePages() *pages {
	p := &pages{t: map[string]*template.Template{}}
	for _, n := range pageNames {
		p.t[n] = template.Must(template.New("layout.html").Funcs(template.FuncMap{
			"inc": func(i int) int { return i + 1 },
		}).ParseFS(templateFS, "templates/layout.html", "templates/"+n+".html"))
	}
	return p
}

// base is what every page's layout needs.
type base struct {
	Lang, Page, CSRF string
	Langs            []string
	Operator         *rules.Operator
	Zone             string
	PollMS           int64
}

// T translates a message key into the page's language.
func (b base) T(key string) string { return translate(b.Lang, key) }

func (c *Console) base(lang string, op *rules.Operator, csrf, page string) base {
	return base{Lang: lang, Page: page, CSRF: csrf, Langs: langs, Operator: op,
		Zone: c.zone(op).String(), PollMS: c.PollInterval.Milliseconds()}
}

// lang is the session's choice, else the operator's agency locale.
func (c *Console) lang(s *session, op *rules.Operator) string {
	if s != nil && knownLang(s.Lang) {
		return s.Lang
	}
	if op != nil {
		if a, ok := c.Rules().Agency(op.Agency); ok && a.Locale != "" {
			return langOf(a.Locale)
		}
	}
	return langOf(c.Rules().Locale)
}

// zone is where an operator is shown deadlines and times: the zone of
// the operator's agency (its time_zone, else the configuration's); the
// configuration's before login.
func (c *Console) zone(op *rules.Operator) *time.Location {
	cfg := c.Rules()
	if op != nil {
		if a, ok := cfg.Agency(op.Agency); ok && a.Location() != nil {
			return a.Location()
		}
	}
	if l := cfg.Location(); l != nil {
		return l
	}
	return time.UTC
}

func (c *Console) render(w http.ResponseWriter, status int, page string, data any) {
	var buf bytes.Buffer
	if err := c.pages.t[page].Execute(&buf, data); err != nil {
		c.Log.WithError(err).WithField("page", page).Error("console: rendering failed")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type messageData struct {
	base
	Message string
}

func (c *Console) renderMessage(w http.ResponseWriter, status int, b base, key string) {
	b.Page = "message"
	c.render(w, status, "message", messageData{base: b, Message: b.T(key)})
}

func (c *Console) notFound(w http.ResponseWriter, s *session, op *rules.Operator) {
	c.render(w, http.StatusNotFound, "message", messageData{base: c.base(c.lang(s, op), op, s.CSRF, "message"), Message: translate(c.lang(s, op), "not_found")})
}

// inScope reports whether the escalation notified one of the operator's
// agencies, and which.
func inScope(e *dispatcher.Escalation, op *rules.Operator) (string, bool) {
	for _, a := range op.Scope() {
		if e.NotifiedAgency(a) {
			return a, true
		}
	}
	return "", false
}

// row is one open escalation as listed: ids, rule and times only, never
// anything of the people in the case.
type row struct {
	ID, CaseRef, Severity, Rule, Due, DueISO string
	Step, Round                              int
	Critical                                 bool
}

type openData struct {
	base
	Rows  []row
	Flash string
}

var severityRank = map[string]int{"critical": 0, "error": 1, "warning": 2, "info": 3}

func rank(e *dispatcher.Escalation) int {
	if e.Alert.Critical {
		return -1
	}
	if r, ok := severityRank[e.Alert.Severity]; ok {
		return r
	}
	return 4
}

// mostUrgentFirst orders by severity (critical rules first), then the
// nearest deadline (none last), then the oldest.
func mostUrgentFirst(es []*dispatcher.Escalation) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if a.DueAt.IsZero() != b.DueAt.IsZero() {
			return !a.DueAt.IsZero()
		}
		if !a.DueAt.Equal(b.DueAt) {
			return a.DueAt.Before(b.DueAt)
		}
		return a.OpenedAt.Before(b.OpenedAt)
	})
}

func (c *Console) openRows(r *http.Request, op *rules.Operator) ([]row, error) {
	all, err := c.Store.Open(r.Context(), openLimit)
	if err != nil {
		return nil, err
	}
	var mine []*dispatcher.Escalation
	for _, e := range all {
		if _, ok := inScope(e, op); ok && e.State == dispatcher.EscOpen {
			mine = append(mine, e)
		}
	}
	mostUrgentFirst(mine)
	zone := c.zone(op)
	rows := make([]row, 0, len(mine))
	for _, e := range mine {
		rw := row{ID: e.ID, CaseRef: e.CaseRef, Severity: e.Alert.Severity, Rule: e.Alert.Rule,
			Step: e.Step + 1, Round: e.Round + 1, Critical: e.Alert.Critical || e.Alert.Severity == "critical"}
		if !e.DueAt.IsZero() {
			rw.Due, rw.DueISO = e.DueAt.In(zone).Format("02/01/2006 15:04"), e.DueAt.UTC().Format(time.RFC3339)
		}
		rows = append(rows, rw)
	}
	return rows, nil
}

// openPage lists the open escalations of the operator's scope, most
// urgent first. ?partial=1 answers the table body only: the page's script
// polls it to show new escalations without a reload.
func (c *Console) openPage(w http.ResponseWriter, r *http.Request, s *session, op *rules.Operator) {
	rows, err := c.openRows(r, op)
	if err != nil {
		c.Log.WithError(err).WithField("operator", op.ID).Error("console: listing open escalations failed")
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	d := openData{base: c.base(c.lang(s, op), op, s.CSRF, "open"), Rows: rows}
	if r.URL.Query().Get("partial") != "" {
		var buf bytes.Buffer
		if err := c.pages.t["open"].ExecuteTemplate(&buf, "rows", d); err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(buf.Bytes())
		return
	}
	c.render(w, http.StatusOK, "open", d)
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// find resolves an escalation id ("alert" or "case|alert") as the ack API
// does; an escalation outside the operator's scope is not found.
func (c *Console) find(r *http.Request, op *rules.Operator) (*dispatcher.Escalation, string, error) {
	id := r.PathValue("id")
	var e *dispatcher.Escalation
	var err error
	if cs, al, ok := dispatcher.ParseEscRef(id); ok {
		if !idRe.MatchString(cs) || !idRe.MatchString(al) {
			return nil, "", dispatcher.ErrNoEscalation
		}
		e, err = c.Store.Get(r.Context(), cs, al)
	} else {
		if !idRe.MatchString(id) {
			return nil, "", dispatcher.ErrNoEscalation
		}
		e, err = c.Store.ByID(r.Context(), id)
	}
	if err != nil {
		return nil, "", err
	}
	agency, ok := inScope(e, op)
	if !ok {
		c.Log.WithFields(logrus.Fields{"operator": op.ID, "escalation_id": e.ID}).Warn("console: escalation outside the operator's scope answered as unknown")
		return nil, "", dispatcher.ErrNoEscalation
	}
	return e, agency, nil
}

type stepView struct {
	N                int
	Targets          []rules.TargetSpec
	AckWithin        string
	Repeat           int
	Current, Skipped bool
	Reached          bool
}

// deliveryReader is the store's read of an escalation's notifications
// (dispatcher.EscalationStore.Deliveries).
type deliveryReader interface {
	Deliveries(ctx context.Context, cfg *rules.Config, e *dispatcher.Escalation) ([]dispatcher.Delivery, error)
}

type deliveryView struct {
	dispatcher.Delivery
	Step, Round int
	At          string
	Receipts    string
}

type timelineData struct {
	base
	Deliveries                []deliveryView
	E                         *dispatcher.Escalation
	Steps                     []stepView
	Opened, Occurred, AckedAt string
	StateKey                  string
	CanAck                    bool
	Flash                     string
	Notes                     []noteView
	// CanNote offers the note form; NoteError says why a note was refused.
	// A refused note's text is not shown back: it may hold the very
	// personal data it was refused for.
	CanNote   bool
	NoteError string
}

type noteView struct {
	dispatcher.Note
	When string
}

func (c *Console) timelinePage(w http.ResponseWriter, r *http.Request, s *session, op *rules.Operator) {
	e, _, err := c.find(r, op)
	if errors.Is(err, dispatcher.ErrNoEscalation) {
		c.notFound(w, s, op)
		return
	}
	if err != nil {
		c.Log.WithError(err).Error("console: escalation lookup failed")
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	c.renderTimeline(w, r, s, op, e, http.StatusOK, "")
}

// renderTimeline shows e's timeline; errKey, when set, is why the note
// posted was refused.
func (c *Console) renderTimeline(w http.ResponseWriter, r *http.Request, s *session, op *rules.Operator, e *dispatcher.Escalation, status int, errKey string) {
	zone := c.zone(op)
	f := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(zone).Format("02/01/2006 15:04:05")
	}
	d := timelineData{base: c.base(c.lang(s, op), op, s.CSRF, "timeline"), E: e,
		Opened: f(e.OpenedAt), Occurred: f(e.Alert.OccurredAt), AckedAt: f(e.AckedAt),
		StateKey: "state_" + e.State, CanAck: e.State == dispatcher.EscOpen && op.CanAck()}
	if errKey != "" {
		d.NoteError = d.T(errKey)
	}
	c.addNotes(r.Context(), &d, op, f)
	skipped := map[int]bool{}
	for _, i := range e.Skipped {
		skipped[i] = true
	}
	for i, st := range e.Alert.Policy.Steps {
		v := stepView{N: i + 1, Targets: st.Notify, Repeat: st.Repeat, Skipped: skipped[i],
			Current: i == e.Step && e.State == dispatcher.EscOpen, Reached: i <= e.Step}
		if st.AckWithin > 0 {
			v.AckWithin = st.AckWithin.Std().String()
		}
		d.Steps = append(d.Steps, v)
	}
	if dr, ok := c.Store.(deliveryReader); ok {
		ds, err := dr.Deliveries(r.Context(), c.Rules(), e)
		if err != nil {
			c.Log.WithError(err).Error("console: reading deliveries failed")
		}
		for _, x := range ds {
			d.Deliveries = append(d.Deliveries, deliveryView{Delivery: x, Step: x.Step + 1, Round: x.Round + 1, At: f(x.At),
				Receipts: strings.Join(x.Receipts, ", ")})
		}
	}
	switch r.URL.Query().Get("flash") {
	case "ack":
		d.Flash = d.T("ack_sent")
	case "not_open":
		d.Flash = d.T("not_open")
	case "note":
		d.Flash = d.T("note_added")
	}
	c.render(w, status, "timeline", d)
}

// addNotes lists e's notes on the page and offers the form to operators.
func (c *Console) addNotes(ctx context.Context, d *timelineData, op *rules.Operator, f func(time.Time) string) {
	ns, ok := c.notes()
	if !ok {
		return
	}
	d.CanNote = op.CanAck()
	notes, err := ns.Notes(ctx, d.E)
	if err != nil {
		c.Log.WithError(err).Error("console: reading notes failed")
	}
	for _, n := range notes {
		d.Notes = append(d.Notes, noteView{Note: n, When: f(n.At)})
	}
}

// actOn starts an operator's POST on an escalation: the body bounded to
// limit bytes, the CSRF token checked, the escalation found in scope
// (404 otherwise) and a viewer refused (403). ok is false when it has
// answered already; l logs with the operator and the escalation.
func (c *Console) actOn(w http.ResponseWriter, r *http.Request, s *session, op *rules.Operator, limit int64, what string) (e *dispatcher.Escalation, agency string, l logrus.FieldLogger, ok bool) {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if !validCSRF(r.PostFormValue("csrf"), s.CSRF) {
		c.refuseCSRF(w, r, s, op)
		return nil, "", nil, false
	}
	e, agency, err := c.find(r, op)
	if errors.Is(err, dispatcher.ErrNoEscalation) {
		c.notFound(w, s, op)
		return nil, "", nil, false
	}
	if err != nil {
		c.Log.WithError(err).Error("console: escalation lookup failed")
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return nil, "", nil, false
	}
	l = c.Log.WithFields(logrus.Fields{"operator": op.ID, "agency": agency, "escalation_id": e.ID, "case_ref": e.CaseRef})
	if !op.CanAck() {
		l.Warn("console: " + what + " by a viewer refused")
		c.renderMessage(w, http.StatusForbidden, c.base(c.lang(s, op), op, s.CSRF, ""), "viewer")
		return nil, "", nil, false
	}
	return e, agency, l, true
}

// ack acknowledges through the same Acknowledger as the ack API, as the
// operator: the decide stage applies it in order with the case's events.
func (c *Console) ack(w http.ResponseWriter, r *http.Request, s *session, op *rules.Operator) {
	e, agency, l, ok := c.actOn(w, r, s, op, 4096, "acknowledgement")
	if !ok {
		return
	}
	l = l.WithField("via", ViaConsole)
	target := Prefix + "escalations/" + e.ID
	if e.State != dispatcher.EscOpen {
		http.Redirect(w, r, target+"?flash=not_open", http.StatusSeeOther)
		return
	}
	if err := c.Acks.AcknowledgeAs(r.Context(), e, agency, ViaConsole, op.ID); err != nil {
		l.WithError(err).Error("console: publishing the acknowledgement failed")
		http.Error(w, "temporarily unavailable, retry", http.StatusServiceUnavailable)
		return
	}
	l.Info("acknowledgement accepted")
	http.Redirect(w, r, target+"?flash=ack", http.StatusSeeOther)
}
