package idempotency

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Storage encoding of the Badger queue (see badger_queue.go for the keys).
//
// Item values (version 1), integers big-endian, times Unix nanoseconds
// (0 = zero time):
//
//	[0]      version = 1
//	[1]      state (ItemState)
//	[2:10]   seq
//	[10:14]  attempts
//	[14:22]  EnqueuedAt
//	[22:30]  RedeliveredAt
//	[30:38]  DueAt
//	[38:46]  lease token
//	[46:54]  LeaseExpiry
//	[54:62]  FinishedAt
//	[62:64]  last status
//	         order key: uvarint length + bytes
//	         last reason: uvarint length + bytes
//
// Order-state values (one per order key with queued items):
//
//	[0:8]    the time under which the order key is in the due index
//	[8:16]   seq of its leased item (0: none)

const (
	itemVersion1    = 1
	itemFixedLen    = 64
	orderStateLen   = 16
	maxItemValueLen = itemFixedLen + 2 + MaxKeyFieldLen + 1 + MaxReasonLen
)

func appendItemValue(dst []byte, it *Item) []byte {
	dst = append(dst, itemVersion1, byte(it.State))
	dst = binary.BigEndian.AppendUint64(dst, it.Seq)
	dst = binary.BigEndian.AppendUint32(dst, uint32(it.Attempts))
	dst = appendTime(dst, it.EnqueuedAt)
	dst = appendTime(dst, it.RedeliveredAt)
	dst = appendTime(dst, it.DueAt)
	dst = binary.BigEndian.AppendUint64(dst, it.LeaseToken)
	dst = appendTime(dst, it.LeaseExpiry)
	dst = appendTime(dst, it.FinishedAt)
	dst = binary.BigEndian.AppendUint16(dst, uint16(it.LastStatus))
	dst = binary.AppendUvarint(dst, uint64(len(it.OrderKey)))
	dst = append(dst, it.OrderKey...)
	dst = binary.AppendUvarint(dst, uint64(len(it.LastReason)))
	dst = append(dst, it.LastReason...)
	return dst
}

// decodeItemValue parses an item value into it (all fields but Key,
// HasPayload, Payload and ExpiresAt). It never retains b.
func decodeItemValue(b []byte, it *Item) error {
	if len(b) < itemFixedLen {
		return fmt.Errorf("%w: queue item of %d bytes is too short", ErrCorruptRecord, len(b))
	}
	if b[0] != itemVersion1 {
		return fmt.Errorf("%w: unknown queue item version %d", ErrCorruptRecord, b[0])
	}
	it.State = ItemState(b[1])
	if it.State < ItemPending || it.State > ItemDead {
		return fmt.Errorf("%w: unknown queue item state %d", ErrCorruptRecord, b[1])
	}
	it.Seq = binary.BigEndian.Uint64(b[2:10])
	it.Attempts = int(binary.BigEndian.Uint32(b[10:14]))
	it.EnqueuedAt = readTime(b[14:22])
	it.RedeliveredAt = readTime(b[22:30])
	it.DueAt = readTime(b[30:38])
	it.LeaseToken = binary.BigEndian.Uint64(b[38:46])
	it.LeaseExpiry = readTime(b[46:54])
	it.FinishedAt = readTime(b[54:62])
	it.LastStatus = int(binary.BigEndian.Uint16(b[62:64]))
	if it.LastStatus > 999 || it.Seq == 0 {
		return fmt.Errorf("%w: queue item with bad status or seq", ErrCorruptRecord)
	}
	rest := b[itemFixedLen:]
	s, n, err := readString(rest, MaxKeyFieldLen)
	if err != nil || s == "" {
		return fmt.Errorf("%w: queue item with a bad order key", ErrCorruptRecord)
	}
	it.OrderKey = s
	rest = rest[n:]
	s, n, err = readString(rest, MaxReasonLen)
	if err != nil {
		return err
	}
	it.LastReason = s
	if len(rest) != n {
		return fmt.Errorf("%w: trailing bytes after queue item", ErrCorruptRecord)
	}
	return nil
}

// orderState is the value under an order key's state key.
type orderState struct {
	due       time.Time // where the order key sits in the due index
	leasedSeq uint64    // its leased item's seq, 0 when none
}

func (o orderState) value() []byte {
	b := appendTime(make([]byte, 0, orderStateLen), o.due)
	return binary.BigEndian.AppendUint64(b, o.leasedSeq)
}

func decodeOrderState(b []byte) (orderState, error) {
	if len(b) != orderStateLen {
		return orderState{}, fmt.Errorf("%w: order state of %d bytes", ErrCorruptRecord, len(b))
	}
	return orderState{due: readTime(b[:8]), leasedSeq: binary.BigEndian.Uint64(b[8:])}, nil
}
