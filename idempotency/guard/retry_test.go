package guard_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/guard"
)

// faultyStore wraps a real store and fails on demand.
type faultyStore struct {
	idempotency.Store
	failComplete atomic.Bool
	// failAfterComplete: Complete is applied, then reports a failure (a
	// reply lost on the way back, an fsync that failed after the commit).
	failAfterComplete atomic.Bool
}

var errInjected = errors.New("injected store failure")

func (f *faultyStore) Complete(ctx context.Context, key idempotency.Key, token uint64, a idempotency.Answer, retention time.Duration) error {
	if f.failComplete.Load() {
		return errInjected
	}
	err := f.Store.Complete(ctx, key, token, a, retention)
	if err == nil && f.failAfterComplete.Load() {
		return errInjected
	}
	return err
}

// How a background retry ends: stored (also when an earlier attempt was
// applied but reported a failure), expired at the lease's end, taken over,
// or closed with the store.
func TestCompletionRetryEnds(t *testing.T) {
	dir := t.TempDir()
	open := func(context.Context) (idempotency.Store, error) {
		return idempotency.OpenBadger(idempotency.BadgerOptions{Dir: dir})
	}
	badger, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	faulty := &faultyStore{Store: badger}
	st := guard.New(faulty, guard.Options{Name: dir, Open: open})
	t.Cleanup(func() { _ = st.Close() })
	r := guard.NewRetrier(guard.DefaultMaxRetries)
	r.Wait, r.MaxWait = 10*time.Millisecond, 40*time.Millisecond

	ctx := t.Context()
	ans := idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}
	claim := func(id string, until time.Time) guard.Completion {
		k := idempotency.Key{ClientID: "c", API: "addPaymentMethod", RequestID: id}
		c, err := st.Claim(ctx, k, idempotency.Fingerprint{1}, time.Minute, time.Hour)
		if err != nil || c.Status != idempotency.Claimed {
			t.Fatalf("claim %s: %v %v", id, c.Status, err)
		}
		return guard.Completion{Key: k, Token: c.Token, Answer: ans, Retention: time.Hour, Until: until}
	}

	c := claim("applied", time.Now().Add(5*time.Second))
	faulty.failAfterComplete.Store(true)
	if err := st.Complete(ctx, c.Key, c.Token, ans, time.Hour); err == nil {
		t.Fatal("injected failure not reported")
	}
	faulty.failAfterComplete.Store(false)
	if got := r.CompleteUntil(st, c); got != guard.Stored {
		t.Errorf("retry after an applied completion = %q, want stored", got)
	}

	start := time.Now()
	c = claim("down", start.Add(300*time.Millisecond))
	faulty.failComplete.Store(true)
	if got := r.CompleteUntil(st, c); got != guard.Expired {
		t.Errorf("retry while the store stays down = %q, want expired", got)
	}
	if took := time.Since(start); took > 400*time.Millisecond {
		t.Errorf("retry went on %s past its lease", took)
	}
	faulty.failComplete.Store(false)

	c = claim("taken", time.Now().Add(5*time.Second))
	c.Token = 12345
	if got := r.CompleteUntil(st, c); got != guard.TakenOver {
		t.Errorf("retry with another claim's token = %q, want taken_over", got)
	}

	c = claim("closed", time.Now().Add(5*time.Second))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if got := r.CompleteUntil(st, c); got != guard.Closed {
		t.Errorf("retry on a closed store = %q, want closed", got)
	}
}

// Go runs a retry in the background, at most the Retrier's maximum at
// once, and reports how each ended.
func TestRetrierBoundsItsRetries(t *testing.T) {
	dir := t.TempDir()
	badger, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = badger.Close() })
	faulty := &faultyStore{Store: badger}
	faulty.failComplete.Store(true)
	r := guard.NewRetrier(1)
	r.Wait, r.MaxWait = 10*time.Millisecond, 10*time.Millisecond

	k := idempotency.Key{ClientID: "c", API: "addPaymentMethod", RequestID: "bg"}
	cl, err := badger.Claim(t.Context(), k, idempotency.Fingerprint{1}, time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ans := idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}
	c := guard.Completion{Key: k, Token: cl.Token, Answer: ans, Retention: time.Hour, Until: time.Now().Add(time.Minute)}
	var started atomic.Int64
	results := make(chan guard.RetryResult, 2)
	if !r.Go(faulty, c, func() { started.Add(1) }, func(res guard.RetryResult) { results <- res }) {
		t.Fatal("the first retry was not started")
	}
	if r.Go(faulty, c, func() { started.Add(1) }, func(res guard.RetryResult) { results <- res }) {
		t.Fatal("a second retry was started beyond the maximum of 1")
	}
	if n := started.Load(); n != 1 {
		t.Fatalf("started called %d times, want 1", n)
	}
	faulty.failComplete.Store(false)
	select {
	case res := <-results:
		if res != guard.Stored {
			t.Fatalf("the retry ended %q, want stored", res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the retry did not end")
	}
	if rec, found, err := badger.Get(t.Context(), k); err != nil || !found || rec.State != idempotency.StateDone {
		t.Fatalf("after the retry: %+v %v %v", rec, found, err)
	}
}
