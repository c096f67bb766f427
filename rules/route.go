package rules

import (
	"fmt"
	"strings"

	"github.com/viogen-alerts/dispatcher/event"
)

// Target selectors with a fixed meaning; see Reference for the syntax.
const (
	SelectResponsible         = "responsible"
	SelectPreviousResponsible = "previous_responsible"
	SelectPreviousPrefix      = "previous:"
	SelectReleasePrefix       = "release_destination:"
)

// KindResponsibleUnit is the agency kind of police units that own cases;
// load-time role checks of responsible / previous_responsible targets
// apply to the agencies of this kind.
const KindResponsibleUnit = "responsible_unit"

// Resolve turns one policy step into concrete contacts through the agency
// directory. A selector that matches no agency, an unknown unit, or an
// agency without a reachable contact of the role, sends that part of the
// step to the fallback agency and reports unrouted: nothing is dropped.
// Optional selectors that match no agency, and previous_* selectors of a
// case that did not move, give no targets and are not unrouted.
func (c *Config) Resolve(step PolicyStep, rc RouteContext) (targets []Target, unrouted bool) {
	rc.Jurisdiction = completeJurisdiction(rc.Jurisdiction)
	rc.PreviousJurisdiction = completeJurisdiction(rc.PreviousJurisdiction)
	for _, spec := range step.Notify {
		ts, reason := c.resolveSpec(spec, rc)
		targets = mergeTargets(targets, ts)
		if reason != "" {
			unrouted = true
			targets = mergeTargets(targets, c.fallbackTargets(spec, reason))
		}
	}
	return targets, unrouted
}

// resolveSpec returns the spec's targets and, when part of it could not
// be routed, why.
func (c *Config) resolveSpec(spec TargetSpec, rc RouteContext) ([]Target, string) {
	if spec.Contact != "" {
		ref, ok := c.dir.contacts[spec.Contact]
		if !ok {
			return nil, fmt.Sprintf("unknown contact %q", spec.Contact)
		}
		if t, ok := c.makeTarget(ref.agency, ref.contact, spec); ok {
			return []Target{t}, ""
		}
		return nil, fmt.Sprintf("contact %q has no address for %s", spec.Contact, channelList(spec))
	}
	var one [1]*Agency
	agencies, reason := c.reach(spec, &rc, &one)
	var out []Target
	var reasons []string
	if reason != "" {
		reasons = append(reasons, reason)
	}
	for _, a := range agencies {
		n := len(out)
		for i := range a.Contacts {
			ct := &a.Contacts[i]
			if spec.Role != "" && ct.Role != spec.Role {
				continue
			}
			if t, ok := c.makeTarget(a, ct, spec); ok {
				out = append(out, t)
			}
		}
		if len(out) == n {
			reasons = append(reasons, noContact(a, spec))
		}
	}
	return out, strings.Join(reasons, "; ")
}

// routes reports, without building targets, whether every selector of
// the step resolves for the case (no fallback needed).
func (c *Config) routes(step *PolicyStep, rc *RouteContext) bool {
	for i := range step.Notify {
		spec := &step.Notify[i]
		if spec.Contact != "" {
			ref, ok := c.dir.contacts[spec.Contact]
			if !ok || !canReach(ref.contact, spec) {
				return false
			}
			continue
		}
		var one [1]*Agency
		agencies, reason := c.reach(*spec, rc, &one)
		if reason != "" {
			return false
		}
		for _, a := range agencies {
			if !hasContactFor(a, spec) {
				return false
			}
		}
	}
	return true
}

// reach lists the agencies a selector reaches for a case; reason says why
// it reaches none when it should. Single agencies are returned in one,
// which saves an allocation per evaluation.
func (c *Config) reach(spec TargetSpec, rc *RouteContext, one *[1]*Agency) ([]*Agency, string) {
	d := &c.dir
	sel := d.parseSelector(spec.Agency)
	switch sel.kind {
	case selResponsible:
		if rc.ResponsibleUnit == "" {
			return nil, "case has no responsible unit"
		}
		if one[0] = d.byID[rc.ResponsibleUnit]; one[0] == nil {
			return nil, fmt.Sprintf("unknown responsible unit %q", rc.ResponsibleUnit)
		}
		return one[:], ""
	case selPreviousResponsible:
		if !rc.unitChanged() {
			return nil, ""
		}
		if one[0] = d.byID[rc.PreviousUnit]; one[0] == nil {
			return nil, fmt.Sprintf("unknown previous responsible unit %q", rc.PreviousUnit)
		}
		return one[:], ""
	case selByKind, selPreviousKind, selReleaseKind:
		j := rc.Jurisdiction
		switch sel.kind {
		case selPreviousKind:
			if !rc.placeChanged() {
				return nil, ""
			}
			j = rc.PreviousJurisdiction
		case selReleaseKind:
			if rc.ReleaseDestination == "" {
				if spec.Optional {
					return nil, ""
				}
				return nil, "the event names no release destination"
			}
			j = completeJurisdiction(event.Jurisdiction{Municipality: rc.ReleaseDestination})
		}
		agencies := d.match(sel.arg, j)
		if len(agencies) == 0 && !spec.Optional {
			return nil, fmt.Sprintf("no %s serves municipality %q, province %q or region %q",
				sel.arg, j.Municipality, j.Province, j.Region)
		}
		return agencies, ""
	}
	if one[0] = d.byID[sel.arg]; one[0] == nil {
		return nil, fmt.Sprintf("unknown agency %q", sel.arg)
	}
	return one[:], ""
}

// hasContactFor reports whether the agency has a contact of the spec's
// role (any, without one) reachable by its channels.
func hasContactFor(a *Agency, spec *TargetSpec) bool {
	for i := range a.Contacts {
		ct := &a.Contacts[i]
		if (spec.Role == "" || ct.Role == spec.Role) && canReach(ct, spec) {
			return true
		}
	}
	return false
}

// canReach reports whether makeTarget would keep the contact.
func canReach(ct *Contact, spec *TargetSpec) bool {
	for _, ch := range spec.Via {
		if hasAddress(ct, ch) {
			return true
		}
	}
	for _, ch := range spec.Fallback {
		if hasAddress(ct, ch) {
			return true
		}
	}
	return false
}

func noContact(a *Agency, spec TargetSpec) string {
	return fmt.Sprintf("agency %q has no contact%s reachable by %s", a.ID, roleText(spec.Role), channelList(spec))
}

// fallbackTargets stands the fallback agency in for a spec that could not
// be routed: its contacts of the spec's role if it has reachable ones,
// else all its contacts, over whatever channels they can be reached by.
func (c *Config) fallbackTargets(spec TargetSpec, reason string) []Target {
	fa := c.dir.byID[c.FallbackAgency]
	if fa == nil { // only possible with a hand-built Config
		return nil
	}
	var out []Target
	for pass := 0; pass < 2 && len(out) == 0; pass++ {
		for i := range fa.Contacts {
			ct := &fa.Contacts[i]
			if pass == 0 && (spec.Role == "" || ct.Role != spec.Role) {
				continue
			}
			t, ok := c.makeTarget(fa, ct, spec)
			if !ok {
				t, ok = c.makeTarget(fa, ct, TargetSpec{Agency: spec.Agency, Via: contactChannels(ct)})
			}
			if ok {
				t.Unrouted, t.Reason = true, reason
				out = append(out, t)
			}
		}
	}
	return out
}

// makeTarget keeps the spec's channels the contact has an address for.

// Recipients returns the contacts a schedule's digest goes to: for every
// agency its `to` selects (all agencies of a kind, or one agency), the
// contacts of the role reachable by its channels. Each target's AgencyID
// says which agency's cases its digest lists.
func (c *Config) Recipients(s *Schedule) []Target {
	spec := TargetSpec{Agency: s.To.Agency, Role: s.To.Role, Via: s.Via}
	agencies := c.dir.kinds[s.To.Agency]
	if a := c.dir.byID[s.To.Agency]; agencies == nil && a != nil {
		agencies = []*Agency{a}
	}
	var out []Target
	for _, a := range agencies {
		for i := range a.Contacts {
			ct := &a.Contacts[i]
			if spec.Role != "" && ct.Role != spec.Role {
				continue
			}
			if t, ok := c.makeTarget(a, ct, spec); ok {
				out = append(out, t)
			}
		}
	}
	return out
}
