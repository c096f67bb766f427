package dispatcher

import (
	"strconv"

	"github.com/segmentio/kafka-go"
)

// Dead-letter headers (docs/events.md).
const (
	HeaderReason          = "reason"
	HeaderSourceTopic     = "source_topic"
	HeaderSourcePartition = "source_partition"
	HeaderSourceOffset    = "source_offset"
)

// deadLetter wraps a rejected message for the DLQ: original key, bytes and
// headers, plus why and where it came from.
func deadLetter(m kafka.Message, reason string) kafka.Message {
	h := make([]kafka.Header, 0, len(m.Headers)+4)
	for _, x := range m.Headers {
		switch x.Key {
		case HeaderReason, HeaderSourceTopic, HeaderSourcePartition, HeaderSourceOffset:
			continue // ours win; a re-driven DLQ message gets fresh ones
		}
		h = append(h, x)
	}
	h = append(h,
		kafka.Header{Key: HeaderReason, Value: []byte(reason)},
		kafka.Header{Key: HeaderSourceTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
	)
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: h}
}
