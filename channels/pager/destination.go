package pager

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/viogen-alerts/dispatcher/channels"
)

// Destination is the routing key a message goes to, as "key-" and the
// first 16 hex digits of its SHA-256: PagerDuty limits events per routing
// key, and a routing key is a secret that must not reach Redis or metrics.
func (c *Channel) Destination(m channels.Message) string { return KeyDestination(m.To) }

// KeyDestination names a routing key by its hash.
func KeyDestination(routingKey string) string {
	sum := sha256.Sum256([]byte(routingKey))
	return "key-" + hex.EncodeToString(sum[:8])
}
