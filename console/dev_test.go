package console

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/viogen-alerts/dispatcher/rules"
)

func TestDevOperatorsOnePerAgency(t *testing.T) {
	cfg, err := rules.LoadFile("../deploy/config/viogen.yaml", rules.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ops, logins, err := DevOperators(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != len(cfg.Agencies) || len(logins) != len(ops) {
		t.Fatalf("%d operators for %d agencies", len(ops), len(cfg.Agencies))
	}
	watch := map[string]string{}
	for i, op := range ops {
		if op.Agency != cfg.Agencies[i].ID || op.ID != "dev-"+op.Agency {
			t.Errorf("operator %+v", op)
		}
		if bcrypt.CompareHashAndPassword([]byte(op.PasswordBcrypt), []byte(logins[i].Password)) != nil {
			t.Errorf("%s: printed password does not match its hash", op.ID)
		}
		watch[op.Agency] = strings.Join(op.Watch, ",")
	}
	// imcm is Castilla-La Mancha's center, ibd the Balearic one.
	if w := watch["imcm"]; w != "gc-ciudad-real,pl-herencia,cm-herencia" {
		t.Errorf("imcm watches %q", w)
	}
	if w := watch["ibd"]; w != "pn-illes-balears,pl-palma,consell-mallorca" {
		t.Errorf("ibd watches %q", w)
	}
	if w := watch["gc-ciudad-real"]; w != "" {
		t.Errorf("a responsible unit watches %q", w)
	}
	if w := watch["ses-viogen"]; strings.Count(w, ",") != len(cfg.Agencies)-2 {
		t.Errorf("the national center watches %q", w)
	}
}
