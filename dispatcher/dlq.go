package dispatcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/segmentio/kafka-go"
)

// Dead-letter headers (docs/events.md).
const (
	HeaderReason          = "reason"
	HeaderSourceTopic     = "source_topic"
	HeaderSourcePartition = "source_partition"
	HeaderSourceOffset    = "source_offset"
	// A bounded copy of a record too large to dead-letter whole carries
	// these too.
	HeaderOriginalSize = "original_size" // bytes of the original value
	HeaderSHA256       = "sha256"        // hex SHA-256 of the original value
	HeaderTruncated    = "truncated"     // "true"
)

// Limits of a bounded dead letter: the first deadLetterKeep bytes of the
// value, the original headers only if they total at most
// deadLetterMaxHeaders bytes, the key only if at most deadLetterMaxKey.
const (
	deadLetterKeep       = 64 << 10
	deadLetterMaxHeaders = 16 << 10
	deadLetterMaxKey     = 16 << 10
)

// deadLetter wraps a rejected message for the DLQ: original key, bytes and
// headers, plus why and where it came from.
func deadLetter(m kafka.Message, reason string) kafka.Message {
	h := make([]kafka.Header, 0, len(m.Headers)+4)
	for _, x := range m.Headers {
		switch x.Key {
		case HeaderReason, HeaderSourceTopic, HeaderSourcePartition, HeaderSourceOffset,
			HeaderOriginalSize, HeaderSHA256, HeaderTruncated:
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

// boundedDeadLetter is the copy of dead letter d that is dead-lettered when
// d is too large to be written whole: the first keep bytes of the value,
// its original size and SHA-256, truncated: true, the reason and source
// headers, and the original key (cut, and flagged key_truncated, only
// when the key alone is over deadLetterMaxKey). The original headers are
// kept only when they are small.
func boundedDeadLetter(d kafka.Message, keep int) kafka.Message {
	sum := sha256.Sum256(d.Value)
	value := d.Value[:min(len(d.Value), keep)]
	var ours, theirs []kafka.Header
	theirSize := 0
	for _, h := range d.Headers {
		switch h.Key {
		case HeaderReason, HeaderSourceTopic, HeaderSourcePartition, HeaderSourceOffset:
			ours = append(ours, h)
		case HeaderOriginalSize, HeaderSHA256, HeaderTruncated:
		default:
			theirs = append(theirs, h)
			theirSize += len(h.Key) + len(h.Value)
		}
	}
	h := make([]kafka.Header, 0, len(theirs)+len(ours)+4)
	if theirSize <= deadLetterMaxHeaders {
		h = append(h, theirs...)
	}
	h = append(h, ours...)
	h = append(h,
		kafka.Header{Key: HeaderOriginalSize, Value: []byte(strconv.Itoa(len(d.Value)))},
		kafka.Header{Key: HeaderSHA256, Value: []byte(hex.EncodeToString(sum[:]))},
		kafka.Header{Key: HeaderTruncated, Value: []byte("true")},
	)
	key := d.Key
	if len(key) > deadLetterMaxKey {
		key = key[:deadLetterMaxKey]
		h = append(h, kafka.Header{Key: "key_truncated", Value: []byte("true")})
	}
	return kafka.Message{Topic: d.Topic, Key: key, Value: value, Headers: h}
}

// writeDeadLetter writes d (its Topic set) whole if it fits, else (or if
// the broker refuses it as too large) a bounded copy: the first 64 KiB,
// then none of the value. It returns what was written.
func writeDeadLetter(ctx context.Context, w Sink, d kafka.Message) (kafka.Message, error) {
	out := d
	if messageBytes(d) > writerLimit(w) {
		out = boundedDeadLetter(d, deadLetterKeep)
	}
	for {
		err := w.WriteMessages(ctx, out)
		if err == nil {
			return out, nil
		}
		if !isTooLarge(err) || len(out.Value) == 0 {
			return out, fmt.Errorf("write dead letter to %s: %w", d.Topic, err)
		}
		keep := deadLetterKeep
		if headerValue(out, HeaderTruncated) == "true" {
			keep = 0 // even the bounded copy is refused: keep only its headers
		}
		out = boundedDeadLetter(d, keep)
	}
}

// messageBytes estimates what a kafka.Writer counts against BatchBytes
// for m (a little over, never under).
func messageBytes(m kafka.Message) int {
	n := 64 + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += 16 + len(h.Key) + len(h.Value)
	}
	return n
}

// writerLimit is the most bytes w sends in one batch.
func writerLimit(s Sink) int {
	w, ok := s.(*kafka.Writer)
	if !ok || w.BatchBytes <= 0 {
		return 1 << 20 // kafka-go's default
	}
	return int(w.BatchBytes)
}
