package console

import (
	"fmt"

	"golang.org/x/crypto/bcrypt"

	"github.com/viogen-alerts/dispatcher/rules"
)

// DevLogin is a synthetic operator made up for `dispatcher dev`.
type DevLogin struct {
	Operator, Agency, Kind, Password string
}

// DevOperators makes one operator per agency of cfg, "dev-<agency id>",
// with a random password: for the local demo only (make run), never for a
// deployment, whose operators are in the configuration. A coordinating
// center's operator watches the agencies of its regions, a national
// one (serving no territory) every agency.
func DevOperators(cfg *rules.Config) ([]rules.Operator, []DevLogin, error) {
	var ops []rules.Operator
	var logins []DevLogin
	for i := range cfg.Agencies {
		a := &cfg.Agencies[i]
		pw := randomToken()[:16]
		h, err := bcrypt.GenerateFromPassword([]byte(pw), 10)
		if err != nil {
			return nil, nil, fmt.Errorf("dev operator for %s: %w", a.ID, err)
		}
		op := rules.Operator{ID: "dev-" + a.ID, Agency: a.ID, Role: rules.RoleOperator, PasswordBcrypt: string(h)}
		if a.Kind == "coordinating_center" {
			for j := range cfg.Agencies {
				b := &cfg.Agencies[j]
				if b.ID == a.ID {
					continue
				}
				national := len(a.Serves.Regions)+len(a.Serves.Provinces)+len(a.Serves.Municipalities) == 0
				if national {
					op.Watch = append(op.Watch, b.ID)
					continue
				}
				for _, r := range a.Serves.Regions {
					if b.InRegion(r) {
						op.Watch = append(op.Watch, b.ID)
						break
					}
				}
			}
		}
		ops = append(ops, op)
		logins = append(logins, DevLogin{Operator: op.ID, Agency: a.ID, Kind: a.Kind, Password: pw})
	}
	return ops, logins, nil
}
