package rules

import (
	"golang.org/x/crypto/bcrypt"
)

// Bounds of an operator's bcrypt cost: below 10 is too cheap to guess
// against, above 14 makes every login a denial of service.
const (
	minOperatorCost = 10
	maxOperatorCost = 14
)

func (v *validator) operators() {
	seen := map[string]string{}
	for i := range v.cfg.Operators {
		o := &v.cfg.Operators[i]
		path := indexPath("operators", i)
		if o.ID != "" && !idRe.MatchString(o.ID) {
			v.errorf(path+".id", "invalid operator id %q: use lower case letters, digits, '-' and '_'", o.ID)
		}
		v.unique(seen, "operator", o.ID, path+".id")
		a, known := v.cfg.dir.byID[o.Agency]
		if o.Agency != "" && !known {
			v.errorf(path+".agency", "unknown agency %q", o.Agency)
		}
		switch o.Role {
		case "", RoleOperator, RoleViewer:
		default:
			v.errorf(path+".role", "unknown role %q: want operator or viewer", o.Role)
		}
		if o.PasswordBcrypt != "" {
			cost, err := bcrypt.Cost([]byte(o.PasswordBcrypt))
			switch {
			case err != nil:
				v.errorf(path+".password_bcrypt", "not a bcrypt hash (want \"$2b$12$...\", 60 characters)")
			case cost < minOperatorCost || cost > maxOperatorCost:
				v.errorf(path+".password_bcrypt", "bcrypt cost %d out of range %d to %d", cost, minOperatorCost, maxOperatorCost)
			}
		}
		if len(o.Watch) > 0 && known && a.Kind != "coordinating_center" {
			v.errorf(path+".watch", "only an operator of a coordinating_center may watch other agencies; %q is %s", o.Agency, a.Kind)
		}
		for j, w := range o.Watch {
			if _, ok := v.cfg.dir.byID[w]; !ok {
				v.errorf(indexPath(path+".watch", j), "unknown agency %q", w)
			}
		}
	}
}
