package console

import (
	"context"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/viogen-alerts/dispatcher/dispatcher"
	"github.com/viogen-alerts/dispatcher/rules"
)

// Recent is what the history page reads (dispatcher.EscalationStore).
type Recent interface {
	Recent(ctx context.Context, since time.Time, limit int64) ([]*dispatcher.Escalation, error)
}

var caseQueryRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

type historyRow struct {
	ID, CaseRef, Severity, Rule, StateKey, Opened, AckedBy string
	// HeldBy is the silence that held back an alert (which opened no
	// escalation); Link is the row's page.
	HeldBy, Link string

	at time.Time
}

func containsFold(s, lowerSub string) bool {
	return lowerSub == "" || strings.Contains(strings.ToLower(s), lowerSub)
}

type historyData struct {
	base
	Query string
	Rows  []historyRow
	Error string
}

// historyPage lists the escalations of the last 7 days in the operator's
// scope and the alerts silences held back, newest first; ?case= keeps
// those whose case reference contains it (case-insensitive).
func (c *Console) historyPage(w http.ResponseWriter, r *http.Request, s *session, op *rules.Operator) {
	rc, ok := c.Store.(Recent)
	if !ok {
		c.notFound(w, s, op)
		return
	}
	d := historyData{base: c.base(c.lang(s, op), op, s.CSRF, "history"), Query: strings.TrimSpace(r.URL.Query().Get("case"))}
	if d.Query != "" && !caseQueryRe.MatchString(d.Query) {
		d.Error = d.T("search_invalid")
		c.render(w, http.StatusBadRequest, "history", d)
		return
	}
	now := c.Now()
	all, err := rc.Recent(r.Context(), now.Add(-dispatcher.RecentWindow), openLimit)
	if err != nil {
		c.Log.WithError(err).Error("console: listing recent escalations failed")
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	q := strings.ToLower(d.Query)
	zone := c.zone(op)
	held, err := c.heldRows(r.Context(), op, now.Add(-dispatcher.RecentWindow), q, zone)
	if err != nil {
		c.Log.WithError(err).Error("console: listing held-back alerts failed")
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	for _, e := range all {
		if _, ok := inScope(e, op); !ok || !containsFold(e.CaseRef, q) {
			continue
		}
		row := historyRow{ID: e.ID, CaseRef: e.CaseRef, Severity: e.Alert.Severity, Rule: e.Alert.Rule, Link: Prefix + "escalations/" + e.ID,
			StateKey: "state_" + e.State, Opened: e.OpenedAt.In(zone).Format("02/01/2006 15:04"), at: e.OpenedAt}
		if e.AckedOperator != "" {
			row.AckedBy = e.AckedOperator
		} else {
			row.AckedBy = e.AckedBy
		}
		d.Rows = append(d.Rows, row)
	}
	d.Rows = append(d.Rows, held...)
	sort.SliceStable(d.Rows, func(i, j int) bool { return d.Rows[i].at.After(d.Rows[j].at) })
	c.render(w, http.StatusOK, "history", d)
}
