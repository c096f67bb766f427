package sms

// ValidNumber reports whether Send accepts to as a recipient: an E.164
// number, + and 7 to 15 digits, the first not 0. Any other recipient is
// refused permanently, so the configuration loader accepts no more.
func ValidNumber(to string) bool { return e164Re.MatchString(to) }
