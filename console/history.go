package console

import (
	"context"
	"net/http"
	"regexp"
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
}

type historyData struct {
	base
	Query string
	Rows  []historyRow
	Error string
}

// historyPage lists the escalations of the last 7 days in the operator's
// scope, newest first; ?case= keeps those whose case reference contains
// it (case-insensitive).
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
	for i := len(all) - 1; i >= 0; i-- {
		e := all[i]
		if _, ok := inScope(e, op); !ok || q != "" && !strings.Contains(strings.ToLower(e.CaseRef), q) {
			continue
		}
		row := historyRow{ID: e.ID, CaseRef: e.CaseRef, Severity: e.Alert.Severity, Rule: e.Alert.Rule,
			StateKey: "state_" + e.State, Opened: e.OpenedAt.In(zone).Format("02/01/2006 15:04")}
		if e.AckedOperator != "" {
			row.AckedBy = e.AckedOperator
		} else {
			row.AckedBy = e.AckedBy
		}
		d.Rows = append(d.Rows, row)
	}
	c.render(w, http.StatusOK, "history", d)
}
