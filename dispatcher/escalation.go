package dispatcher

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/rules"
)

// Escalation states.
const (
	EscOpen   = "open"
	EscAcked  = "acknowledged"
	EscClosed = "closed" // the ladder ran out without an acknowledgement
)

// Escalation is an alert climbing its policy's ladder until somebody
// acknowledges it. It holds the alert, whose policy is a snapshot: later
// configuration changes do not alter an escalation under way.
type Escalation struct {
	ID       string      `json:"id"` // = alert id
	CaseRef  string      `json:"case_ref"`
	Alert    rules.Alert `json:"alert"`
	AckCode  string      `json:"ack_code"`
	State    string      `json:"state"`
	Step     int         `json:"step"`
	Round    int         `json:"round"`
	OpenedAt time.Time   `json:"opened_at"`
	// DueAt is when the current step times out (zero: nothing awaited).
	DueAt time.Time `json:"due_at,omitzero"`
	// Notified lists the agencies told so far: only they may acknowledge.
	Notified []string `json:"notified"`
	// Skipped records steps whose targets resolved to nobody.
	Skipped []int `json:"skipped,omitempty"`
	// LastCheckin is when the case's check-in deadline counted from when the
	// escalation opened (last contact or level change): only a check-in
	// after it resolves a missed-check-in escalation.
	LastCheckin time.Time `json:"last_checkin,omitzero"`
	AckedBy     string    `json:"acked_by,omitempty"`
	AckedAt     time.Time `json:"acked_at,omitzero"`
	AckVia      string    `json:"ack_via,omitempty"`
}

// Redis keys of escalations and timers (see docs/architecture.md).
const (
	keyEscOpen         = "esc:open"          // zset "case|alert" → opened ms
	keyTimerCheckin    = "timers:checkin"    // zset case → check-in due ms
	keyTimerReassess   = "timers:reassess"   // zset case → re-assessment due ms
	keyTimerEscalation = "timers:escalation" // zset "case|alert" → step deadline ms
)

func escKey(caseRef, alertID string) string { return "case:{" + caseRef + "}:esc:" + alertID }

func ackCodeKey(code string) string { return "ackcode:" + code }

// caseEscKey is the set of a case's open escalations (alert ids).
func caseEscKey(caseRef string) string { return "case:{" + caseRef + "}:esc-open" }

// EscRef is how timers and indexes name an escalation: "case|alert".
func EscRef(caseRef, alertID string) string { return caseRef + "|" + alertID }

// ParseEscRef splits an EscRef.
func ParseEscRef(ref string) (caseRef, alertID string, ok bool) {
	return strings.Cut(ref, "|")
}

// AckCode is the short code printed in an alert's SMS ("ACK K7Q2MX"):
// 6 characters of 32, about 10^9 codes.
// Derived from the alert id, so a replayed decision prints the same code.
func AckCode(alertID string) string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789" // no 0/O, 1/I
	h := sha256.Sum256([]byte("ack\x00" + alertID))
	var b [6]byte
	for i := range b {
		b[i] = alphabet[int(h[i])%len(alphabet)]
	}
	return string(b[:])
}

// EscalationStore keeps escalations in Redis.
type EscalationStore struct {
	rdb redis.UniversalClient
	ttl time.Duration // how long a finished escalation is kept
}

// NewEscalationStore keeps finished escalations for keep (default 30 days).
func NewEscalationStore(rdb redis.UniversalClient, keep time.Duration) *EscalationStore {
	if keep <= 0 {
		keep = 30 * 24 * time.Hour
	}
	return &EscalationStore{rdb: rdb, ttl: keep}
}

// ErrNoEscalation is returned for an unknown escalation.
var ErrNoEscalation = errors.New("no such escalation")

// Get reads one escalation.
func (s *EscalationStore) Get(ctx context.Context, caseRef, alertID string) (*Escalation, error) {
	b, err := s.rdb.Get(ctx, escKey(caseRef, alertID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNoEscalation
	}
	if err != nil {
		return nil, fmt.Errorf("read escalation %s: %w", alertID, err)
	}
	var e Escalation
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode escalation %s: %w", alertID, err)
	}
	return &e, nil
}

// ByRef reads an escalation by its "case|alert" reference.
func (s *EscalationStore) ByRef(ctx context.Context, ref string) (*Escalation, error) {
	c, a, ok := ParseEscRef(ref)
	if !ok {
		return nil, ErrNoEscalation
	}
	return s.Get(ctx, c, a)
}

// ByCode finds the escalation an SMS acknowledgement code belongs to.
func (s *EscalationStore) ByCode(ctx context.Context, code string) (*Escalation, error) {
	ref, err := s.rdb.Get(ctx, ackCodeKey(strings.ToUpper(strings.TrimSpace(code)))).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNoEscalation
	}
	if err != nil {
		return nil, fmt.Errorf("read ack code: %w", err)
	}
	return s.ByRef(ctx, ref)
}

// Open lists open escalations, oldest first, at most limit.
func (s *EscalationStore) Open(ctx context.Context, limit int64) ([]*Escalation, error) {
	refs, err := s.rdb.ZRange(ctx, keyEscOpen, 0, limit-1).Result()
	if err != nil {
		return nil, fmt.Errorf("list open escalations: %w", err)
	}
	out := make([]*Escalation, 0, len(refs))
	for _, ref := range refs {
		e, err := s.ByRef(ctx, ref)
		if errors.Is(err, ErrNoEscalation) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// OpenForCase lists a case's open escalations.
func (s *EscalationStore) OpenForCase(ctx context.Context, caseRef string) ([]*Escalation, error) {
	ids, err := s.rdb.SMembers(ctx, caseEscKey(caseRef)).Result()
	if err != nil {
		return nil, fmt.Errorf("list escalations of %s: %w", caseRef, err)
	}
	var out []*Escalation
	for _, id := range ids {
		e, err := s.Get(ctx, caseRef, id)
		if errors.Is(err, ErrNoEscalation) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if e.State == EscOpen {
			out = append(out, e)
		}
	}
	return out, nil
}

// Save writes an escalation and keeps its indexes and step timer in step
// with its state: open ones are indexed and timed, finished ones are not.
func (s *EscalationStore) Save(ctx context.Context, e *Escalation) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode escalation %s: %w", e.ID, err)
	}
	ref := EscRef(e.CaseRef, e.ID)
	pipe := s.rdb.TxPipeline()
	pipe.Set(ctx, escKey(e.CaseRef, e.ID), b, s.ttl)
	// NX: a code already taken by another escalation keeps pointing there;
	// it is never silently moved to a newer one.
	pipe.SetNX(ctx, ackCodeKey(e.AckCode), ref, s.ttl)
	if e.State == EscOpen {
		pipe.SAdd(ctx, caseEscKey(e.CaseRef), e.ID)
		pipe.ZAddNX(ctx, keyEscOpen, redis.Z{Score: float64(e.OpenedAt.UnixMilli()), Member: ref})
		if !e.DueAt.IsZero() {
			pipe.ZAdd(ctx, keyTimerEscalation, redis.Z{Score: float64(e.DueAt.UnixMilli()), Member: ref})
		} else {
			pipe.ZRem(ctx, keyTimerEscalation, ref)
		}
	} else {
		pipe.SRem(ctx, caseEscKey(e.CaseRef), e.ID)
		pipe.ZRem(ctx, keyEscOpen, ref)
		pipe.ZRem(ctx, keyTimerEscalation, ref)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("save escalation %s: %w", e.ID, err)
	}
	return nil
}

// NotifiedAgency reports whether agency was told about the escalation.
func (e *Escalation) NotifiedAgency(agency string) bool {
	for _, a := range e.Notified {
		if a == agency {
			return true
		}
	}
	return false
}
