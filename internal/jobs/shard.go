package jobs

import (
	"strconv"
	"strings"
)

// Shards is how many parts the store's keys fall into. Every key of one
// job (its record, its batch, the per-tenant count and the indexes it is
// in) carries its shard's hash tag, so that each atomic step touches one
// Redis Cluster slot; the shards' tags are spread over the slot space so
// that a Cluster's primaries share the indexes evenly. Changing it moves
// every key: drain the fleet first.
const Shards = 16

// crockford is the alphabet of ULIDs, lower-cased as NewID writes them.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// slotCount is the number of Redis Cluster hash slots.
const slotCount = 16384

// tags holds each shard's hash tag with its braces, e.g. "{12}".
var tags = func() [Shards]string {
	var out [Shards]string
	for s := range out {
		lo, hi := s*slotCount/Shards, (s+1)*slotCount/Shards
		// The first decimal string whose slot lies in the shard's range:
		// deterministic, so every process agrees on the layout.
		for i := 0; ; i++ {
			c := strconv.Itoa(i)
			if sl := Slot(c); sl >= lo && sl < hi {
				out[s] = "{" + c + "}"
				break
			}
		}
	}
	return out
}()

// Slot is the Redis Cluster hash slot of a key with no hash tag (or of a
// tag's content): CRC16-XMODEM of the bytes, modulo 16384.
func Slot(key string) int {
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % slotCount
}

// ShardOf is the shard of a job or batch id: its last character's place
// in the ULID alphabet (NewIDIn sets it). Any string has a shard, so a
// hostile id read from a URL only misses its key.
func ShardOf(id string) int {
	// A document's page (PageID) lies in its document's shard, with the
	// document's counts and record, so that a page's transition touches
	// one slot.
	if doc, _, ok := PageOf(id); ok {
		id = doc
	}
	if id == "" {
		return 0
	}
	c := id[len(id)-1]
	if i := strings.IndexByte(crockford, c); i >= 0 {
		return i % Shards
	}
	return int(c) % Shards
}

// NewIDIn returns a fresh job id in shard s: the jobs of a batch are made
// in the batch's shard, so that a transition's batch counts share the
// job's slot.
func NewIDIn(s int) string {
	id := NewID()
	return id[:len(id)-1] + crockford[s%Shards:s%Shards+1]
}

// tagOf is the hash tag (with braces) of id's shard.
func tagOf(id string) string { return tags[ShardOf(id)] }
