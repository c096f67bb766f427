package console

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/rules"
)

// NoteStore is where notes are kept (dispatcher.EscalationStore).
type NoteStore interface {
	AddNote(ctx context.Context, e *dispatcher.Escalation, n dispatcher.Note) error
	Notes(ctx context.Context, e *dispatcher.Escalation) ([]dispatcher.Note, error)
}

// Auditor publishes operator actions on the audit trail
// (dispatcher.ConsoleAudit).
type Auditor interface {
	Note(ctx context.Context, e *dispatcher.Escalation, n dispatcher.Note) error
	Silence(ctx context.Context, s *dispatcher.Silence, outcome, operator string, at time.Time) error
}

// noteMaxLen bounds a note, in characters.
const noteMaxLen = 500

// notes is the store's note reader, when it has one.
func (c *Console) notes() (NoteStore, bool) {
	ns, ok := c.Store.(NoteStore)
	return ns, ok && c.Audit != nil
}

// addNote serves POST /console/escalations/{id}/notes: an operator (not a
// viewer) adds a note to an escalation in scope. It is published on the
// audit trail before it is stored, so a note shown always has its record
// (a failure in between leaves a record of a note the operator was told
// to send again).
func (c *Console) addNote(w http.ResponseWriter, r *http.Request, s *session, op *rules.Operator) {
	e, agency, l, ok := c.actOn(w, r, s, op, 8192, "note")
	if !ok {
		return
	}
	text := strings.TrimSpace(r.PostFormValue("note"))
	switch {
	case text == "" || utf8.RuneCountInString(text) > noteMaxLen || !utf8.ValidString(text):
		c.renderTimeline(w, r, s, op, e, http.StatusUnprocessableEntity, "note_invalid")
		return
	case looksPersonal(text):
		l.Warn("console: note refused: it looks like it holds personal data")
		c.renderTimeline(w, r, s, op, e, http.StatusUnprocessableEntity, "note_personal")
		return
	}
	ns, _ := c.notes()
	if have, err := ns.Notes(r.Context(), e); err == nil && len(have) >= dispatcher.MaxNotes {
		c.renderTimeline(w, r, s, op, e, http.StatusUnprocessableEntity, "note_too_many")
		return
	}
	n := dispatcher.Note{ID: randomToken()[:16], Operator: op.ID, Agency: agency, Text: text, At: c.Now().UTC()}
	if err := c.Audit.Note(r.Context(), e, n); err != nil {
		l.WithError(err).Error("console: publishing the note's audit record failed")
		http.Error(w, "temporarily unavailable, retry", http.StatusServiceUnavailable)
		return
	}
	err := ns.AddNote(r.Context(), e, n)
	switch {
	case errors.Is(err, dispatcher.ErrTooManyNotes):
		c.renderTimeline(w, r, s, op, e, http.StatusUnprocessableEntity, "note_too_many")
		return
	case errors.Is(err, dispatcher.ErrNoEscalation):
		c.notFound(w, s, op)
		return
	case err != nil:
		l.WithError(err).Error("console: storing the note failed")
		http.Error(w, "temporarily unavailable, retry", http.StatusServiceUnavailable)
		return
	}
	l.WithField("note_id", n.ID).Info("console: note added")
	http.Redirect(w, r, Prefix+"escalations/"+e.ID+"?flash=note#notes", http.StatusSeeOther)
}
