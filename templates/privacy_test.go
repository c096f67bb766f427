package templates

import (
	"strings"
	"testing"
)

func TestCheckPrivacy(t *testing.T) {
	bad := map[string]string{
		"+34600000001":          "phone",
		"llame al 600000001":    "phone",
		"tel 0034 600 000 001":  "phone",
		"móvil 612 34 56 78":    "phone",
		"móvil 612-345-678":     "phone",
		"fijo 926.123.456":      "phone",
		"jefatura@example.org":  "email",
		"DNI 12345678Z":         "DNI",
		"NIE X1234567L":         "NIE",
		"C/ Mayor 3":            "street",
		"c/Mayor":               "street",
		"calle Mayor":           "street",
		"Avenida de la Paz":     "street",
		"avda. Constitución":    "street",
		"Plaza de España":       "street",
		"piso 3º":               "street",
		"Carrer Major":          "street",
		"Sra. Gómez":            "honorific",
		"Violencia de Género":   "forbidden",
		"VIOLENCIA DE GENERO":   "forbidden",
		"violència de gènere":   "forbidden",
		"violencia machista":    "forbidden",
		"gender-based violence": "forbidden",
		"la víctima":            "forbidden",
		"VICTIMA":               "forbidden",
		"victim":                "forbidden",
		"el agresor":            "forbidden",
		"l'agressor":            "forbidden",
		"aggressor":             "forbidden",
		"maltratador":           "forbidden",
		"abuser":                "forbidden",
	}
	for in, want := range bad {
		err := CheckPrivacy(in)
		if err == nil {
			t.Errorf("CheckPrivacy(%q) = nil, want a %s finding", in, want)
			continue
		}
		if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
			t.Errorf("CheckPrivacy(%q) = %v, want a %s finding", in, err, want)
		}
		if strings.Contains(err.Error(), in) {
			t.Errorf("CheckPrivacy(%q) echoes the text: %v", in, err)
		}
	}
	good := []string{
		"CRITICA: riesgo ALTO->EXTREMO exp C-HER-001234. Revise la proteccion ya. Plazo 15:04 02/01. Responda ACK K7Q2. Ref a3f9c2d1e8b74a10",
		"Policía Local de Herencia", "Institut Balear de la Dona", "Guardia Civil - Puesto de Herencia",
		"VioGén > Expediente C-HER-0001", "https://intranet.example/expedientes/C-HER-0001",
		"plazo", "paso 2", "ver email/VioGén", "Comisaría Provincial de Policía Nacional de Ciudad Real",
		"12345678", "llame al 091", "ref 0b1c2d3e4f5a6b7c",
	}
	for _, in := range good {
		if err := CheckPrivacy(in); err != nil {
			t.Errorf("CheckPrivacy(%q) = %v, want nil", in, err)
		}
	}
}
