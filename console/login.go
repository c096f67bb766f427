package console

import (
	"net"
	"net/http"
	"sync"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	"github.com/viogen-alerts/dispatcher/rules"
)

var (
	dummyOnce sync.Once
	dummyHash []byte
)

// checkPassword compares against the operator's hash, or against a dummy
// one for an unknown id, so the answer time does not tell which ids exist.
func checkPassword(op *rules.Operator, password string) bool {
	if op == nil {
		dummyOnce.Do(func() { dummyHash, _ = bcrypt.GenerateFromPassword([]byte("dummy-password"), 10) })
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(op.PasswordBcrypt), []byte(password)) == nil
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type loginData struct {
	base
	Error string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.renderLogin(w, r, http.StatusOK, "")
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, status int, errKey string) {
	lang := r.URL.Query().Get("lang")
	if !knownLang(lang) {
		lang = r.FormValue("lang")
	}
	if !knownLang(lang) {
		lang = defaultLang
	}
	token := randomToken()
	setCookie(w, r, loginCookie, token, Prefix+"login", 600)
	d := loginData{base: c.base(lang, nil, token, "login")}
	if errKey != "" {
		d.Error = d.T(errKey)
	}
	c.render(w, status, "login", d)
}

// login checks the form's CSRF token against its cookie, the rate limit,
// then the credential. Failures answer the same whatever was wrong.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || !validCSRF(r.PostFormValue("csrf"), ck.Value) {
		c.Log.WithField("remote", clientAddr(r)).Warn("console: login form without a valid CSRF token refused")
		c.renderLogin(w, r, http.StatusForbidden, "csrf_refused")
		return
	}
	id, password := r.PostFormValue("operator"), r.PostFormValue("password")
	if len(id) > 128 || len(password) > 72 {
		id, password = "", ""
	}
	now := c.Now()
	keys := []string{"addr:" + clientAddr(r), "op:" + id}
	if c.limiter.blocked(r.Context(), now, keys...) {
		c.Log.WithField("remote", clientAddr(r)).Warn("console: login rate limited")
		c.renderLogin(w, r, http.StatusTooManyRequests, "login_limited")
		return
	}
	op, known := c.operator(id)
	if !known {
		op = nil
	}
	if !checkPassword(op, password) {
		c.limiter.fail(r.Context(), now, keys...)
		l := c.Log.WithField("remote", clientAddr(r))
		if known {
			l = l.WithField("operator", id) // an unknown id may be a mistyped password: not logged
		}
		l.Warn("console: login failed")
		c.renderLogin(w, r, http.StatusUnauthorized, "login_failed")
		return
	}
	c.limiter.clear(r.Context(), "op:"+id)
	lang := r.PostFormValue("lang")
	if !knownLang(lang) {
		lang = ""
	}
	token, err := c.newSession(r.Context(), op, lang)
	if err != nil {
		c.Log.WithError(err).Error("console: storing the session failed")
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	setCookie(w, r, loginCookie, "", Prefix+"login", -1)
	setCookie(w, r, sessionCookie, token, Prefix, 0)
	c.Log.WithFields(logrus.Fields{"operator": op.ID, "agency": op.Agency}).Info("console: operator logged in")
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session, op *rules.Operator) {
	if !validCSRF(r.PostFormValue("csrf"), s.CSRF) {
		c.refuseCSRF(w, r, s, op)
		return
	}
	c.Redis.Del(r.Context(), s.key)
	setCookie(w, r, sessionCookie, "", Prefix, -1)
	c.Log.WithField("operator", op.ID).Info("console: operator logged out")
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

func (c *Console) refuseCSRF(w http.ResponseWriter, r *http.Request, s *session, op *rules.Operator) {
	c.Log.WithFields(logrus.Fields{"operator": op.ID, "path": r.URL.Path}).Warn("console: form without a valid CSRF token refused")
	c.renderMessage(w, http.StatusForbidden, c.base(c.lang(s, op), op, s.CSRF, ""), "csrf_refused")
}
