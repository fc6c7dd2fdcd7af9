package idempotency

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Key identifies one notification for deduplication: the DWS client it came
// from, the API it was sent to and its requestId. All three fields are
// required; the same requestId under another client or API is another key.
type Key struct {
	ClientID  string // the Client-Id header the notification was signed for
	API       string // the DWS API, e.g. "addPaymentMethod"
	RequestID string // the notification's requestId
}

// String renders the key for logs and error messages (no card data is ever
// part of a key).
func (k Key) String() string {
	return strconv.Quote(k.ClientID) + "/" + strconv.Quote(k.API) + "/" + strconv.Quote(k.RequestID)
}

// Fingerprint is a hash of the canonical notification content. A key seen
// again with another fingerprint is a conflict (REPEAT_REQ_INCONSISTENT).
type Fingerprint [32]byte

// Outcome says how the backend took a forwarded notification.
type Outcome string

const (
	// OutcomeAccepted: the backend answered 2xx.
	OutcomeAccepted Outcome = "accepted"
	// OutcomeBusinessRejected: the backend refused the notification for a
	// business reason. DWS is still acknowledged with S and the record is
	// kept for human follow-up.
	OutcomeBusinessRejected Outcome = "business_rejected"
)

// Answer is what a completed record replays to duplicates.
type Answer struct {
	// ResultCode is the DWS result code that was answered, e.g. "SUCCESS".
	ResultCode string
	// Outcome is how the backend took the notification.
	Outcome Outcome
	// BackendStatus is the HTTP status the backend answered with.
	BackendStatus int
}

// State is the life-cycle state of a stored record.
type State uint8

const (
	// StateInFlight: a claimer holds a lease and is forwarding the notification.
	StateInFlight State = 1
	// StateDone: the notification was handled; the record holds the answer.
	StateDone State = 2
)

// String returns "in_flight", "done" or "State(n)" for unknown values.
func (s State) String() string {
	switch s {
	case StateInFlight:
		return "in_flight"
	case StateDone:
		return "done"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Record is everything the store keeps about a key. It deliberately has no
// room for request content: no body, no card fields, no headers.
type Record struct {
	Key         Key         // the record's key
	Fingerprint Fingerprint // the fingerprint of the claim that created it
	State       State       // in flight or done
	// Token identifies the claim that owns (or completed) the record.
	Token uint64
	// Answer is set when State is StateDone.
	Answer Answer
	// ClaimedAt is when the current claim was taken.
	ClaimedAt time.Time
	// LeaseExpiry is when the current claim's lease ends; after it an
	// in-flight record may be claimed again.
	LeaseExpiry time.Time
	// CompletedAt is when the record was completed (zero while in flight).
	CompletedAt time.Time
	// ExpiresAt is the end of the record's retention as the store enforces it
	// (zero when the store cannot tell).
	ExpiresAt time.Time
}

// ClaimStatus is the outcome of Store.Claim.
type ClaimStatus uint8

const (
	// Claimed: the caller owns the key now and must forward the notification,
	// then Complete or Release with ClaimResult.Token.
	Claimed ClaimStatus = 1
	// InFlight: another claimer holds a live lease; Record.LeaseExpiry says
	// until when.
	InFlight ClaimStatus = 2
	// Done: the key was completed; Record.Answer is the answer to replay.
	Done ClaimStatus = 3
	// Conflict: the key is stored with another fingerprint.
	Conflict ClaimStatus = 4
)

// String returns "claimed", "in_flight", "done", "conflict" or
// "ClaimStatus(n)" for unknown values.
func (c ClaimStatus) String() string {
	switch c {
	case Claimed:
		return "claimed"
	case InFlight:
		return "in_flight"
	case Done:
		return "done"
	case Conflict:
		return "conflict"
	}
	return "ClaimStatus(" + strconv.Itoa(int(c)) + ")"
}

// ClaimResult is what Store.Claim reports.
type ClaimResult struct {
	// Status says what the caller must do: forward, wait, replay or reject.
	Status ClaimStatus
	// Token is the new claim's token when Status is Claimed, zero otherwise.
	Token uint64
	// Record is the stored record: the one just written when Status is
	// Claimed, the existing one for InFlight, Done and Conflict.
	Record Record
}

// Store keeps idempotency records. Implementations must be safe for
// concurrent use; package storetest holds the conformance suite every
// implementation must pass.
type Store interface {
	// Claim atomically checks and claims key. Of any number of concurrent
	// claimers of a key exactly one gets Claimed. An existing record with
	// another fingerprint gives Conflict, whatever its state. A done record
	// gives Done with the record (the answer to replay), once it is as
	// durable as a successful Complete leaves one: a store whose Complete
	// waits for durability after the commit (a group fsync, a replica's
	// acknowledgement) waits the same way first, and returns an error if
	// that fails, since the completion's own wait may have failed or may
	// still be running. An in-flight record
	// with a live lease gives InFlight (Record.LeaseExpiry tells until when);
	// one whose lease expired is claimed again under a new token. The record
	// is kept for retention, which must be at least lease.
	Claim(ctx context.Context, key Key, fp Fingerprint, lease, retention time.Duration) (ClaimResult, error)
	// Complete marks the claim done with answer and keeps the record for
	// retention from now. The record is durable when Complete returns nil.
	// It returns ErrLeaseLost when the record is not in flight under token
	// any more (completed, released, re-claimed after the lease expired, or
	// gone).
	Complete(ctx context.Context, key Key, token uint64, answer Answer, retention time.Duration) error
	// Release deletes the in-flight claim so the provider's retry goes
	// through (forwarding failed). It is a no-op returning nil when the key is
	// absent, done, or held under another token.
	Release(ctx context.Context, key Key, token uint64) error
	// Get returns the live record of key, if any.
	Get(ctx context.Context, key Key) (Record, bool, error)
	// Scan calls fn for every live record until fn returns false. It is for
	// inspection and administration, not for the request path.
	Scan(ctx context.Context, fn func(Record) bool) error
	// Close releases the store. It is idempotent; every later call of any
	// other method returns ErrClosed.
	Close() error
}

// DoneConfirmer is implemented by stores whose Complete waits for
// durability after the commit. A done record is visible to Get as soon as
// it is committed: before that wait ends, and also after it failed
// (Complete then returned an error, but the record stays). ConfirmDone
// returns once the done record of key is as durable as a successful
// Complete leaves it, or an error when that cannot be confirmed. A caller
// that replays a record it read with Get (a duplicate that waited for the
// first copy) confirms it first; Claim already does.
type DoneConfirmer interface {
	ConfirmDone(ctx context.Context, key Key) error
}

// DurabilityProber is implemented by stores whose writes may be applied
// while their durability cannot be confirmed (Redis with WAITAOF or WAIT
// while a replica is missing: every Complete then fails with
// ErrUnconfirmed although reads and claims are answered). ProbeDurability
// writes a small record of its own, outside every key, and waits for it
// as Complete waits for a completion: nil when a completion made now
// would be confirmed, an error wrapping ErrUnconfirmed when it would not,
// another error when the store did not answer. A store configured
// without a wait makes the write and returns once it is applied. A
// health check calls it instead of a read, so a store whose writes are
// not confirmed counts as down until they are again.
type DurabilityProber interface {
	ProbeDurability(ctx context.Context) error
}

var (
	// ErrClosed is returned by every operation on a closed store.
	ErrClosed = errors.New("idempotency: store closed")
	// ErrLeaseLost is returned by Complete when the record is no longer in
	// flight under the caller's token.
	ErrLeaseLost = errors.New("idempotency: lease lost")
	// ErrInvalidArgument is returned for a key with an empty or oversized
	// field, a non-positive lease, a retention shorter than the lease, or an
	// answer that cannot be stored.
	ErrInvalidArgument = errors.New("idempotency: invalid argument")
	// ErrCorruptRecord is returned when a stored record cannot be decoded.
	ErrCorruptRecord = errors.New("idempotency: corrupt record")
	// ErrNotFlushed is wrapped by the error of a Close that gave up before
	// the store had written out everything it held in memory (its
	// directory was removed, its filesystem is full or hung): what was
	// committed is in the store's write-ahead logs, if they survive, and
	// is replayed by the next open.
	ErrNotFlushed = errors.New("idempotency: store closed without flushing")
	// ErrLocked is wrapped by OpenBadger's error when the directory is
	// held by another open of the database, in this process or another
	// (Badger's directory lock).
	ErrLocked = errors.New("idempotency: the database directory is in use")
	// ErrFailed is wrapped by the error of every operation on a store that
	// failed in a way it cannot recover from while open (Badger could not
	// create the log of its next memtable: the directory became
	// unwritable, or the process ran out of file descriptors). Nothing it
	// acknowledged is lost; the caller closes it and opens it again, which
	// works once the cause is gone.
	ErrFailed = errors.New("idempotency: the store failed and must be reopened")
	// ErrUnconfirmed is wrapped by the error of a write the store applied
	// but whose durability it could not confirm in time (Redis's WAITAOF
	// or WAIT, when the store is configured to wait for them), and by that
	// of a replay of a done record whose durability it could not confirm
	// (Claim, ConfirmDone). The caller answers U: the provider resends,
	// and the resend is replayed once the record is confirmed. The store
	// itself answers; it is its durability that is missing.
	ErrUnconfirmed = errors.New("idempotency: the record's durability was not confirmed in time")
)

// Limits enforced on keys and answers, so records stay small.
const (
	// MaxKeyFieldLen is the maximum length in bytes of each Key field.
	MaxKeyFieldLen = 1024
	// MaxResultCodeLen is the maximum length in bytes of Answer.ResultCode.
	MaxResultCodeLen = 64
	// MaxOutcomeLen is the maximum length in bytes of Answer.Outcome.
	MaxOutcomeLen = 64
)

// ValidateKey reports whether key can be stored: every field non-empty and at
// most MaxKeyFieldLen bytes. The error wraps ErrInvalidArgument.
func ValidateKey(key Key) error {
	for _, f := range [...]struct{ name, v string }{
		{"client id", key.ClientID}, {"api", key.API}, {"request id", key.RequestID},
	} {
		if f.v == "" {
			return fmt.Errorf("%w: empty %s", ErrInvalidArgument, f.name)
		}
		if len(f.v) > MaxKeyFieldLen {
			return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidArgument, f.name, MaxKeyFieldLen)
		}
	}
	return nil
}

// ValidateClaim reports whether Claim's durations are usable: lease > 0 and
// retention >= lease. The error wraps ErrInvalidArgument.
func ValidateClaim(lease, retention time.Duration) error {
	if lease <= 0 {
		return fmt.Errorf("%w: lease %v must be positive", ErrInvalidArgument, lease)
	}
	if retention < lease {
		return fmt.Errorf("%w: retention %v shorter than lease %v", ErrInvalidArgument, retention, lease)
	}
	return nil
}

// ValidateAnswer reports whether answer can be stored: a non-empty
// ResultCode of at most MaxResultCodeLen bytes, a non-empty Outcome of at most
// MaxOutcomeLen bytes and a BackendStatus in 0..999. The error wraps
// ErrInvalidArgument.
func ValidateAnswer(answer Answer) error {
	switch {
	case answer.ResultCode == "" || len(answer.ResultCode) > MaxResultCodeLen:
		return fmt.Errorf("%w: result code must be 1..%d bytes", ErrInvalidArgument, MaxResultCodeLen)
	case answer.Outcome == "" || len(answer.Outcome) > MaxOutcomeLen:
		return fmt.Errorf("%w: outcome must be 1..%d bytes", ErrInvalidArgument, MaxOutcomeLen)
	case answer.BackendStatus < 0 || answer.BackendStatus > 999:
		return fmt.Errorf("%w: backend status %d out of range", ErrInvalidArgument, answer.BackendStatus)
	}
	return nil
}
