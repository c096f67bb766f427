package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/viogen-alerts/dispatcher/rules"
)

const (
	sessionCookie = "console_session"
	// loginCookie carries the login form's CSRF token (double submit):
	// there is no session yet to hold it.
	loginCookie = "console_login"
)

// session is what Redis keeps of a logged-in operator, under the SHA-256
// of the cookie value (a read of Redis does not yield usable cookies).
type session struct {
	Operator string    `json:"operator"`
	CSRF     string    `json:"csrf"`
	Lang     string    `json:"lang,omitempty"`
	Created  time.Time `json:"created"`

	key string
}

func sessionKey(token string) string {
	h := sha256.Sum256([]byte(token))
	return "console:session:" + hex.EncodeToString(h[:])
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newSession stores a session for op and returns the cookie value.
func (c *Console) newSession(ctx context.Context, op *rules.Operator, lang string) (string, error) {
	token := randomToken()
	s := session{Operator: op.ID, CSRF: randomToken(), Lang: lang, Created: c.Now().UTC()}
	b, _ := json.Marshal(s)
	if err := c.Redis.Set(ctx, sessionKey(token), b, c.IdleTimeout).Err(); err != nil {
		return "", err
	}
	return token, nil
}

var errNoSession = errors.New("no session")

// session reads the request's session and slides its idle expiry. A
// session past MaxAge, or whose operator left the configuration, is
// deleted and answered as none.
func (c *Console) session(ctx context.Context, r *http.Request) (*session, *rules.Operator, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || len(ck.Value) > 100 || ck.Value == "" {
		return nil, nil, errNoSession
	}
	key := sessionKey(ck.Value)
	b, err := c.Redis.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil, errNoSession
	}
	if err != nil {
		return nil, nil, err
	}
	var s session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, nil, errNoSession
	}
	s.key = key
	op, ok := c.operator(s.Operator)
	if !ok || c.Now().Sub(s.Created) > c.MaxAge {
		c.Redis.Del(ctx, key)
		return nil, nil, errNoSession
	}
	c.Redis.Expire(ctx, key, c.IdleTimeout)
	return &s, op, nil
}

func (c *Console) saveSession(ctx context.Context, s *session) error {
	b, _ := json.Marshal(s)
	return c.Redis.Set(ctx, s.key, b, c.IdleTimeout).Err()
}

// secure reports whether cookies get the Secure attribute: behind TLS,
// served directly or through a proxy that says so.
func secure(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r)})
}

// validCSRF compares a form's token with the expected one in constant time.
func validCSRF(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

type ctxKey struct{}

type authState struct {
	s  *session
	op *rules.Operator
}

// authed runs h for a logged-in operator; a page request without a
// session goes to the login page, any other gets 401.
func (c *Console) authed(h func(http.ResponseWriter, *http.Request, *session, *rules.Operator)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		s, op, err := c.session(ctx, r)
		if errors.Is(err, errNoSession) {
			if r.Method == http.MethodGet && r.URL.Query().Get("partial") == "" {
				http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
				return
			}
			http.Error(w, "login required", http.StatusUnauthorized)
			return
		}
		if err != nil {
			c.Log.WithError(err).Error("console: session lookup failed")
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		if l := r.URL.Query().Get("lang"); l != "" && knownLang(l) && l != s.Lang {
			s.Lang = l
			_ = c.saveSession(ctx, s)
		}
		h(w, r.WithContext(ctx), s, op)
	}
}
