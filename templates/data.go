package templates

import "time"

// Data is everything a template may show. It has no personal field by
// construction: only opaque references, severity, level, action, deadline
// and institution names. Do not add fields that could identify a person.
type Data struct {
	AlertRef    string         // opaque alert id, e.g. "a3f9c2d1e8b74a10"
	CaseRef     string         // opaque case reference, e.g. "C-HER-0001"
	Severity    string         // info|warning|error|critical
	Level       string         // risk level name (bajo|medio|alto|extremo) or ""
	PrevLevel   string         // previous risk level name or ""
	EventType   string         // event type that caused the alert, e.g. "protection_order.expired"
	Action      string         // optional instruction from config; replaces the template's default action text
	Deadline    time.Time      // when an acknowledgement / action is due (zero = none)
	Location    *time.Location // zone to format times in (nil = Europe/Madrid)
	Agency      string         // recipient agency NAME (an institution, not a person)
	OtherAgency string         // e.g. the new/old unit on relocation, destination police on release
	AckCode     string         // short code to reply "ACK <code>" by SMS, e.g. "K7Q2"
	Step        int            // escalation step, 0-based (shown as Step+1)
	Round       int            // escalation round, 0-based (shown only when > 0)
	Unrouted    bool           // no agency matched: the alert went to the fallback contact
	Link        string         // where to look, e.g. "VioGén > Expediente C-HER-0001" or an intranet URL
	Missed      int            // check-in / re-assessment periods a timer alert covers (> 1 after an outage)
	MissedSince time.Time      // the first deadline missed (with Missed)
	Digest      []DigestItem   // patrol_digest only
}

// DigestItem is one case due for a patrol check in a patrol_digest.
type DigestItem struct {
	CaseRef string
	Level   string
	DueAt   time.Time
}

// Rendered is one message ready for a channel. SMS has no Subject; for
// pager, Subject is the summary (max 1024 characters) and Body optional
// details (empty in the default templates); webhook's Subject is short.
type Rendered struct {
	Subject string
	Body    string
}

// SampleData returns realistic synthetic data with every field set. New
// renders every template with it (and a minimal variant) so a broken or
// leaking override is refused at start-up; `check` commands can use it for
// previews.
func SampleData() Data {
	loc := madrid()
	due := time.Date(2026, 1, 2, 15, 4, 0, 0, loc)
	d := Data{
		AlertRef:    "a3f9c2d1e8b74a10",
		CaseRef:     "C-HER-0001",
		Severity:    "critical",
		Level:       "extremo",
		PrevLevel:   "alto",
		EventType:   "risk.assessed",
		Action:      "",
		Deadline:    due,
		Location:    loc,
		Agency:      "Policía Local de Herencia",
		OtherAgency: "Guardia Civil - Puesto de Herencia",
		AckCode:     "K7Q2",
		Step:        1,
		Round:       1,
		Link:        "VioGén > Expediente C-HER-0001",
	}
	for i, lv := range []string{"extremo", "alto", "alto"} {
		d.Digest = append(d.Digest, DigestItem{
			CaseRef: "C-HER-000" + string(rune('2'+i)),
			Level:   lv,
			DueAt:   due.Add(time.Duration(i) * time.Hour),
		})
	}
	return d
}

// minimalData is SampleData with every optional field empty.
func minimalData() Data {
	return Data{AlertRef: "0b1c2d3e4f5a6b7c", CaseRef: "C-PMI-0002", Severity: "warning"}
}
