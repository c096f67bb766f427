package dispatcher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
)

// A positional record is a JSON array: the format version, then the
// fields of a record struct (escRecord, sentRecord) in the struct's
// order, without names. A field left empty is written as null, and the
// empty fields at the end are left out, so the struct's order puts the
// fields most records fill first. Fields are only ever appended to the
// struct: a field's place is its name in the records already written.
//
// The record's first struct field is its version, written first; the
// other fields are encoded as encoding/json encodes them (their
// MarshalJSON where they have one), and empty means IsZero (the type's
// own method where it has one). An earlier version given a positional
// record decodes it as a JSON object and fails loudly.

type zeroer interface{ IsZero() bool }

var (
	zeroerType    = reflect.TypeFor[zeroer]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
)

// appendPositional writes rec (a struct) as a positional record.
func appendPositional(b []byte, rec any) ([]byte, error) {
	v := reflect.ValueOf(rec)
	if v.NumField() > 64 {
		return nil, fmt.Errorf("%s: more than 64 fields", v.Type())
	}
	var filled uint64 // bit i: field i is filled
	for i := 1; i < v.NumField(); i++ {
		if !emptyField(v.Field(i)) {
			filled |= 1 << i
		}
	}
	b = append(b, '[')
	b = strconv.AppendInt(b, v.Field(0).Int(), 10)
	for i := 1; filled>>i != 0; i++ {
		b = append(b, ',')
		if filled&(1<<i) == 0 {
			b = append(b, "null"...)
			continue
		}
		f := v.Field(i)
		var err error
		if b, err = appendField(b, f); err != nil {
			return nil, fmt.Errorf("field %s: %w", v.Type().Field(i).Name, err)
		}
	}
	return append(b, ']'), nil
}

func emptyField(f reflect.Value) bool {
	if f.Kind() == reflect.Pointer && f.IsNil() {
		return true
	}
	if f.Type().Implements(zeroerType) {
		return f.Interface().(zeroer).IsZero()
	}
	return f.IsZero()
}

// appendField writes one field; strings and integers (the common ones)
// without encoding/json's reflection.
func appendField(b []byte, f reflect.Value) ([]byte, error) {
	if f.Kind() == reflect.Pointer && f.Elem().Kind() != reflect.Struct {
		f = f.Elem()
	}
	switch custom := f.Type().Implements(marshalerType); {
	case custom:
	case f.Kind() == reflect.String:
		w := jsonAppender{b: b, ok: true}
		w.str(f.String())
		if w.ok {
			return w.b, nil
		}
	case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
		return strconv.AppendInt(b, f.Int(), 10), nil
	}
	j, err := json.Marshal(f.Interface())
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

// decodePositional reads a positional record into rec (a pointer to a
// struct) and returns its version; fields not written stay empty. A
// record with more fields than the struct has is an error.
func decodePositional(b []byte, rec any) (int, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return 0, err
	}
	v := reflect.ValueOf(rec).Elem()
	if len(raw) == 0 {
		return 0, fmt.Errorf("no version")
	}
	if len(raw) > v.NumField() {
		return 0, fmt.Errorf("%d fields, this version knows %d", len(raw)-1, v.NumField()-1)
	}
	version, err := strconv.Atoi(string(raw[0]))
	if err != nil {
		return 0, fmt.Errorf("version %s: %w", raw[0], err)
	}
	v.Field(0).SetInt(int64(version))
	for i := 1; i < len(raw); i++ {
		if string(raw[i]) == "null" {
			continue
		}
		if err := decodeField(raw[i], v.Field(i)); err != nil {
			return 0, fmt.Errorf("field %s: %w", v.Type().Field(i).Name, err)
		}
	}
	return version, nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// decodeField reads one field; strings without escapes and integers (the
// common ones) without encoding/json's reflection.
func decodeField(raw []byte, f reflect.Value) error {
	t := f.Type()
	if t.Kind() == reflect.Pointer && t.Elem().Kind() != reflect.Struct {
		p := reflect.New(t.Elem())
		if err := decodeField(raw, p.Elem()); err != nil {
			return err
		}
		f.Set(p)
		return nil
	}
	if !reflect.PointerTo(t).Implements(unmarshalerType) {
		switch t.Kind() {
		case reflect.String:
			if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && !bytes.ContainsAny(raw[1:n-1], "\\\"") {
				f.SetString(string(raw[1 : n-1]))
				return nil
			}
		case reflect.Int, reflect.Int64:
			if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
				f.SetInt(n)
				return nil
			}
		}
	}
	return json.Unmarshal(raw, f.Addr().Interface())
}
