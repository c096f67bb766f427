package dispatcher

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/rules"
)

// Escalation states.
const (
	EscOpen   = "open"
	EscAcked  = "acknowledged"
	EscClosed = "closed" // the ladder ran out without an acknowledgement, or the case closed
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
	// AckedOperator is the console operator who acknowledged, if one did.
	AckedOperator string `json:"acked_operator,omitempty"`
	// Merged lists the critical alerts (ids) merged into this escalation
	// while it was open and unacknowledged: they paged nobody themselves.
	Merged []string `json:"merged,omitempty"`
	// PolicyRef names the alert's policy snapshot as stored by records
	// of version 3 and before (and by REDIS_WRITE_FORMAT=previous): the
	// record keeps a reference, not a copy (see EscalationStore.Save).
	PolicyRef string `json:"policy_ref,omitempty"`

	// profileRef names the profile a version 4 record refers to (set by
	// decodeEscalation until EscalationStore.decode resolves it, and by
	// Save for encodeEscalation); defaultSuppress says the record left
	// the suppression key out: it is the one the profile's rule makes.
	profileRef      string
	defaultSuppress bool
}

// Redis keys of escalations and timers (see docs/architecture.md), each a
// sorted set sharded over setShards keys.
var (
	keyEscOpen         = shardedSet{"esc:open"}          // "case|alert" → opened ms
	keyTimerCheckin    = shardedSet{"timers:checkin"}    // case → check-in due ms
	keyTimerReassess   = shardedSet{"timers:reassess"}   // case → re-assessment due ms
	keyTimerEscalation = shardedSet{"timers:escalation"} // "case|alert" → step deadline ms
	keyEscRecent       = shardedSet{"esc:recent"}        // "case|alert" → opened ms, finished in the last RecentWindow
)

func escKey(caseRef, alertID string) string { return "case:{" + caseRef + "}:esc:" + alertID }

func ackCodeKey(code string) string { return "ackcode:" + code }

// escIdxKey finds a finished escalation's case by its id (the alert id).
// An open escalation has none (ByID finds it through its ack code key,
// which names it and cannot be reallocated while it is open); it is
// written when the escalation is saved finished, as its code is freed
// and may be allocated again. Earlier versions wrote it for every
// escalation.
func escIdxKey(alertID string) string { return "escidx:" + alertID }

// escCodeKey remembers the code allocated to an alert's escalation, so a
// replayed decision prints the same code, until the escalation's record
// (which holds the code) is saved: Save deletes it.
func escCodeKey(caseRef, alertID string) string {
	return "case:{" + caseRef + "}:esc-code:" + alertID
}

// A case's open escalations are fields of its hash (case:{C}), one per
// escalation, "eo:<alert>" → "1": a field of a small hash takes a few
// dozen bytes where a set of one took a key of its own (about 230). Like
// that set, the field is removed when the escalation is saved finished.
const caseOpenEscPrefix = "eo:"

func caseOpenEscField(alertID string) string { return caseOpenEscPrefix + alertID }

// caseEscKey is the set of a case's open escalations (alert ids) that
// earlier versions kept: still read, drained as its escalations are saved.
func caseEscKey(caseRef string) string { return "case:{" + caseRef + "}:esc-open" }

// EscRef is how timers and indexes name an escalation: "case|alert".
func EscRef(caseRef, alertID string) string { return caseRef + "|" + alertID }

// ParseEscRef splits an EscRef.
func ParseEscRef(ref string) (caseRef, alertID string, ok bool) {
	return strings.Cut(ref, "|")
}

// Ack codes: 6 characters of 32 (no 0/O, 1/I), about 10^9 codes.
const (
	ackCodeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	ackCodeLen      = 6
	// ackCodeHashed candidates are derived from the alert id by hashing;
	// after them the search walks the code space from the first one, so a
	// free code is found whenever the space has one within ackCodeAttempts.
	ackCodeHashed   = 8
	ackCodeAttempts = 64
	// freedCodePrefix marks an ackcode:<code> value whose escalation was
	// acknowledged or closed: the code may be allocated again, and until
	// then an SMS with it is told the escalation is no longer open.
	freedCodePrefix = "~"
)

// AckCode is the first candidate code of an alert ("ACK K7Q2MX"). The code
// an escalation actually gets is allocated among the open ones
// (EscalationStore.allocateCodes) and is this one unless it was taken.
func AckCode(alertID string) string { return ackCodeCandidate(ackCodeAlphabet, ackCodeLen, alertID, 0) }

// ackCodeCandidate is the i-th code tried for an alert: deterministic, so
// a replay walks the same sequence.
func ackCodeCandidate(alphabet string, n int, alertID string, i int) string {
	space := uint64(1)
	for range n {
		space *= uint64(len(alphabet))
	}
	hashed := func(i int) uint64 {
		src := "ack\x00" + alertID
		if i > 0 {
			src += "\x00" + strconv.Itoa(i)
		}
		h := sha256.Sum256([]byte(src))
		return binary.BigEndian.Uint64(h[:8]) % space
	}
	var idx uint64
	if i < ackCodeHashed {
		idx = hashed(i)
	} else {
		idx = (hashed(0) + uint64(i-ackCodeHashed+1)) % space
	}
	b := make([]byte, n)
	for j := n - 1; j >= 0; j-- {
		b[j] = alphabet[idx%uint64(len(alphabet))]
		idx /= uint64(len(alphabet))
	}
	return string(b)
}

// claimCodeScript points ackcode:<code> at ARGV[1] when it is free (absent
// or freed) or already points there, and answers 1; else 0.
var claimCodeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] and string.sub(v, 1, 1) ~= '~' then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

// freeCodeScript marks ackcode:<code> freed if it points at ARGV[1] (or
// at nothing: an escalation saved finished).
var freeCodeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], '~' .. ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`)

// EscalationStore keeps escalations in Redis.
type EscalationStore struct {
	rdb redis.UniversalClient
	ttl time.Duration // how long a finished escalation is kept
	// snapshots caches the policy snapshots and escalation profiles read
	// or written (Redis key → rules.PolicySnapshot or escProfile): they
	// never change once stored.
	snapshots sync.Map
	// codeAlphabet and codeLen shape the ack codes (tests shrink them to
	// force collisions).
	codeAlphabet string
	codeLen      int
	// Format WritePrevious also writes what the release before 2026-12
	// reads: the id index of open escalations, and their member of the
	// history set (esc:recent).
	Format WriteFormat
}

// NewEscalationStore keeps finished escalations for keep (default 30 days).
func NewEscalationStore(rdb redis.UniversalClient, keep time.Duration) *EscalationStore {
	if keep <= 0 {
		keep = 30 * 24 * time.Hour
	}
	return &EscalationStore{rdb: rdb, ttl: keep, codeAlphabet: ackCodeAlphabet, codeLen: ackCodeLen}
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
	return s.decode(ctx, caseRef, alertID, b)
}

// decode reads a stored record and the policy snapshot it refers to.
func (s *EscalationStore) decode(ctx context.Context, caseRef, alertID string, b []byte) (*Escalation, error) {
	e, err := decodeEscalation(caseRef, alertID, b)
	if err != nil {
		return nil, err
	}
	if e.profileRef != "" {
		p, err := loadSnapshot[escProfile](ctx, s, profileKey(e.profileRef), "escalation profile")
		if err != nil {
			return nil, fmt.Errorf("escalation %s: %w", alertID, err)
		}
		p.apply(e)
	}
	if e.PolicyRef != "" {
		p, err := loadSnapshot[rules.PolicySnapshot](ctx, s, policyKey(e.PolicyRef), "policy snapshot")
		if err != nil {
			return nil, fmt.Errorf("escalation %s: %w", alertID, err)
		}
		e.Alert.Policy = p
	}
	return e, nil
}

// An escalation's profile is what it shares with every escalation of the
// same rule and policy snapshot: the rule's id, severity, template and
// flags, and the snapshot. A version 4 record refers to it
// (escprofile:<ref>, stored once like a policy snapshot) instead of
// holding it: about 40 bytes of each record, which brings a typical
// open escalation's record into a 160-byte allocation (issue 9).
type escProfile struct {
	Rule        string               `json:"rule"`
	Severity    string               `json:"severity,omitempty"`
	Critical    bool                 `json:"critical,omitempty"`
	Template    string               `json:"template,omitempty"`
	SuppressFor rules.Duration       `json:"suppress_for,omitempty"`
	Policy      rules.PolicySnapshot `json:"policy"`
}

func profileOf(a rules.Alert) escProfile {
	return escProfile{Rule: a.Rule, Severity: a.Severity, Critical: a.Critical, Template: a.Template,
		SuppressFor: a.SuppressFor, Policy: a.Policy}
}

// apply puts the profile's fields back into e's alert, and the
// suppression key the record left out.
func (p escProfile) apply(e *Escalation) {
	a := &e.Alert
	a.Rule, a.Severity, a.Critical, a.Template = p.Rule, p.Severity, p.Critical, p.Template
	a.SuppressFor, a.Policy = p.SuppressFor, p.Policy
	if e.defaultSuppress {
		a.SuppressKey = defaultSuppressKey(*a)
	}
	e.profileRef, e.defaultSuppress = "", false
}

func profileKey(ref string) string { return "escprofile:" + ref }

// Policy snapshots are stored once each under policy:<ref>, ref being a
// hash of the snapshot's JSON, and escalations refer to them: with a
// million open escalations of a handful of policies this is most of an
// escalation's size. They are immutable and never expire (a few per
// configuration version).
func policyKey(ref string) string { return "policy:" + ref }

// snapshotRef is the reference of an immutable value stored once: its
// JSON and 16 hex digits of its SHA-256.
func snapshotRef(v any) (ref string, raw []byte, err error) {
	raw, err = json.Marshal(v)
	if err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8]), raw, nil
}

// loadSnapshot reads an immutable value stored once (a policy snapshot,
// an escalation profile) from the cache or Redis. A missing one is an
// error: the escalation cannot climb without it.
func loadSnapshot[T any](ctx context.Context, s *EscalationStore, key, what string) (T, error) {
	var v T
	if c, ok := s.snapshots.Load(key); ok {
		return c.(T), nil
	}
	b, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return v, fmt.Errorf("%s %s is missing from Redis", what, key)
	}
	if err != nil {
		return v, fmt.Errorf("read %s %s: %w", what, key, err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("decode %s %s: %w", what, key, err)
	}
	s.snapshots.Store(key, v)
	return v, nil
}

// ByRef reads an escalation by its "case|alert" reference.
func (s *EscalationStore) ByRef(ctx context.Context, ref string) (*Escalation, error) {
	c, a, ok := ParseEscRef(ref)
	if !ok {
		return nil, ErrNoEscalation
	}
	return s.Get(ctx, c, a)
}

// ByRefs reads the escalations of refs (EscRef) in one round trip; an
// entry is nil where there is none (or the ref is not one). An entry that
// cannot be read (a record that does not decode, a missing policy
// snapshot, a key of another type) has its error in bad and does not fail
// the others; err is for a failed round trip (every entry failed).
func (s *EscalationStore) ByRefs(ctx context.Context, refs []string) (es []*Escalation, bad []error, err error) {
	es, bad = make([]*Escalation, len(refs)), make([]error, len(refs))
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(refs))
	for i, ref := range refs {
		if c, a, ok := ParseEscRef(ref); ok {
			cmds[i] = pipe.Get(ctx, escKey(c, a))
		}
	}
	n := pipe.Len()
	if n == 0 {
		return es, bad, nil
	}
	_, err = pipe.Exec(ctx)
	failed := 0
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		b, cerr := cmd.Bytes()
		if errors.Is(cerr, redis.Nil) {
			continue
		}
		c, a, _ := ParseEscRef(refs[i])
		if cerr != nil {
			bad[i] = fmt.Errorf("read escalation %s: %w", a, cerr)
			failed++
			continue
		}
		if es[i], bad[i] = s.decode(ctx, c, a, b); bad[i] != nil {
			es[i] = nil
		}
	}
	if failed == n && err != nil {
		return nil, nil, fmt.Errorf("read escalations: %w", err)
	}
	return es, bad, nil
}

// ByCode finds the escalation an SMS acknowledgement code belongs to: the
// open one holding it, or the last one that held it when it was freed
// (acknowledged or closed) and not allocated again.
func (s *EscalationStore) ByCode(ctx context.Context, code string) (*Escalation, error) {
	code = strings.ToUpper(strings.TrimSpace(code))
	ref, err := s.rdb.Get(ctx, ackCodeKey(code)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNoEscalation
	}
	if err != nil {
		return nil, fmt.Errorf("read ack code: %w", err)
	}
	e, err := s.ByRef(ctx, strings.TrimPrefix(ref, freedCodePrefix))
	if err != nil {
		return nil, err
	}
	if e.AckCode != code {
		return nil, ErrNoEscalation // the key names an escalation printed with another code
	}
	return e, nil
}

// ByID finds an escalation by its id (the alert id), whatever the number
// of escalations. A finished one is named by the id index (escidx:<alert>
// → case, written when it is saved finished). An open one by its ack code
// key ("case|alert"; a code is never reallocated while its escalation is
// open), its code being one of the alert's candidates (ackCodeCandidate),
// nearly always the first: one round trip reads the index and the first
// ackCodeHashed candidates' keys; only an id none of them names (an
// unknown one, or a code found taken at allocation) costs a second, for
// the rest. A Redis error on any of those keys is an error, not "no such
// escalation".
func (s *EscalationStore) ByID(ctx context.Context, alertID string) (*Escalation, error) {
	caseRef, err := s.caseOf(ctx, alertID)
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, caseRef, alertID)
}

// caseOf finds the case of an escalation by its id (see ByID).
func (s *EscalationStore) caseOf(ctx context.Context, alertID string) (string, error) {
	pipe := s.rdb.Pipeline()
	idx := pipe.Get(ctx, escIdxKey(alertID))
	first := s.codeKeys(ctx, pipe, alertID, 0, ackCodeHashed)
	_, _ = pipe.Exec(ctx) // each command's error is read below
	if c, err := idx.Result(); err == nil {
		return c, nil
	} else if !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("read escalation index: %w", err)
	}
	if c, ok, err := caseNamed(first, alertID); ok || err != nil {
		return c, err
	}
	pipe = s.rdb.Pipeline()
	rest := s.codeKeys(ctx, pipe, alertID, ackCodeHashed, ackCodeAttempts)
	_, _ = pipe.Exec(ctx)
	if c, ok, err := caseNamed(rest, alertID); ok || err != nil {
		return c, err
	}
	return "", ErrNoEscalation
}

// codeKeys reads the ack code keys of an alert's candidates from, up to
// to, into pipe.
func (s *EscalationStore) codeKeys(ctx context.Context, pipe redis.Pipeliner, alertID string, from, to int) []*redis.StringCmd {
	cmds := make([]*redis.StringCmd, 0, to-from)
	for i := from; i < to; i++ {
		cmds = append(cmds, pipe.Get(ctx, ackCodeKey(ackCodeCandidate(s.codeAlphabet, s.codeLen, alertID, i))))
	}
	return cmds
}

// caseNamed returns the case of the first ack code key that names the
// escalation alertID, open or freed; a key that could not be read is an
// error (it may be the one).
func caseNamed(cmds []*redis.StringCmd, alertID string) (string, bool, error) {
	for _, c := range cmds {
		v, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return "", false, fmt.Errorf("read ack code: %w", err)
		}
		if caseRef, a, ok := ParseEscRef(strings.TrimPrefix(v, freedCodePrefix)); ok && a == alertID {
			return caseRef, true, nil
		}
	}
	return "", false, nil
}

// codeRequest asks for the ack code of the escalation an alert opens.
type codeRequest struct{ caseRef, alertID string }

// allocateCodes gives each request an ack code no other open escalation
// holds, before the alert's intents (which print it) are written. A code
// already allocated to the alert is returned again (a replayed decision
// prints the same code). Otherwise the alert's candidates are tried in
// order, claiming ackcode:<code> unless another open escalation holds it.
// It returns the codes and how many candidates were found taken.
func (s *EscalationStore) allocateCodes(ctx context.Context, reqs []codeRequest) ([]string, int, error) {
	codes := make([]string, len(reqs))
	if len(reqs) == 0 {
		return codes, 0, nil
	}
	// A code allocated before is in the escalation's record once it is
	// saved, and in esc-code until then.
	pipe := s.rdb.Pipeline()
	recs := make([]*redis.StringCmd, len(reqs))
	have := make([]*redis.StringCmd, len(reqs))
	for i, r := range reqs {
		recs[i] = pipe.Get(ctx, escKey(r.caseRef, r.alertID))
		have[i] = pipe.Get(ctx, escCodeKey(r.caseRef, r.alertID))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, fmt.Errorf("read allocated ack codes: %w", err)
	}
	var pending []int
	for i, c := range have {
		if b, err := recs[i].Bytes(); err == nil {
			e, err := decodeEscalation(reqs[i].caseRef, reqs[i].alertID, b)
			if err != nil {
				return nil, 0, fmt.Errorf("read allocated ack code: %w", err)
			}
			if e.AckCode != "" {
				codes[i] = e.AckCode
				continue
			}
		}
		if v, err := c.Result(); err == nil && v != "" {
			codes[i] = v
		} else {
			pending = append(pending, i)
		}
	}
	fresh := append([]int(nil), pending...)
	ttl := s.ttl.Milliseconds()
	taken := 0
	for attempt := 0; attempt < ackCodeAttempts && len(pending) > 0; attempt++ {
		calls := make([]scriptCall, len(pending))
		cands := make([]string, len(pending))
		for j, i := range pending {
			cands[j] = ackCodeCandidate(s.codeAlphabet, s.codeLen, reqs[i].alertID, attempt)
			calls[j] = scriptCall{keys: []string{ackCodeKey(cands[j])}, args: []any{EscRef(reqs[i].caseRef, reqs[i].alertID), ttl}}
		}
		cmds, err := evalAll(ctx, s.rdb, claimCodeScript, calls)
		if err != nil {
			return nil, taken, fmt.Errorf("claim ack codes: %w", err)
		}
		var next []int
		for j, c := range cmds {
			ok, err := c.Int()
			if err != nil {
				return nil, taken, fmt.Errorf("claim ack code: %w", err)
			}
			if ok == 1 {
				codes[pending[j]] = cands[j]
			} else {
				taken++
				next = append(next, pending[j])
			}
		}
		pending = next
	}
	if len(pending) > 0 {
		return nil, taken, fmt.Errorf("no free ack code for %d escalations after %d candidates each", len(pending), ackCodeAttempts)
	}
	pipe = s.rdb.Pipeline()
	for _, i := range fresh {
		pipe.Set(ctx, escCodeKey(reqs[i].caseRef, reqs[i].alertID), codes[i], s.ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, taken, fmt.Errorf("record allocated ack codes: %w", err)
	}
	return codes, taken, nil
}

// Open lists open escalations, oldest first, at most limit.
func (s *EscalationStore) Open(ctx context.Context, limit int64) ([]*Escalation, error) {
	zs, err := keyEscOpen.rangeByScore(ctx, s.rdb, "-inf", "+inf", limit)
	if err != nil {
		return nil, fmt.Errorf("list open escalations: %w", err)
	}
	return s.listed(ctx, zs)
}

// RecentWindow is how far back Recent lists escalations.
const RecentWindow = 7 * 24 * time.Hour

// Recent lists the escalations opened since since (at most RecentWindow
// ago), in any state, oldest first, at most limit; those whose record
// expired are skipped. Open ones are read from esc:open, finished ones
// from esc:recent (earlier versions also put open ones there: one entry
// each is kept).
func (s *EscalationStore) Recent(ctx context.Context, since time.Time, limit int64) ([]*Escalation, error) {
	zs, err := rangeByScoreOf(ctx, s.rdb, []shardedSet{keyEscRecent, keyEscOpen}, strconv.FormatInt(since.UnixMilli(), 10), "+inf", limit)
	if err != nil {
		return nil, fmt.Errorf("list recent escalations: %w", err)
	}
	return s.listed(ctx, zs)
}

// listed reads the escalations an index lists ("case|alert" members) in
// one round trip (ByRefs), in its order, skipping those whose record is
// gone; one that cannot be read fails the list.
func (s *EscalationStore) listed(ctx context.Context, zs []redis.Z) ([]*Escalation, error) {
	refs := make([]string, len(zs))
	for i, z := range zs {
		refs[i] = fmt.Sprint(z.Member)
	}
	es, bad, err := s.ByRefs(ctx, refs)
	if err != nil {
		return nil, err
	}
	out := make([]*Escalation, 0, len(es))
	for i, e := range es {
		if bad[i] != nil {
			return nil, bad[i]
		}
		if e != nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// OpenForCase lists a case's open escalations: those named in its hash,
// and in the set earlier versions kept.
func (s *EscalationStore) OpenForCase(ctx context.Context, caseRef string) ([]*Escalation, error) {
	pipe := s.rdb.Pipeline()
	fields := pipe.HKeys(ctx, caseKey(caseRef))
	legacy := pipe.SMembers(ctx, caseEscKey(caseRef))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("list escalations of %s: %w", caseRef, err)
	}
	var ids []string
	for _, f := range fields.Val() {
		if id, ok := strings.CutPrefix(f, caseOpenEscPrefix); ok {
			ids = append(ids, id)
		}
	}
	for _, id := range legacy.Val() {
		if !contains(ids, id) {
			ids = append(ids, id)
		}
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
//
// In a Redis Cluster the global keys (escidx:<alert>, ackcode:<code>,
// esc:open, timers:escalation) each live in their own slot and the case's
// keys in the case's, so no single transaction may hold them all (MULTI
// across slots fails with CROSSSLOT). Save writes in two steps:
//  1. the global indexes and the timer, each a one-key command (a plain
//     pipeline, split per node); every one is idempotent;
//  2. the escalation record with the case's own indexes (its field in the
//     case hash, crit) in one MULTI on the case's slot, deleting the
//     esc-code key the record replaces: the commit point.
//
// The record goes last because it is what every caller reads to tell a
// replay (Ladder.Open skips an existing record, Timeout a step already
// taken, Ack a finished one, Merge a recorded alert), and every Save runs
// while handling an event whose offset is committed only after it: a
// crash between the steps leaves the old record, so the event is handled
// again and Save repeated, completing both. What step 1 alone leaves
// meanwhile is harmless: an index or timer naming a missing or older
// record is skipped by its readers (ByRef, Timeout's step check).
func (s *EscalationStore) Save(ctx context.Context, e *Escalation) error {
	global := s.rdb.Pipeline()
	b, err := s.encode(ctx, global, e)
	if err != nil {
		return err
	}
	ref := EscRef(e.CaseRef, e.ID)
	ttl := s.ttl.Milliseconds()
	if e.State == EscOpen {
		if s.Format == WritePrevious { // what the release before reads
			global.Set(ctx, escIdxKey(e.ID), e.CaseRef, s.ttl)
			s.addRecent(ctx, global, ref, e)
		}
		// The code is allocated before the intents; claiming it again only
		// refreshes it. A code another open escalation holds is never moved.
		claimCodeScript.Eval(ctx, global, []string{ackCodeKey(e.AckCode)}, ref, ttl)
		keyEscOpen.zAddNX(ctx, global, ref, ms(e.OpenedAt))
		if !e.DueAt.IsZero() {
			keyTimerEscalation.zAdd(ctx, global, ref, ms(e.DueAt))
		} else {
			keyTimerEscalation.zRem(ctx, global, ref)
		}
	} else {
		// Acknowledged or closed: the code is freed for other escalations,
		// so the id index takes over finding it by id.
		freeCodeScript.Eval(ctx, global, []string{ackCodeKey(e.AckCode)}, ref, ttl)
		global.Set(ctx, escIdxKey(e.ID), e.CaseRef, s.ttl)
		// The console's history lists open escalations from esc:open and
		// finished ones from esc:recent (opened in the last RecentWindow,
		// trimmed on the member's shard as they are added): an open one is
		// a member of one set, not two. A crash part-way (or a cluster
		// pipeline applied node by node) may leave it in both, which
		// Recent lists once, or in neither until this save runs again (the
		// record, saved last, still says open, so the event is handled
		// again).
		s.addRecent(ctx, global, ref, e)
		keyEscOpen.zRem(ctx, global, ref)
		keyTimerEscalation.zRem(ctx, global, ref)
	}
	if _, err := global.Exec(ctx); err != nil {
		return fmt.Errorf("save escalation %s indexes: %w", e.ID, err)
	}
	tx := s.rdb.TxPipeline() // every key carries the {case} hash tag: one slot
	tx.Set(ctx, escKey(e.CaseRef, e.ID), b, s.ttl)
	tx.Expire(ctx, escNotesKey(e.CaseRef, e.ID), s.ttl) // the notes live as long as the record
	tx.Del(ctx, escCodeKey(e.CaseRef, e.ID))            // the record holds the code now
	tx.SRem(ctx, caseEscKey(e.CaseRef), e.ID)           // an earlier version's index, drained
	if e.State == EscOpen {
		tx.HSet(ctx, caseKey(e.CaseRef), caseOpenEscField(e.ID), "1")
	} else {
		// No later critical alert merges into this one.
		tx.HDel(ctx, critIndexKey(e.CaseRef), critIndexField(e.Alert.Rule, e.ID))
		tx.HDel(ctx, caseKey(e.CaseRef), caseOpenEscField(e.ID))
	}
	if _, err := tx.Exec(ctx); err != nil {
		return fmt.Errorf("save escalation %s: %w", e.ID, err)
	}
	return nil
}

// encode writes e's record, and queues on pipe the write of what it refers
// to: its profile (version 4) or, for the release before, its policy
// snapshot (version 2), each stored once.
func (s *EscalationStore) encode(ctx context.Context, pipe redis.Pipeliner, e *Escalation) ([]byte, error) {
	rec := *e
	rec.PolicyRef, rec.Alert.Policy = "", rules.PolicySnapshot{}
	var snap any = profileOf(e.Alert)
	if s.Format == WritePrevious { // version 2 refers to the policy snapshot alone
		snap = e.Alert.Policy
	}
	ref, raw, err := snapshotRef(snap)
	if err != nil {
		return nil, fmt.Errorf("encode escalation %s: what its record refers to: %w", e.ID, err)
	}
	key := profileKey(ref)
	if s.Format == WritePrevious {
		rec.PolicyRef, key = ref, policyKey(ref)
	} else {
		rec.profileRef = ref
	}
	pipe.SetNX(ctx, key, raw, 0)
	b, err := encodeEscalation(&rec, s.Format)
	if err != nil {
		return nil, err
	}
	s.snapshots.Store(key, snap)
	return b, nil
}

// addRecent adds an escalation to the history set, trimming the member's
// shard of what opened more than RecentWindow before it.
func (s *EscalationStore) addRecent(ctx context.Context, pipe redis.Pipeliner, ref string, e *Escalation) {
	keyEscRecent.zAddNX(ctx, pipe, ref, ms(e.OpenedAt))
	pipe.ZRemRangeByScore(ctx, keyEscRecent.key(ref), "-inf", strconv.FormatInt(e.OpenedAt.Add(-RecentWindow).UnixMilli(), 10))
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
