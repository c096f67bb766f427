package console

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/rules"
)

// Silences is what the console needs of the silence store
// (dispatcher.SilenceStore).
type Silences interface {
	Save(ctx context.Context, s *dispatcher.Silence) error
	Get(ctx context.Context, id string) (*dispatcher.Silence, error)
	List(ctx context.Context, now time.Time) ([]*dispatcher.Silence, error)
	Held(ctx context.Context, id string) ([]dispatcher.HeldAlert, error)
}

const (
	silenceMaxReason = 200
	localTimeLayout  = "2006-01-02T15:04" // <input type="datetime-local">
)

var muniRe = regexp.MustCompile(`^[0-9]{5}$`)

type silenceView struct {
	S            *dispatcher.Silence
	Starts, Ends string
	StateKey     string
	CanExpire    bool
	Held         []dispatcher.HeldAlert
}

type silencesData struct {
	base
	Silences     []silenceView
	Agencies     []string
	Rules        []rules.Rule
	DefaultStart string
	DefaultEnd   string
	Error        string
}

func inSilenceScope(s *dispatcher.Silence, op *rules.Operator) bool {
	for _, a := range op.Scope() {
		if s.Agency == a {
			return true
		}
	}
	return false
}

func (c *Console) silencesPage(w http.ResponseWriter, r *http.Request, s *session, op *rules.Operator) {
	c.renderSilences(w, r, s, op, http.StatusOK, "")
}

func (c *Console) renderSilences(w http.ResponseWriter, r *http.Request, s *session, op *rules.Operator, status int, errKey string) {
	now := c.Now()
	all, err := c.Silences.List(r.Context(), now)
	if err != nil {
		c.Log.WithError(err).Error("console: listing silences failed")
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	zone := c.zone(op)
	d := silencesData{base: c.base(c.lang(s, op), op, s.CSRF, "silences"), Agencies: op.Scope(), Rules: c.Rules().Rules,
		DefaultStart: now.In(zone).Format(localTimeLayout), DefaultEnd: now.Add(2 * time.Hour).In(zone).Format(localTimeLayout)}
	if errKey != "" {
		d.Error = d.T(errKey)
	}
	for _, x := range all {
		if !inSilenceScope(x, op) {
			continue
		}
		v := silenceView{S: x, Starts: x.StartsAt.In(zone).Format("02/01/2006 15:04"), Ends: x.EndsAt.In(zone).Format("02/01/2006 15:04"),
			StateKey: silenceState(x, now)}
		v.CanExpire = v.StateKey != "silence_ended" && op.CanAck()
		v.Held, _ = c.Silences.Held(r.Context(), x.ID)
		d.Silences = append(d.Silences, v)
	}
	c.render(w, status, "silences", d)
}

// matchesOnlyCritical reports whether every rule a silence on rule
// ("" any) could match is critical: such a silence would hold back
// nothing, and is refused so nobody believes a critical alert silenced.
func matchesOnlyCritical(cfg *rules.Config, rule string) bool {
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		if (rule == "" || r.ID == rule) && !r.IsCritical() && r.Severity != "critical" {
			return false
		}
	}
	return true
}

// createSilence serves POST /console/silences.
func (c *Console) createSilence(w http.ResponseWriter, r *http.Request, s *session, op *rules.Operator) {
	r.Body = http.MaxBytesReader(w, r.Body, 8192)
	if !validCSRF(r.PostFormValue("csrf"), s.CSRF) {
		c.refuseCSRF(w, r, s, op)
		return
	}
	if !op.CanAck() {
		c.renderMessage(w, http.StatusForbidden, c.base(c.lang(s, op), op, s.CSRF, ""), "viewer")
		return
	}
	cfg := c.Rules()
	zone := c.zone(op)
	sil := &dispatcher.Silence{ID: randomToken()[:16], Agency: r.PostFormValue("agency"), Rule: r.PostFormValue("rule"),
		Municipality: strings.TrimSpace(r.PostFormValue("municipality")), Reason: strings.TrimSpace(r.PostFormValue("reason")),
		Author: op.ID, CreatedAt: c.Now().UTC()}
	starts, err1 := time.ParseInLocation(localTimeLayout, r.PostFormValue("starts"), zone)
	ends, err2 := time.ParseInLocation(localTimeLayout, r.PostFormValue("ends"), zone)
	_, ruleKnown := ruleByID(cfg, sil.Rule)
	switch {
	case !inSilenceScope(sil, op):
		c.notFound(w, s, op)
		return
	case sil.Rule != "" && !ruleKnown, sil.Municipality != "" && !muniRe.MatchString(sil.Municipality),
		err1 != nil, err2 != nil, !ends.After(starts), sil.Reason == "", len(sil.Reason) > silenceMaxReason:
		c.renderSilences(w, r, s, op, http.StatusUnprocessableEntity, "silence_invalid")
		return
	case looksPersonal(sil.Reason):
		// Not echoed back: it may hold the very data it was refused for.
		c.renderSilences(w, r, s, op, http.StatusUnprocessableEntity, "silence_personal")
		return
	case matchesOnlyCritical(cfg, sil.Rule):
		c.Log.WithFields(logrus.Fields{"operator": op.ID, "rule": sil.Rule}).Warn("console: silence of critical rules only refused")
		c.renderSilences(w, r, s, op, http.StatusUnprocessableEntity, "silence_critical")
		return
	}
	sil.StartsAt, sil.EndsAt = starts.UTC(), ends.UTC()
	// Published before it is saved: no silence holds anything back
	// without its audit record.
	if err := c.Audit.Silence(r.Context(), sil, dispatcher.OutcomeSilenceCreated, op.ID, sil.CreatedAt); err != nil {
		c.Log.WithError(err).WithField("operator", op.ID).Error("console: publishing the silence's audit record failed")
		http.Error(w, "temporarily unavailable, retry", http.StatusServiceUnavailable)
		return
	}
	if err := c.Silences.Save(r.Context(), sil); err != nil {
		c.Log.WithError(err).Error("console: saving a silence failed")
		http.Error(w, "temporarily unavailable, retry", http.StatusServiceUnavailable)
		return
	}
	c.Log.WithFields(logrus.Fields{"operator": op.ID, "silence_id": sil.ID, "agency": sil.Agency, "rule": sil.Rule,
		"municipality": sil.Municipality, "starts_at": sil.StartsAt, "ends_at": sil.EndsAt}).Info("console: silence created")
	http.Redirect(w, r, Prefix+"silences", http.StatusSeeOther)
}

func ruleByID(cfg *rules.Config, id string) (*rules.Rule, bool) {
	for i := range cfg.Rules {
		if cfg.Rules[i].ID == id {
			return &cfg.Rules[i], true
		}
	}
	return nil, false
}

// expireSilence serves POST /console/silences/{id}/expire: it ends now.
func (c *Console) expireSilence(w http.ResponseWriter, r *http.Request, s *session, op *rules.Operator) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if !validCSRF(r.PostFormValue("csrf"), s.CSRF) {
		c.refuseCSRF(w, r, s, op)
		return
	}
	sil, err := c.Silences.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, dispatcher.ErrNoSilence) || err == nil && !inSilenceScope(sil, op) {
		c.notFound(w, s, op)
		return
	}
	if err != nil {
		c.Log.WithError(err).Error("console: reading a silence failed")
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	if !op.CanAck() {
		c.renderMessage(w, http.StatusForbidden, c.base(c.lang(s, op), op, s.CSRF, ""), "viewer")
		return
	}
	now := c.Now().UTC()
	if now.Before(sil.EndsAt) {
		sil.EndsAt, sil.ExpiredBy = now, op.ID
		if sil.StartsAt.After(now) {
			sil.StartsAt = now
		}
		if err := c.Audit.Silence(r.Context(), sil, dispatcher.OutcomeSilenceEnded, op.ID, now); err != nil {
			c.Log.WithError(err).WithField("operator", op.ID).Error("console: publishing the silence's audit record failed")
			http.Error(w, "temporarily unavailable, retry", http.StatusServiceUnavailable)
			return
		}
		if err := c.Silences.Save(r.Context(), sil); err != nil {
			c.Log.WithError(err).Error("console: saving a silence failed")
			http.Error(w, "temporarily unavailable, retry", http.StatusServiceUnavailable)
			return
		}
		c.Log.WithFields(logrus.Fields{"operator": op.ID, "silence_id": sil.ID}).Info("console: silence expired")
	}
	http.Redirect(w, r, Prefix+"silences", http.StatusSeeOther)
}
