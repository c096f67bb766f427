package rules

import (
	"strings"

	"github.com/viogen-alerts/dispatcher/event"
)

// directory indexes the agencies for routing: by id, by contact id, and by
// kind and served area.
type directory struct {
	byID     map[string]*Agency
	contacts map[string]contactRef
	kinds    map[string][]*Agency
	area     map[areaKey][]*Agency // kind "" indexes every agency
}

type contactRef struct {
	agency  *Agency
	contact *Contact
}

// areaKey is an agency kind with one served area; scope is 'm'
// (municipality), 'p' (province) or 'r' (region).
type areaKey struct {
	kind  string
	scope byte
	code  string
}

func buildDirectory(agencies []Agency) directory {
	d := directory{
		byID:     make(map[string]*Agency, len(agencies)),
		contacts: make(map[string]contactRef),
		kinds:    make(map[string][]*Agency),
		area:     make(map[areaKey][]*Agency),
	}
	for i := range agencies {
		a := &agencies[i]
		if _, dup := d.byID[a.ID]; !dup {
			d.byID[a.ID] = a
		}
		if a.Kind != "" {
			d.kinds[a.Kind] = append(d.kinds[a.Kind], a)
		}
		for j := range a.Contacts {
			if _, dup := d.contacts[a.Contacts[j].ID]; !dup {
				d.contacts[a.Contacts[j].ID] = contactRef{a, &a.Contacts[j]}
			}
		}
		add := func(scope byte, codes []string) {
			for _, code := range codes {
				d.area[areaKey{a.Kind, scope, code}] = append(d.area[areaKey{a.Kind, scope, code}], a)
				d.area[areaKey{"", scope, code}] = append(d.area[areaKey{"", scope, code}], a)
			}
		}
		add('m', a.Serves.Municipalities)
		add('p', a.Serves.Provinces)
		add('r', a.Serves.Regions)
	}
	return d
}

// match returns the agencies of a kind serving j, most specific first:
// those listing the municipality, else the province, else the region.
func (d *directory) match(kind string, j event.Jurisdiction) []*Agency {
	if j.Municipality != "" {
		if as := d.area[areaKey{kind, 'm', j.Municipality}]; len(as) > 0 {
			return as
		}
	}
	if j.Province != "" {
		if as := d.area[areaKey{kind, 'p', j.Province}]; len(as) > 0 {
			return as
		}
	}
	if j.Region != "" {
		return d.area[areaKey{kind, 'r', j.Region}]
	}
	return nil
}

// serves reports whether any agency serves j.
func (d *directory) serves(j event.Jurisdiction) bool { return len(d.match("", j)) > 0 }

type selType int

const (
	selAgency selType = iota
	selResponsible
	selPreviousResponsible
	selByKind
	selPreviousKind
	selReleaseKind
)

type selector struct {
	kind selType
	arg  string // the agency kind or id
}

// parseSelector reads a target's agency selector. A word that is an agency
// kind selects by kind; validation keeps agency ids distinct from kinds.
func (d *directory) parseSelector(s string) selector {
	switch {
	case s == SelectResponsible:
		return selector{kind: selResponsible}
	case s == SelectPreviousResponsible:
		return selector{kind: selPreviousResponsible}
	case strings.HasPrefix(s, SelectPreviousPrefix):
		return selector{selPreviousKind, strings.TrimPrefix(s, SelectPreviousPrefix)}
	case strings.HasPrefix(s, SelectReleasePrefix):
		return selector{selReleaseKind, strings.TrimPrefix(s, SelectReleasePrefix)}
	case d.kinds[s] != nil:
		return selector{selByKind, s}
	}
	return selector{selAgency, s}
}
