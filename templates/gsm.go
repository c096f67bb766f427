package templates

import (
	"strings"
	"unicode/utf16"
)

// GSM 03.38 default alphabet (ESC excluded) and its extension table, whose
// characters take two septets (ESC + char).
const (
	gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExtension = "\f^{}\\[~]|€"
)

// SMS payload limits: a single message, and each part of a concatenated one
// (the user data header takes the rest).
const (
	gsmSingle, gsmPart   = 160, 153 // septets
	ucs2Single, ucs2Part = 70, 67   // UTF-16 code units
)

var gsmCost = func() map[rune]int {
	m := make(map[rune]int, 140)
	for _, r := range gsmBasic {
		m[r] = 1
	}
	for _, r := range gsmExtension {
		m[r] = 2
	}
	return m
}()

// GSM7Segments counts the SMS segments s needs and reports whether it is
// sent in GSM-7 (true) or UCS-2 (false, as soon as one character is outside
// GSM-7). GSM-7: 160 septets in one segment, else 153 per segment, with
// extension characters (€ [ ] { } ^ ~ | \ and form feed) costing two
// septets that are never split across segments. UCS-2: 70 UTF-16 units,
// else 67 per segment, surrogate pairs never split. "" needs 0 segments.
func GSM7Segments(s string) (segments int, gsm7 bool) {
	if s == "" {
		return 0, true
	}
	costs := make([]int, 0, len(s))
	gsm7 = true
	for _, r := range s {
		c, ok := gsmCost[r]
		if !ok {
			gsm7 = false
			break
		}
		costs = append(costs, c)
	}
	single, part := gsmSingle, gsmPart
	if !gsm7 {
		single, part = ucs2Single, ucs2Part
		costs = costs[:0]
		for _, r := range s {
			c := utf16.RuneLen(r)
			if c < 1 { // invalid rune: sent as U+FFFD
				c = 1
			}
			costs = append(costs, c)
		}
	}
	total := 0
	for _, c := range costs {
		total += c
	}
	if total <= single {
		return 1, gsm7
	}
	segments, used := 1, 0
	for _, c := range costs {
		if used+c > part {
			segments++
			used = 0
		}
		used += c
	}
	return segments, gsm7
}

// gsmFold replaces characters outside GSM-7 that have a close GSM-7 form
// (Spanish and Catalan á í ó ú ç ï, typographic quotes and dashes, ...).
// One such character would otherwise switch a whole SMS to UCS-2 and cut
// its single-segment length from 160 to 70.
var gsmFold = strings.NewReplacer(
	"á", "a", "â", "a", "ã", "a", "Á", "A", "À", "A", "Â", "A", "Ã", "A",
	"í", "i", "î", "i", "ï", "i", "Í", "I", "Ì", "I", "Î", "I", "Ï", "I",
	"ó", "o", "ô", "o", "õ", "o", "Ó", "O", "Ò", "O", "Ô", "O", "Õ", "O",
	"ú", "u", "û", "u", "Ú", "U", "Ù", "U", "Û", "U",
	"ê", "e", "ë", "e", "È", "E", "Ê", "E", "Ë", "E",
	"ç", "c", "·", ".", "º", "o", "ª", "a",
	"‘", "'", "’", "'", "‚", "'", "“", "\"", "”", "\"", "„", "\"", "«", "\"", "»", "\"",
	"–", "-", "—", "-", "‐", "-", "‑", "-", "…", "...", "→", "->", "\t", " ",
)

// ToGSM7 folds s to GSM-7 where a close form exists; characters without
// one are kept (and make the SMS UCS-2).
func ToGSM7(s string) string { return gsmFold.Replace(s) }
