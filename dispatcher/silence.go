package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/rules"
)

// Silence holds back, while it lasts, the non-critical alerts of one
// agency's cases that match it (Alertmanager-like). A critical alert
// passes every silence. Operators create and expire silences in the
// console; the decide stage enforces them.
type Silence struct {
	ID string `json:"id"`
	// Agency is the responsible unit of the cases silenced: required, so
	// a silence never reaches beyond its author's agencies.
	Agency       string    `json:"agency"`
	Rule         string    `json:"rule,omitempty"`         // "" any rule
	Municipality string    `json:"municipality,omitempty"` // "" anywhere
	StartsAt     time.Time `json:"starts_at"`
	EndsAt       time.Time `json:"ends_at"`
	Reason       string    `json:"reason"`
	Author       string    `json:"author"` // operator id
	CreatedAt    time.Time `json:"created_at"`
	// ExpiredBy is the operator who ended the silence early.
	ExpiredBy string `json:"expired_by,omitempty"`
}

// Active reports whether the silence is in force at now.
func (s *Silence) Active(now time.Time) bool {
	return !now.Before(s.StartsAt) && now.Before(s.EndsAt)
}

// Critical reports whether an alert passes every silence: a critical
// rule's, or one of severity critical.
func Critical(a rules.Alert) bool { return a.Critical || a.Severity == "critical" }

// Matches reports whether the silence holds back the alert (ignoring
// time): never a critical one.
func (s *Silence) Matches(a rules.Alert) bool {
	if Critical(a) {
		return false
	}
	return s.Agency == a.Route.ResponsibleUnit &&
		(s.Rule == "" || s.Rule == a.Rule) &&
		(s.Municipality == "" || s.Municipality == a.Route.Jurisdiction.Municipality)
}

// HeldAlert is an alert a silence held back, as shown on the silence.
type HeldAlert struct {
	AlertID   string    `json:"alert_id"`
	CaseRef   string    `json:"case_ref"`
	Rule      string    `json:"rule"`
	Severity  string    `json:"severity,omitempty"`
	EventType string    `json:"event_type,omitempty"`
	At        time.Time `json:"at"`
}

// SilenceStore keeps silences in one Redis hash and, per silence, the
// last alerts it held back.
type SilenceStore struct {
	rdb redis.UniversalClient
	// Keep is how long an ended silence stays listed (default 7 days).
	Keep time.Duration
}

const (
	keySilences  = "silences"
	silenceHeldN = 200
)

func silenceHeldKey(id string) string { return "silence:" + id + ":held" }

// NewSilenceStore returns a store on rdb.
func NewSilenceStore(rdb redis.UniversalClient) *SilenceStore {
	return &SilenceStore{rdb: rdb, Keep: 7 * 24 * time.Hour}
}

// ErrNoSilence is returned for an unknown silence id.
var ErrNoSilence = errors.New("no such silence")

// Save creates or updates a silence.
func (st *SilenceStore) Save(ctx context.Context, s *Silence) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := st.rdb.HSet(ctx, keySilences, s.ID, b).Err(); err != nil {
		return fmt.Errorf("save silence %s: %w", s.ID, err)
	}
	return nil
}

// Get returns one silence.
func (st *SilenceStore) Get(ctx context.Context, id string) (*Silence, error) {
	b, err := st.rdb.HGet(ctx, keySilences, id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNoSilence
	}
	if err != nil {
		return nil, err
	}
	var s Silence
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode silence %s: %w", id, err)
	}
	return &s, nil
}

// List returns the silences not ended more than Keep before now, newest
// first; older ones are deleted.
func (st *SilenceStore) List(ctx context.Context, now time.Time) ([]*Silence, error) {
	all, err := st.rdb.HGetAll(ctx, keySilences).Result()
	if err != nil {
		return nil, fmt.Errorf("list silences: %w", err)
	}
	out := make([]*Silence, 0, len(all))
	for id, raw := range all {
		var s Silence
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			continue
		}
		if now.Sub(s.EndsAt) > st.Keep {
			st.rdb.HDel(ctx, keySilences, id)
			st.rdb.Del(ctx, silenceHeldKey(id))
			continue
		}
		out = append(out, &s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

// HoldingBack returns the first silence active at now that holds back a,
// or nil.
func HoldingBack(ss []*Silence, a rules.Alert, now time.Time) *Silence {
	for _, s := range ss {
		if s.Active(now) && s.Matches(a) {
			return s
		}
	}
	return nil
}

// RecordHeld remembers that silence id held back a.
func (st *SilenceStore) RecordHeld(ctx context.Context, id string, a rules.Alert, now time.Time) error {
	b, _ := json.Marshal(HeldAlert{AlertID: a.ID, CaseRef: a.CaseID, Rule: a.Rule, Severity: a.Severity, EventType: string(a.EventType), At: now.UTC()})
	p := st.rdb.TxPipeline()
	p.LPush(ctx, silenceHeldKey(id), b)
	p.LTrim(ctx, silenceHeldKey(id), 0, silenceHeldN-1)
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("record alert held by silence %s: %w", id, err)
	}
	return nil
}

// Held lists the alerts silence id held back, newest first.
func (st *SilenceStore) Held(ctx context.Context, id string) ([]HeldAlert, error) {
	raws, err := st.rdb.LRange(ctx, silenceHeldKey(id), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]HeldAlert, 0, len(raws))
	for _, r := range raws {
		var h HeldAlert
		if json.Unmarshal([]byte(r), &h) == nil {
			out = append(out, h)
		}
	}
	return out, nil
}
