// Package rules is the dispatcher's decision core: the configuration model
// and its validation, the agency directory and routing, escalation and
// check-in policies, and the alert rules written in expr-lang/expr.
//
// It is pure: no Kafka, no Redis, no network, no environment reading. The
// same structs that parse the YAML also generate docs/configuration.md
// (see Reference), so the reference cannot drift from the code.
package rules

//go:generate go test -run TestReferenceUpToDate -update .
