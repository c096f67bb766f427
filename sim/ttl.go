package sim

import (
	"container/heap"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// lazyTTL moves the embedded Redis's TTLs with the virtual clock without
// walking every key at every step.
//
// miniredis keeps a key's TTL as a remaining duration, lowered only by
// FastForward, which walks (and sorts) every key: once per clock step,
// that was a third of a simulated month. SetTime alone moves TIME and
// the clock PXAT reads, but expires nothing. So lazyTTL lets the stored
// TTLs count from the last walk instead of from now: hook adds the time
// since the last walk (the lag) to the TTL of every SET EX/PX/EXAT/PXAT,
// GETEX, PEXPIRE, PEXPIREAT and PSETEX (EXPIRE, EXPIREAT and SETEX are run
// as their P forms), and notes the key and its deadline. When the clock
// reaches a noted deadline, the keys due are deleted as miniredis expires
// them, if their TTL still says so; a command that moves a TTL to another
// key (RENAME, COPY, ...) makes it walk instead at every deadline from
// then on, FastForward by the whole lag (the deadline noted is no longer
// the key's). Any other command that reads or sets a TTL
// (TTL, PTTL, RESTORE, hash field TTLs, another database) makes it walk at
// every step from then on, as before; one met while the TTLs lag is an
// error the engine reports.
type lazyTTL struct {
	mr *miniredis.Miniredis

	mu     sync.Mutex
	now    time.Time    // the virtual time
	walked time.Time    // where miniredis's TTLs count from (the last walk)
	due    deadlineHeap // TTLs set since the start, earliest first (some may be gone)
	moved  bool         // a TTL may have moved to another key: due deadlines are walked
	eager  bool         // a TTL command it cannot shift was seen: walk at every step
	err    error        // such a command met while the TTLs lagged
}

func newLazyTTL(mr *miniredis.Miniredis, start time.Time) *lazyTTL {
	mr.SetTime(start)
	return &lazyTTL{mr: mr, now: start, walked: start}
}

// advance moves the clock to t (later than now) and expires what is due
// by then: it reports whether it walked every key, else which keys it
// deleted. A lag that is not whole milliseconds (PX cannot say it) is
// walked.
func (l *lazyTTL) advance(t time.Time) (walked bool, deleted []string) {
	l.mu.Lock()
	l.now = t
	lag := t.Sub(l.walked)
	var due []string
	for len(l.due) > 0 && !l.due[0].at.After(t) {
		due = append(due, heap.Pop(&l.due).(deadline).key)
	}
	walk := l.eager || lag%time.Millisecond != 0 || (len(due) > 0 && l.moved)
	walkedAt := l.walked
	if walk {
		l.walked = t
	}
	l.mu.Unlock()
	l.mr.SetTime(t)
	if walk {
		l.mr.FastForward(lag)
		return true, nil
	}
	return false, l.expire(due, walkedAt, t)
}

// expire deletes the keys of due whose TTL (counted from walked) has run
// out by now: what FastForward would have deleted of them.
func (l *lazyTTL) expire(due []string, walked, now time.Time) []string {
	var out []string
	for _, k := range due {
		ttl := l.mr.TTL(k)
		if ttl <= 0 || walked.Add(ttl).After(now) {
			continue // gone, kept without TTL, or given a later one
		}
		if l.mr.Del(k) {
			out = append(out, k)
		}
	}
	return out
}

// failed is the error of a TTL command met while the TTLs lagged, once.
func (l *lazyTTL) failed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.err
	l.err = nil
	return err
}

// ttlCommands read or set TTLs in ways lazyTTL does not shift.
var ttlCommands = map[string]bool{
	"TTL": true, "PTTL": true, "EXPIRETIME": true, "PEXPIRETIME": true, "RESTORE": true,
	"HEXPIRE": true, "HPEXPIRE": true, "HEXPIREAT": true, "HPEXPIREAT": true, "HTTL": true, "HPTTL": true,
	"HEXPIRETIME": true, "HPEXPIRETIME": true, "HGETEX": true, "HSETEX": true, "HPERSIST": true,
	"SWAPDB": true, "MIGRATE": true,
}

// ttlMovers may give a key's TTL to another key (in miniredis: LMOVE
// keeps the source's TTL on the destination).
var ttlMovers = map[string]bool{
	"RENAME": true, "RENAMENX": true, "COPY": true, "MOVE": true,
	"LMOVE": true, "BLMOVE": true, "RPOPLPUSH": true, "BRPOPLPUSH": true,
}

// pForms are the commands run as their millisecond forms, so that their
// TTL can be shifted by a lag of milliseconds.
var pForms = map[string]string{"EXPIRE": "PEXPIRE", "EXPIREAT": "PEXPIREAT", "SETEX": "PSETEX"}

// hook shifts the TTL a command sets (see lazyTTL); it reports true when
// it ran the command itself, as its millisecond form, through dispatch.
func (l *lazyTTL) hook(cmd string, args []string, dispatch func([]string)) bool {
	switch cmd {
	case "SET":
		if len(args) > 2 {
			l.shiftOptions(args[0], args[2:])
		}
	case "GETEX":
		if len(args) > 1 {
			l.shiftOptions(args[0], args[1:])
		}
	case "PEXPIRE", "PSETEX":
		if len(args) > 1 {
			args[1] = l.shift(cmd, args[0], args[1], false)
		}
	case "PEXPIREAT":
		if len(args) > 1 {
			args[1] = l.shift(cmd, args[0], args[1], true)
		}
	case "EXPIRE", "EXPIREAT", "SETEX":
		if len(args) > 1 {
			if ms, ok := l.millis(cmd, args[1]); ok {
				dispatch(append([]string{pForms[cmd], args[0], ms}, args[2:]...))
				return true
			}
		}
	case "SELECT":
		if len(args) > 0 && args[0] != "0" {
			l.unshiftable(cmd + " " + args[0]) // keys are expired in database 0
		}
	default:
		switch {
		case ttlCommands[cmd]:
			l.unshiftable(cmd)
		case ttlMovers[cmd]:
			l.mu.Lock()
			l.moved = true
			l.mu.Unlock()
		}
	}
	return false
}

// shiftOptions shifts the TTL option of SET or GETEX, read as miniredis
// reads them (an EX or EXAT becomes PX or PXAT).
func (l *lazyTTL) shiftOptions(key string, opts []string) {
	for i := 0; i < len(opts); i++ {
		switch o := strings.ToUpper(opts[i]); o {
		case "EX", "PX", "EXAT", "PXAT":
			if i+1 == len(opts) {
				return
			}
			abs := strings.HasSuffix(o, "AT")
			if o[0] == 'E' {
				ms, ok := l.millis(o, opts[i+1])
				if !ok {
					return
				}
				opts[i], opts[i+1] = "P"+o[1:], ms
			}
			opts[i+1] = l.shift(o, key, opts[i+1], abs)
			i++
		case "NX", "XX", "GET", "KEEPTTL", "PERSIST":
		default:
			return // miniredis refuses it
		}
	}
}

// shift adds the lag since the last walk to the TTL of key in
// milliseconds (a duration, or a Unix time when abs) and notes its
// deadline. A TTL that
// expires at once, or that miniredis refuses, is left as it is; one too
// far away to add to is unshiftable.
func (l *lazyTTL) shift(cmd, key, v string, abs bool) string {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return v
	}
	if n > maxTTL || n < -maxTTL {
		l.unshiftable(cmd)
		return v
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	at := l.now.Add(time.Duration(n) * time.Millisecond)
	if abs {
		at = time.UnixMilli(n)
	}
	if !at.After(l.now) {
		return v
	}
	heap.Push(&l.due, deadline{at: at, key: key})
	return strconv.FormatInt(n+l.now.Sub(l.walked).Milliseconds(), 10)
}

// maxTTL bounds the milliseconds shift takes (a relative TTL of over a
// century; as a Unix time, the year 2109).
const maxTTL = 1 << 42

// unshiftable turns walking at every step on for good; cmd met while
// the TTLs lag is an error.
func (l *lazyTTL) unshiftable(cmd string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.eager = true
	if !l.now.Equal(l.walked) && l.err == nil {
		l.err = fmt.Errorf("embedded Redis: %s met while its TTLs lag the virtual clock by %s (sim/ttl.go shifts only SET, GETEX and the EXPIRE family)",
			cmd, l.now.Sub(l.walked))
	}
}

// millis is a count of seconds as milliseconds; false when miniredis
// refuses it, or when it is too large to shift (then unshiftable).
func (l *lazyTTL) millis(cmd, v string) (string, bool) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return v, false
	}
	if n > maxTTL/1000 || n < -maxTTL/1000 {
		l.unshiftable(cmd)
		return v, false
	}
	return strconv.FormatInt(n*1000, 10), true
}

// deadline is when a key's TTL runs out, as set.
type deadline struct {
	at  time.Time
	key string
}

// deadlineHeap is a min-heap of deadlines.
type deadlineHeap []deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}
