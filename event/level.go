package event

import (
	"encoding/json"
	"fmt"
)

// Level is a VioGén risk level. The zero value means "no level known".
type Level int8

// Risk levels in increasing order of danger.
const (
	LevelNone Level = iota
	Bajo
	Medio
	Alto
	Extremo
)

var levelNames = [...]string{"", "bajo", "medio", "alto", "extremo"}

// ParseLevel reads a level name. The legacy "no_apreciado" (removed in
// VioGén 2) reads as Bajo, as the domain brief asks.
func ParseLevel(s string) (Level, error) {
	switch s {
	case "bajo", "no_apreciado":
		return Bajo, nil
	case "medio":
		return Medio, nil
	case "alto":
		return Alto, nil
	case "extremo":
		return Extremo, nil
	}
	return LevelNone, fmt.Errorf("unknown risk level %q (want bajo, medio, alto or extremo)", s)
}

func (l Level) String() string {
	if l < 0 || int(l) >= len(levelNames) {
		return fmt.Sprintf("level(%d)", int(l))
	}
	return levelNames[l]
}

// MarshalJSON writes the level name; LevelNone is written as "".
func (l Level) MarshalJSON() ([]byte, error) { return json.Marshal(l.String()) }

// UnmarshalJSON reads a level name; "" reads as LevelNone.
func (l *Level) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("risk level must be a string: %w", err)
	}
	if s == "" {
		*l = LevelNone
		return nil
	}
	v, err := ParseLevel(s)
	if err != nil {
		return err
	}
	*l = v
	return nil
}
