package guard

import (
	"context"
	"errors"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// RetryResult is how a completion retried in the background ended.
type RetryResult string

// The results of Retrier.CompleteUntil.
const (
	// Stored: the completion is recorded (also when an earlier attempt was
	// applied but its success did not reach the caller).
	Stored RetryResult = "stored"
	// TakenOver: the record is no longer in flight under the claim's
	// token, and was not completed with it.
	TakenOver RetryResult = "taken_over"
	// Closed: the store was closed.
	Closed RetryResult = "closed"
	// Expired: the claim's lease ended before a completion got through.
	Expired RetryResult = "expired"
)

// RetryResults lists every RetryResult.
var RetryResults = []RetryResult{Stored, TakenOver, Closed, Expired}

// Defaults of a Retrier.
const (
	// DefaultMaxRetries bounds the completions retried at once. Only
	// notifications forwarded while the store failed need one (claims fail
	// too while it is down), so the bound is seldom reached.
	DefaultMaxRetries = 256
	// DefaultRetryWait is the first pause before a completion is retried;
	// it doubles up to DefaultRetryMaxWait.
	DefaultRetryWait    = 100 * time.Millisecond
	DefaultRetryMaxWait = 2 * time.Second
)

// Retrier retries completions that failed, in the background: after the
// backend took a notification the store could not record, until it is
// recorded, the claim is found taken over or gone, the store is closed, or
// the claim's lease ends. The caller answered U meanwhile; the sender's
// resend is then replayed instead of being forwarded again once the lease
// runs out.
type Retrier struct {
	// Wait is the first pause before an attempt; it doubles up to MaxWait.
	Wait, MaxWait time.Duration
	slots         chan struct{}
}

// NewRetrier returns a Retrier that runs at most max retries at once, with
// the default pauses.
func NewRetrier(max int) *Retrier {
	return &Retrier{Wait: DefaultRetryWait, MaxWait: DefaultRetryMaxWait, slots: make(chan struct{}, max)}
}

// Completion is a completion to retry: Complete's arguments, and when the
// claim's lease ends.
type Completion struct {
	Key       idempotency.Key
	Token     uint64
	Answer    idempotency.Answer
	Retention time.Duration
	Until     time.Time
}

// Go retries c on st in a goroutine of its own: it calls started, then
// starts the goroutine, which hands the result to done. It reports false,
// and starts nothing, when the Retrier already runs its maximum of
// retries.
func (r *Retrier) Go(st idempotency.Store, c Completion, started func(), done func(RetryResult)) bool {
	select {
	case r.slots <- struct{}{}:
	default:
		return false
	}
	started()
	go func() {
		defer func() { <-r.slots }()
		done(r.CompleteUntil(st, c))
	}()
	return true
}

// CompleteUntil is Go's loop, in the caller's goroutine: it tries c's
// completion after each pause until it is stored, taken over, the store is
// closed, or the next attempt would come after c.Until.
func (r *Retrier) CompleteUntil(st idempotency.Store, c Completion) RetryResult {
	ctx := context.Background()
	wait := r.Wait
	for {
		if time.Now().Add(wait).After(c.Until) {
			return Expired
		}
		time.Sleep(wait)
		wait = min(2*wait, r.MaxWait)
		err := st.Complete(ctx, c.Key, c.Token, c.Answer, c.Retention)
		switch {
		case err == nil:
			return Stored
		case errors.Is(err, idempotency.ErrClosed):
			return Closed
		case errors.Is(err, idempotency.ErrLeaseLost):
			// An earlier attempt may have been applied without its
			// answer reaching us.
			rec, found, gerr := st.Get(ctx, c.Key)
			switch {
			case gerr != nil:
				continue // cannot tell yet
			case found && rec.State == idempotency.StateDone && rec.Token == c.Token:
				return Stored
			default:
				return TakenOver
			}
		}
	}
}
