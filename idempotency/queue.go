package idempotency

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// OutcomeQueued is the answer's outcome of a notification accepted into the
// durable inbox (acknowledge on_receipt): DWS was answered S once the item
// was queued; how the backend took it is the queue item's state, not the
// record's.
const OutcomeQueued Outcome = "queued"

// ItemState is the life-cycle state of a queue item.
//
//	(claim) --Enqueue--> pending --Lease--> leased --Ack--------> delivered
//	                        ^                 |    --Reject-----> business_rejected
//	                        |                 |    --DeadLetter-> dead --Redeliver--> pending
//	                        +-----Retry-------+
//	                        +-----Unlease-----+
//	                        +--lease expired, Lease again (takeover)
//
// Pending and leased items are queued (they count towards the bound);
// delivered, business_rejected and dead are final until an operator
// redelivers a dead letter.
type ItemState uint8

const (
	// ItemPending: waiting for its due time (the first try, or a retry).
	ItemPending ItemState = 1
	// ItemLeased: a deliverer holds it until LeaseExpiry.
	ItemLeased ItemState = 2
	// ItemDelivered: the backend answered 2xx; the payload is deleted.
	ItemDelivered ItemState = 3
	// ItemBusinessRejected: the backend refused it for a business reason
	// (no retry); the payload is deleted.
	ItemBusinessRejected ItemState = 4
	// ItemDead: retried until its maximum age; the payload is kept for a
	// while so it can be redelivered.
	ItemDead ItemState = 5
)

// String returns "pending", "leased", "delivered", "business_rejected",
// "dead" or "ItemState(n)".
func (s ItemState) String() string {
	switch s {
	case ItemPending:
		return "pending"
	case ItemLeased:
		return "leased"
	case ItemDelivered:
		return "delivered"
	case ItemBusinessRejected:
		return "business_rejected"
	case ItemDead:
		return "dead"
	}
	return "ItemState(" + strconv.Itoa(int(s)) + ")"
}

// Queued reports whether s is pending or leased.
func (s ItemState) Queued() bool { return s == ItemPending || s == ItemLeased }

// NewItem is what Enqueue stores.
type NewItem struct {
	// OrderKey groups the items that are delivered strictly in arrival
	// order (the inbox uses the Client-Id and the customer reference).
	// Opaque to the store: 1..MaxKeyFieldLen bytes.
	OrderKey string
	// Payload is stored as it is (the inbox seals it before): 1..MaxPayloadLen
	// bytes.
	Payload []byte
}

// EnqueueOptions are Enqueue's parameters.
type EnqueueOptions struct {
	// Retention is the dedupe record's retention from now, as for Complete.
	Retention time.Duration
	// MaxQueued refuses the item with ErrQueueFull when the queue already
	// holds that many pending and leased items; 0 means no bound.
	MaxQueued int64
}

// Item is a queue item as the store keeps it. It has no room for request
// content beyond the opaque Payload.
type Item struct {
	Key      Key
	OrderKey string
	// Seq orders the items of one OrderKey (arrival order).
	Seq   uint64
	State ItemState
	// Attempts counts the leases taken since it was enqueued or
	// redelivered.
	Attempts      int
	EnqueuedAt    time.Time
	RedeliveredAt time.Time // zero unless an operator redelivered it
	// DueAt is when a pending item may be leased.
	DueAt time.Time
	// LeaseToken and LeaseExpiry name the current (or last) lease.
	LeaseToken  uint64
	LeaseExpiry time.Time
	// LastStatus is the backend's status of the last try (0: no answer);
	// LastReason a short, bounded word the deliverer gave ("timeout", ...).
	LastStatus int
	LastReason string
	// FinishedAt is when it became delivered, business_rejected or dead.
	FinishedAt time.Time
	// HasPayload reports whether the payload is still stored. Payload is
	// filled only by Lease.
	HasPayload bool
	Payload    []byte
	// ExpiresAt is the end of the item record's retention (zero while
	// queued).
	ExpiresAt time.Time
}

// AgeFrom is the start of the item's delivery window: when it was enqueued
// or, after a redelivery, when it was redelivered.
func (it Item) AgeFrom() time.Time {
	if it.RedeliveredAt.After(it.EnqueuedAt) {
		return it.RedeliveredAt
	}
	return it.EnqueuedAt
}

// Ref names the item under its current lease, for Ack, Reject, Retry,
// DeadLetter and Unlease.
func (it Item) Ref() ItemRef {
	return ItemRef{Key: it.Key, OrderKey: it.OrderKey, Token: it.LeaseToken}
}

// ItemRef names a leased item: its key, its order key (a store may place
// an item by it) and the lease token.
type ItemRef struct {
	Key      Key
	OrderKey string
	Token    uint64
}

// QueueStats are the cheap figures of a queue (for metrics).
type QueueStats struct {
	// Queued counts pending and leased items.
	Queued int64
	// Oldest is the EnqueuedAt of the oldest queued item; zero when none.
	Oldest time.Time
	// Dead counts dead letters whose payload is still kept.
	Dead int64
}

// Queue is the durable inbox of a store. It is separate from Store, so a
// store that does not queue stays a valid Store; the Badger store and the
// Redis store implement both, and storetest.RunQueue is the conformance
// suite. Implementations must be safe for concurrent use, by several
// processes where the store is shared.
type Queue interface {
	// Enqueue stores item for key, which the caller claimed under token,
	// and completes the claim with Answer{SUCCESS, OutcomeQueued, 0} kept
	// for opts.Retention, so duplicates replay S. The item and the
	// completion are written atomically (both or neither), and both are
	// durable when it returns nil. An item already stored for key is kept
	// and the claim is completed. It returns ErrQueueFull (nothing stored,
	// the claim untouched) when the queue is at opts.MaxQueued, and
	// ErrLeaseLost (nothing stored) when the claim is not in flight under
	// token any more. A Claim that finds the completed record reports Done
	// only once the record and its item are durable.
	Enqueue(ctx context.Context, key Key, token uint64, item NewItem, opts EnqueueOptions) error
	// Lease takes up to max due items for lease, each with its payload:
	// pending items whose DueAt has come and leased items whose lease
	// ended (the holder is taken over). Of one OrderKey it takes only the
	// queued item of the lowest Seq, and none while another of its items
	// holds a live lease; different order keys never wait for each other.
	// Each taken item is leased under a new token, Attempts+1. With an
	// error it may still return items it leased before the error.
	Lease(ctx context.Context, max int, lease time.Duration) ([]Item, error)
	// Ack records the delivery (status is the backend's), deletes the
	// payload and keeps the record for retention. ErrLeaseLost when the
	// item is not leased under ref.Token (taken over, or finished).
	Ack(ctx context.Context, ref ItemRef, status int, retention time.Duration) error
	// Reject records a business rejection, like Ack.
	Reject(ctx context.Context, ref ItemRef, status int, retention time.Duration) error
	// Retry makes the leased item pending again, due after the given
	// pause from now (the store's clock), noting the try's status and
	// reason.
	Retry(ctx context.Context, ref ItemRef, after time.Duration, status int, reason string) error
	// DeadLetter makes the leased item dead: the payload is kept for keep,
	// the record for retention (keep <= retention).
	DeadLetter(ctx context.Context, ref ItemRef, status int, reason string, keep, retention time.Duration) error
	// Unlease gives a lease back without a try: the item is pending again
	// with its previous due time and Attempts.
	Unlease(ctx context.Context, ref ItemRef) error
	// Redeliver makes the dead letter of key pending again, due now, in
	// its original place among its order key's queued items, with
	// Attempts 0 and RedeliveredAt now. ErrItemNotFound, ErrNotDeadLetter,
	// ErrPayloadExpired say why it cannot. It does not check a bound.
	//
	// overtakers are the APIs (opaque to the store) whose later items
	// make this one stale: when an item of the same order key with a
	// higher Seq and one of those APIs is leased, or was delivered or
	// business_rejected (for as long as that item's record is retained,
	// or a dead letter of its order key keeps its payload), it returns
	// ErrOvertaken and the item stays dead. The check and the redelivery
	// are one atomic step. With no overtakers it does not check.
	Redeliver(ctx context.Context, key Key, overtakers ...string) error
	// RedeliverDead redelivers every dead letter that still has its
	// payload and returns how many.
	RedeliverDead(ctx context.Context) (int, error)
	// Item returns the item of key without its payload.
	Item(ctx context.Context, key Key) (Item, bool, error)
	// ScanItems calls fn for every item (without payload) until fn
	// returns false. For administration, not the request path.
	ScanItems(ctx context.Context, fn func(Item) bool) error
	// QueueStats returns the queue's cheap figures.
	QueueStats(ctx context.Context) (QueueStats, error)
}

var (
	// ErrQueueFull is returned by Enqueue when the queue holds
	// EnqueueOptions.MaxQueued items: the gateway answers U.
	ErrQueueFull = errors.New("idempotency: inbox queue is full")
	// ErrItemNotFound: no queue item for the key.
	ErrItemNotFound = errors.New("idempotency: no queue item")
	// ErrNotDeadLetter: the item is not a dead letter.
	ErrNotDeadLetter = errors.New("idempotency: the queue item is not a dead letter")
	// ErrPayloadExpired: the dead letter's payload was deleted after its
	// retention, so it cannot be redelivered.
	ErrPayloadExpired = errors.New("idempotency: the dead letter's payload has expired")
	// ErrOvertaken: Redeliver found a later item of the same order key,
	// of one of the overtaking APIs, leased, delivered or
	// business_rejected, so the dead letter was left dead.
	ErrOvertaken = errors.New("idempotency: a later item of the same order key overtook the dead letter")
)

// Queue limits.
const (
	// MaxPayloadLen bounds NewItem.Payload. The Badger store keeps every
	// value in its write-ahead logs (below the value threshold), which its
	// group commit fsyncs; an enqueue's transaction must stay below a
	// batch (15% of the 4 MB memtable).
	MaxPayloadLen = 256 << 10
	// MaxReasonLen bounds the reason of Retry and DeadLetter.
	MaxReasonLen = 64
	// MaxLeaseBatch bounds Lease's max.
	MaxLeaseBatch = 256
)

// ValidateNewItem checks an item for Enqueue.
func ValidateNewItem(item NewItem, opts EnqueueOptions) error {
	switch {
	case item.OrderKey == "" || len(item.OrderKey) > MaxKeyFieldLen:
		return fmt.Errorf("%w: order key must be 1..%d bytes", ErrInvalidArgument, MaxKeyFieldLen)
	case len(item.Payload) == 0 || len(item.Payload) > MaxPayloadLen:
		return fmt.Errorf("%w: payload of %d bytes, must be 1..%d", ErrInvalidArgument, len(item.Payload), MaxPayloadLen)
	case opts.Retention <= 0:
		return fmt.Errorf("%w: retention %v must be positive", ErrInvalidArgument, opts.Retention)
	case opts.MaxQueued < 0:
		return fmt.Errorf("%w: max queued %d is negative", ErrInvalidArgument, opts.MaxQueued)
	}
	return nil
}

// ValidateRef checks an item reference.
func ValidateRef(ref ItemRef) error {
	if err := ValidateKey(ref.Key); err != nil {
		return err
	}
	if ref.OrderKey == "" || len(ref.OrderKey) > MaxKeyFieldLen {
		return fmt.Errorf("%w: order key must be 1..%d bytes", ErrInvalidArgument, MaxKeyFieldLen)
	}
	if ref.Token == 0 {
		return fmt.Errorf("%w: zero lease token", ErrInvalidArgument)
	}
	return nil
}

// ValidateOutcome checks the status, reason and durations of a
// settlement (a zero duration is not checked).
func ValidateOutcome(status int, reason string, durations ...time.Duration) error {
	if status < 0 || status > 999 {
		return fmt.Errorf("%w: backend status %d out of range", ErrInvalidArgument, status)
	}
	if len(reason) > MaxReasonLen {
		return fmt.Errorf("%w: reason longer than %d bytes", ErrInvalidArgument, MaxReasonLen)
	}
	for _, d := range durations {
		if d <= 0 {
			return fmt.Errorf("%w: duration %v must be positive", ErrInvalidArgument, d)
		}
	}
	return nil
}

// ValidateLease checks Lease's arguments.
func ValidateLease(max int, lease time.Duration) error {
	if max < 1 || max > MaxLeaseBatch {
		return fmt.Errorf("%w: lease batch %d must be 1..%d", ErrInvalidArgument, max, MaxLeaseBatch)
	}
	if lease <= 0 {
		return fmt.Errorf("%w: lease %v must be positive", ErrInvalidArgument, lease)
	}
	return nil
}

// QueuedAnswer is the answer Enqueue completes a claim with.
var QueuedAnswer = Answer{ResultCode: "SUCCESS", Outcome: OutcomeQueued}
