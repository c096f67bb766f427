package webhook

import (
	"errors"
	"fmt"
	"net/url"
)

// ValidateURL reports whether the channel sends to target: an absolute
// https URL with a host, or an http one when allowHTTP (Config.AllowHTTP,
// which the dispatcher never sets outside tests). Send refuses any other
// target permanently; the configuration loader refuses the same URLs at
// load, so a bad one cannot fail every send. Errors never quote the URL.
func ValidateURL(target string, allowHTTP bool) error {
	u, err := url.Parse(target)
	switch {
	case err != nil || u.Host == "":
		return errors.New("not an absolute URL with a host")
	case u.Scheme == "https", u.Scheme == "http" && allowHTTP:
		return nil
	case u.Scheme == "http":
		return errors.New("http:// is refused: the webhook channel sends only to https:// URLs")
	}
	return fmt.Errorf("scheme %q is refused: want https://", u.Scheme)
}
