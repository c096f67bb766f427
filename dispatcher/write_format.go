package dispatcher

import "fmt"

// WriteFormat chooses the layout of the Redis records whose format changed
// in the 2026-12 release (the per-event outcome record, the sent-marker,
// the id index, the open escalations' history members and a channel's
// "sent" in the intent hash). This version
// reads both layouts whatever it writes. Writing the previous layout
// keeps a rollback to the release before possible: that release cannot
// read the current layout (it fails on such a record and retries, for as
// long as the record lives), so a deployment that may roll back runs with
// WritePrevious until no earlier instance will run again.
type WriteFormat int

const (
	// WriteCurrent writes the compact layout (the default).
	WriteCurrent WriteFormat = iota
	// WritePrevious writes what the release before 2026-12 writes and reads.
	WritePrevious
)

// ParseWriteFormat reads REDIS_WRITE_FORMAT: "current" (or empty) or
// "previous".
func ParseWriteFormat(s string) (WriteFormat, error) {
	switch s {
	case "", "current":
		return WriteCurrent, nil
	case "previous":
		return WritePrevious, nil
	}
	return WriteCurrent, fmt.Errorf("want current or previous")
}

func (f WriteFormat) String() string {
	if f == WritePrevious {
		return "previous"
	}
	return "current"
}
