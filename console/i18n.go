package console

import "strings"

// The console's languages; an agency's locale ("es-ES") picks by its
// language, and ?lang= switches for the session.
const defaultLang = "es"

var langs = []string{"es", "ca", "en"}

func knownLang(l string) bool { return l == "es" || l == "ca" || l == "en" }

func langOf(locale string) string {
	l, _, _ := strings.Cut(strings.ToLower(locale), "-")
	if knownLang(l) {
		return l
	}
	return defaultLang
}

// messages holds every string of the pages, per language. A key missing
// in a language falls back to Spanish (TestMessagesComplete keeps them
// complete).
var messages = map[string]map[string]string{
	"es": {
		"title":              "Consola de alertas",
		"login":              "Iniciar sesión",
		"logout":             "Cerrar sesión",
		"operator_id":        "Identificador de operador",
		"password":           "Contraseña",
		"login_failed":       "Identificador o contraseña incorrectos.",
		"login_limited":      "Demasiados intentos. Espere unos minutos.",
		"csrf_refused":       "Formulario caducado o no válido. Vuelva a cargar la página.",
		"open":               "Escaladas abiertas",
		"none_open":          "No hay escaladas abiertas.",
		"case_ref":           "Expediente",
		"severity":           "Gravedad",
		"rule":               "Regla",
		"step":               "Paso",
		"next_deadline":      "Próximo plazo",
		"agencies":           "Organismos",
		"acknowledge":        "Confirmar",
		"ack_for":            "Confirmar la alerta del expediente",
		"details":            "Detalle",
		"timeline":           "Cronología",
		"event":              "Evento",
		"opened":             "Abierta",
		"state":              "Estado",
		"state_open":         "abierta",
		"state_acknowledged": "confirmada",
		"state_closed":       "cerrada",
		"steps":              "Pasos de la escalada",
		"current":            "actual",
		"skipped":            "sin destinatarios",
		"ack_within":         "confirmar en",
		"repeat":             "repeticiones",
		"notified":           "Organismos avisados",
		"merged":             "Alertas críticas agrupadas",
		"acknowledgement":    "Confirmación",
		"acked_by":           "Confirmada por",
		"via":                "vía",
		"not_acked":          "Sin confirmar.",
		"ack_sent":           "Confirmación enviada; la escalada se detiene en unos segundos.",
		"not_open":           "Esta escalada ya no está abierta.",
		"viewer":             "Su perfil solo permite consultar.",
		"back":               "Volver a las escaladas abiertas",
		"signed_in_as":       "Operador",
		"language":           "Idioma",
		"time_zone":          "Horas en",
		"none":               "—",
		"error":              "Error",
		"not_found":          "No encontrada.",
		"alert_ref":          "Referencia de alerta",
		"live":               "La lista se actualiza sola.",
	},
	"ca": {
		"title":              "Consola d'alertes",
		"login":              "Inicia la sessió",
		"logout":             "Tanca la sessió",
		"operator_id":        "Identificador d'operador",
		"password":           "Contrasenya",
		"login_failed":       "Identificador o contrasenya incorrectes.",
		"login_limited":      "Massa intents. Espereu uns minuts.",
		"csrf_refused":       "Formulari caducat o no vàlid. Torneu a carregar la pàgina.",
		"open":               "Escalades obertes",
		"none_open":          "No hi ha escalades obertes.",
		"case_ref":           "Expedient",
		"severity":           "Gravetat",
		"rule":               "Regla",
		"step":               "Pas",
		"next_deadline":      "Proper termini",
		"agencies":           "Organismes",
		"acknowledge":        "Confirma",
		"ack_for":            "Confirma l'alerta de l'expedient",
		"details":            "Detall",
		"timeline":           "Cronologia",
		"event":              "Esdeveniment",
		"opened":             "Oberta",
		"state":              "Estat",
		"state_open":         "oberta",
		"state_acknowledged": "confirmada",
		"state_closed":       "tancada",
		"steps":              "Passos de l'escalada",
		"current":            "actual",
		"skipped":            "sense destinataris",
		"ack_within":         "confirmar en",
		"repeat":             "repeticions",
		"notified":           "Organismes avisats",
		"merged":             "Alertes crítiques agrupades",
		"acknowledgement":    "Confirmació",
		"acked_by":           "Confirmada per",
		"via":                "via",
		"not_acked":          "Sense confirmar.",
		"ack_sent":           "Confirmació enviada; l'escalada s'atura en uns segons.",
		"not_open":           "Aquesta escalada ja no és oberta.",
		"viewer":             "El vostre perfil només permet consultar.",
		"back":               "Torna a les escalades obertes",
		"signed_in_as":       "Operador",
		"language":           "Idioma",
		"time_zone":          "Hores a",
		"none":               "—",
		"error":              "Error",
		"not_found":          "No trobada.",
		"alert_ref":          "Referència de l'alerta",
		"live":               "La llista s'actualitza sola.",
	},
	"en": {
		"title":              "Alert console",
		"login":              "Log in",
		"logout":             "Log out",
		"operator_id":        "Operator id",
		"password":           "Password",
		"login_failed":       "Wrong operator id or password.",
		"login_limited":      "Too many attempts. Wait a few minutes.",
		"csrf_refused":       "The form expired or is not valid. Reload the page.",
		"open":               "Open escalations",
		"none_open":          "No open escalations.",
		"case_ref":           "Case",
		"severity":           "Severity",
		"rule":               "Rule",
		"step":               "Step",
		"next_deadline":      "Next deadline",
		"agencies":           "Agencies",
		"acknowledge":        "Acknowledge",
		"ack_for":            "Acknowledge the alert of case",
		"details":            "Details",
		"timeline":           "Timeline",
		"event":              "Event",
		"opened":             "Opened",
		"state":              "State",
		"state_open":         "open",
		"state_acknowledged": "acknowledged",
		"state_closed":       "closed",
		"steps":              "Escalation steps",
		"current":            "current",
		"skipped":            "no recipients",
		"ack_within":         "acknowledge within",
		"repeat":             "repeats",
		"notified":           "Agencies notified",
		"merged":             "Merged critical alerts",
		"acknowledgement":    "Acknowledgement",
		"acked_by":           "Acknowledged by",
		"via":                "via",
		"not_acked":          "Not acknowledged.",
		"ack_sent":           "Acknowledgement sent; the escalation stops within seconds.",
		"not_open":           "This escalation is no longer open.",
		"viewer":             "Your role may only view.",
		"back":               "Back to open escalations",
		"signed_in_as":       "Operator",
		"language":           "Language",
		"time_zone":          "Times in",
		"none":               "—",
		"error":              "Error",
		"not_found":          "Not found.",
		"alert_ref":          "Alert reference",
		"live":               "The list refreshes itself.",
	},
}

func translate(lang, key string) string {
	if m, ok := messages[lang][key]; ok {
		return m
	}
	if m, ok := messages[defaultLang][key]; ok {
		return m
	}
	return key
}
