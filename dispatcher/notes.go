package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Note is a short free-text remark a console operator adds to an
// escalation (screened for personal data by the console before it gets
// here). It is kept with the escalation and lives as long as it does.
type Note struct {
	ID       string    `json:"id"`
	Operator string    `json:"operator"`
	Agency   string    `json:"agency"` // the operator's agency the escalation notified
	Text     string    `json:"text"`
	At       time.Time `json:"at"`
}

// MaxNotes caps the notes of one escalation: a note past it is refused,
// never dropped silently.
const MaxNotes = 100

// ErrTooManyNotes is returned when an escalation already has MaxNotes.
var ErrTooManyNotes = errors.New("too many notes on this escalation")

// escNotesKey is the list of an escalation's notes; it carries the case's
// hash tag, so it shares the escalation record's slot.
func escNotesKey(caseRef, alertID string) string { return escKey(caseRef, alertID) + ":notes" }

// addNoteScript appends ARGV[1] to the notes (KEYS[2]) of the escalation
// KEYS[1] and gives the list the record's remaining lifetime: -1 when the
// record is gone, -2 when ARGV[2] notes are there already, else 1.
var addNoteScript = redis.NewScript(`
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return -1 end
if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[2]) then return -2 end
redis.call('RPUSH', KEYS[2], ARGV[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) else redis.call('PERSIST', KEYS[2]) end
return 1`)

// AddNote appends a note to an escalation. Save keeps the list's lifetime
// equal to the record's.
func (s *EscalationStore) AddNote(ctx context.Context, e *Escalation, n Note) error {
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode note %s: %w", n.ID, err)
	}
	res, err := addNoteScript.Run(ctx, s.rdb, []string{escKey(e.CaseRef, e.ID), escNotesKey(e.CaseRef, e.ID)}, b, MaxNotes).Int()
	if err != nil {
		return fmt.Errorf("add note to escalation %s: %w", e.ID, err)
	}
	switch res {
	case -1:
		return ErrNoEscalation
	case -2:
		return ErrTooManyNotes
	}
	return nil
}

// Notes lists an escalation's notes, oldest first.
func (s *EscalationStore) Notes(ctx context.Context, e *Escalation) ([]Note, error) {
	raws, err := s.rdb.LRange(ctx, escNotesKey(e.CaseRef, e.ID), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read notes of escalation %s: %w", e.ID, err)
	}
	out := make([]Note, 0, len(raws))
	for _, r := range raws {
		var n Note
		if err := json.Unmarshal([]byte(r), &n); err != nil {
			return nil, fmt.Errorf("decode a note of escalation %s: %w", e.ID, err)
		}
		out = append(out, n)
	}
	return out, nil
}
