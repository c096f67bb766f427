package rules

import (
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/viogen-alerts/dispatcher/event"
)

// Most conditions start with `event.type == "..."`: the engine runs a rule
// only for the event types its condition can match, which spares running
// every condition on every event. A condition whose types cannot be read
// off its syntax runs for every event.

// eventTypes returns the event types a condition can be true for, or
// ok=false when the condition does not restrict the type.
func eventTypes(cond string) (types []string, ok bool) {
	tree, err := parser.Parse(cond)
	if err != nil {
		return nil, false
	}
	return typesOf(tree.Node)
}

func typesOf(n ast.Node) ([]string, bool) {
	b, isBin := n.(*ast.BinaryNode)
	if !isBin {
		return nil, false
	}
	switch b.Operator {
	case "&&", "and":
		// A conjunction is true only where each side is: either side's
		// restriction holds for the whole.
		if ts, ok := typesOf(b.Left); ok {
			return ts, true
		}
		return typesOf(b.Right)
	case "||", "or":
		l, okL := typesOf(b.Left)
		r, okR := typesOf(b.Right)
		if okL && okR {
			return append(l, r...), true
		}
	case "==":
		if isEventType(b.Left) {
			if s, ok := b.Right.(*ast.StringNode); ok {
				return []string{s.Value}, true
			}
		}
		if isEventType(b.Right) {
			if s, ok := b.Left.(*ast.StringNode); ok {
				return []string{s.Value}, true
			}
		}
	case "in":
		arr, ok := b.Right.(*ast.ArrayNode)
		if !isEventType(b.Left) || !ok {
			return nil, false
		}
		var ts []string
		for _, el := range arr.Nodes {
			s, ok := el.(*ast.StringNode)
			if !ok {
				return nil, false
			}
			ts = append(ts, s.Value)
		}
		return ts, true
	}
	return nil, false
}

// isEventType matches `event.type`.
func isEventType(n ast.Node) bool {
	m, ok := n.(*ast.MemberNode)
	if !ok || m.Optional {
		return false
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	prop, ok2 := m.Property.(*ast.StringNode)
	return ok && ok2 && id.Value == "event" && prop.Value == "type"
}

// ruleIndex lists, per event type, the rules to run, in configuration
// order; any lists the rules for types no condition names.
type ruleIndex struct {
	byType map[event.Type][]*Rule
	any    []*Rule
}

func buildIndex(rules []*Rule) ruleIndex {
	idx := ruleIndex{byType: map[event.Type][]*Rule{}}
	restrict := make([]map[string]bool, len(rules))
	for i, r := range rules {
		if ts, ok := eventTypes(r.When); ok {
			restrict[i] = map[string]bool{}
			for _, t := range ts {
				restrict[i][t] = true
				idx.byType[event.Type(t)] = nil
			}
		}
	}
	for _, t := range append(append([]event.Type(nil), event.UpstreamTypes...), event.InternalTypes...) {
		idx.byType[t] = nil
	}
	for t := range idx.byType {
		for i, r := range rules {
			if restrict[i] == nil || restrict[i][string(t)] {
				idx.byType[t] = append(idx.byType[t], r)
			}
		}
	}
	for i, r := range rules {
		if restrict[i] == nil {
			idx.any = append(idx.any, r)
		}
	}
	return idx
}

func (idx *ruleIndex) rules(t event.Type) []*Rule {
	if rs, ok := idx.byType[t]; ok {
		return rs
	}
	return idx.any
}
