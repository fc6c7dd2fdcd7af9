package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// QueueStore is a store with the queue operations.
type QueueStore interface {
	idempotency.Store
	idempotency.Queue
}

// RunQueue runs the conformance suite of idempotency.Queue. open must
// return a new store with an empty queue for each call (RunQueue closes
// it); peer, when not nil, opens a second store on the same data as s
// (another gateway of a fleet), which RunQueue closes too; stores that
// cannot be opened twice pass nil and the fleet cases use s twice.
//
// Like Run it works on the real clock: leases of a few hundred
// milliseconds, retentions of one second.
func RunQueue(t *testing.T, open func(t *testing.T) QueueStore, peer func(t *testing.T, s QueueStore) QueueStore) {
	mk := func(t *testing.T) QueueStore {
		t.Helper()
		s := open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	second := func(t *testing.T, s QueueStore) QueueStore {
		if peer == nil {
			return s
		}
		p := peer(t, s)
		t.Cleanup(func() { p.Close() })
		return p
	}
	cases := []struct {
		name string
		slow bool
		fn   func(t *testing.T, s QueueStore)
	}{
		{"EnqueueCompletesClaim", false, testEnqueue},
		{"EnqueueLeaseLost", false, testEnqueueLeaseLost},
		{"LeaseOrder", false, testLeaseOrder},
		{"AckDeletesPayload", false, testAck},
		{"Reject", false, testReject},
		{"RetryKeepsOrder", false, testRetryKeepsOrder},
		{"DeadLetterAndRedeliver", false, testDeadLetter},
		{"RedeliverDead", false, testRedeliverDead},
		{"RedeliverOvertaken", false, testRedeliverOvertaken},
		{"Unlease", false, testUnlease},
		{"Bound", false, testBound},
		{"ScanItems", false, testScanItems},
		{"QueueInvalidArguments", false, testQueueInvalid},
		{"QueueClosed", false, testQueueClosed},
		{"ConcurrentLeases", false, func(t *testing.T, s QueueStore) { testConcurrentLeases(t, s, second(t, s)) }},
		{"EnqueueWhileDelivering", false, func(t *testing.T, s QueueStore) { testEnqueueWhileDelivering(t, s, second(t, s)) }},
		{"OneCustomerContention", false, func(t *testing.T, s QueueStore) { testOneCustomerContention(t, s, second(t, s)) }},
		{"RetryDue", true, testRetryDue},
		{"LeaseTakeover", true, func(t *testing.T, s QueueStore) { testLeaseTakeover(t, s, second(t, s)) }},
		{"DeadPayloadExpiry", true, testDeadPayloadExpiry},
		{"FinishedRecordExpiry", true, testFinishedExpiry},
		{"OvertakenWhileDeadKept", true, testOvertakenWhileDeadKept},
		{"EnqueueAfterRecordExpiry", true, testEnqueueAfterRecordExpiry},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.slow {
				t.Parallel()
			}
			c.fn(t, mk(t))
		})
	}
}

// Payload returns a recognisable payload for a request id.
func Payload(requestID string) []byte {
	return []byte("payload of " + requestID + ": " + string(bytes.Repeat([]byte{'x'}, 200)))
}

const queueRetention = time.Hour

// enqueue claims and enqueues requestID under order key o.
func enqueue(t *testing.T, s QueueStore, requestID, o string) {
	t.Helper()
	enqueueKey(t, s, K(requestID), o)
}

// enqueueKey is enqueue for a key of any API.
func enqueueKey(t *testing.T, s QueueStore, k idempotency.Key, o string) {
	t.Helper()
	if err := tryEnqueueKey(t, s, k, o, 0); err != nil {
		t.Fatalf("Enqueue(%v): %v", k, err)
	}
}

func tryEnqueue(t *testing.T, s QueueStore, requestID, o string, max int64) error {
	t.Helper()
	return tryEnqueueKey(t, s, K(requestID), o, max)
}

func tryEnqueueKey(t *testing.T, s QueueStore, k idempotency.Key, o string, max int64) error {
	t.Helper()
	c := mustClaim(t, s, k, FP(1))
	err := s.Enqueue(t.Context(), k, c.Token, idempotency.NewItem{OrderKey: o, Payload: Payload(k.RequestID)},
		idempotency.EnqueueOptions{Retention: longRetention, MaxQueued: max})
	if err != nil {
		if rerr := s.Release(t.Context(), k, c.Token); rerr != nil {
			t.Fatalf("Release after a failed enqueue: %v", rerr)
		}
	}
	return err
}

func lease(t *testing.T, s QueueStore, max int, d time.Duration) []idempotency.Item {
	t.Helper()
	items, err := s.Lease(t.Context(), max, d)
	if err != nil {
		t.Fatalf("Lease: %v", err)
	}
	for _, it := range items {
		if it.State != idempotency.ItemLeased || it.LeaseToken == 0 || !it.HasPayload || !bytes.Equal(it.Payload, Payload(it.Key.RequestID)) {
			t.Fatalf("leased item %v: state %v token %d payload %q", it.Key, it.State, it.LeaseToken, it.Payload)
		}
	}
	return items
}

// ids returns the request ids of items, sorted.
func ids(items []idempotency.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Key.RequestID)
	}
	slices.Sort(out)
	return out
}

func wantLeased(t *testing.T, items []idempotency.Item, want ...string) map[string]idempotency.Item {
	t.Helper()
	slices.Sort(want)
	if got := ids(items); !slices.Equal(got, want) {
		t.Fatalf("leased %v, want %v", got, want)
	}
	m := map[string]idempotency.Item{}
	for _, it := range items {
		m[it.Key.RequestID] = it
	}
	return m
}

func mustItem(t *testing.T, s QueueStore, requestID string) idempotency.Item {
	t.Helper()
	it, ok, err := s.Item(t.Context(), K(requestID))
	if err != nil || !ok {
		t.Fatalf("Item(%s) = found %v, %v", requestID, ok, err)
	}
	if it.Payload != nil {
		t.Fatalf("Item(%s) returned a payload", requestID)
	}
	return it
}

func stats(t *testing.T, s QueueStore) idempotency.QueueStats {
	t.Helper()
	st, err := s.QueueStats(t.Context())
	if err != nil {
		t.Fatalf("QueueStats: %v", err)
	}
	return st
}

func testEnqueue(t *testing.T, s QueueStore) {
	before := time.Now()
	enqueue(t, s, "q-1", "customer-1")
	after := time.Now()
	rec := mustGet(t, s, K("q-1"))
	if rec.State != idempotency.StateDone || rec.Answer != idempotency.QueuedAnswer {
		t.Fatalf("record after Enqueue = %v %+v, want done with %+v", rec.State, rec.Answer, idempotency.QueuedAnswer)
	}
	checkExpiresAt(t, rec, before, after, longRetention)
	// A duplicate replays the queued answer.
	if res := claim(t, s, K("q-1"), FP(1), longLease, longRetention); res.Status != idempotency.Done || res.Record.Answer.Outcome != idempotency.OutcomeQueued {
		t.Fatalf("duplicate claim = %v %+v, want done (queued)", res.Status, res.Record.Answer)
	}
	it := mustItem(t, s, "q-1")
	if it.State != idempotency.ItemPending || it.OrderKey != "customer-1" || it.Attempts != 0 || !it.HasPayload || it.Seq == 0 ||
		!between(it.EnqueuedAt, before, after) || !near(it.DueAt, it.EnqueuedAt) || !it.ExpiresAt.IsZero() {
		t.Fatalf("item = %+v", it)
	}
	st := stats(t, s)
	if st.Queued != 1 || !near(st.Oldest, it.EnqueuedAt) || st.Dead != 0 {
		t.Fatalf("stats = %+v, want 1 queued since %v", st, it.EnqueuedAt)
	}
	if _, ok, err := s.Item(t.Context(), K("absent")); ok || err != nil {
		t.Fatalf("Item(absent) = %v, %v", ok, err)
	}
}

func testEnqueueLeaseLost(t *testing.T, s QueueStore) {
	ctx := t.Context()
	c := mustClaim(t, s, K("lost"), FP(1))
	item := idempotency.NewItem{OrderKey: "o", Payload: Payload("lost")}
	opts := idempotency.EnqueueOptions{Retention: longRetention}
	if err := s.Enqueue(ctx, K("lost"), c.Token+1, item, opts); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Fatalf("Enqueue with another token = %v, want ErrLeaseLost", err)
	}
	if err := s.Enqueue(ctx, K("never-claimed"), 7, item, opts); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Fatalf("Enqueue without a claim = %v, want ErrLeaseLost", err)
	}
	// Nothing was stored: an enqueue writes the item and completes the
	// claim together or not at all.
	for _, id := range []string{"lost", "never-claimed"} {
		if it, ok, err := s.Item(ctx, K(id)); err != nil || ok {
			t.Fatalf("an enqueue refused with ErrLeaseLost stored the item of %s: %+v, %v", id, it, err)
		}
	}
	if st := stats(t, s); st.Queued != 0 {
		t.Fatalf("%d queued after refused enqueues", st.Queued)
	}
	// The claim is untouched and enqueues once.
	if rec := mustGet(t, s, K("lost")); rec.State != idempotency.StateInFlight {
		t.Fatalf("record = %v, want in flight", rec.State)
	}
	if err := s.Enqueue(ctx, K("lost"), c.Token, item, opts); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, K("lost"), c.Token, item, opts); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Fatalf("second Enqueue of a completed claim = %v, want ErrLeaseLost", err)
	}
	n := 0
	if err := s.ScanItems(ctx, func(idempotency.Item) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, s); n != 1 || st.Queued != 1 {
		t.Fatalf("%d items, %d queued after one successful enqueue", n, st.Queued)
	}
}

// testLeaseOrder: one order key's items one at a time in arrival order;
// other order keys do not wait.
func testLeaseOrder(t *testing.T, s QueueStore) {
	ctx := t.Context()
	for _, id := range []string{"a1", "a2", "a3"} {
		enqueue(t, s, id, "A")
	}
	enqueue(t, s, "b1", "B")
	enqueue(t, s, "c1", "C")
	got := wantLeased(t, lease(t, s, 10, longLease), "a1", "b1", "c1")
	if got["a1"].Attempts != 1 || got["a1"].Seq >= mustItem(t, s, "a2").Seq {
		t.Fatalf("a1 = %+v", got["a1"])
	}
	// a2 waits while a1 is leased; nothing else is due.
	wantLeased(t, lease(t, s, 10, longLease))
	if err := s.Ack(ctx, got["b1"].Ref(), 200, queueRetention); err != nil {
		t.Fatal(err)
	}
	wantLeased(t, lease(t, s, 10, longLease))
	if err := s.Ack(ctx, got["a1"].Ref(), 200, queueRetention); err != nil {
		t.Fatal(err)
	}
	a2 := wantLeased(t, lease(t, s, 10, longLease), "a2")["a2"]
	if err := s.Reject(ctx, a2.Ref(), 409, queueRetention); err != nil {
		t.Fatal(err)
	}
	a3 := wantLeased(t, lease(t, s, 1, longLease), "a3")["a3"]
	if err := s.Ack(ctx, a3.Ref(), 204, queueRetention); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, s); st.Queued != 1 {
		t.Fatalf("stats %+v, want c1 queued", st)
	}
	// The batch size bounds a lease.
	for i := range 5 {
		enqueue(t, s, "m"+strconv.Itoa(i), "M"+strconv.Itoa(i))
	}
	if n := len(lease(t, s, 2, longLease)); n != 2 {
		t.Fatalf("Lease(2) took %d", n)
	}
}

func testAck(t *testing.T, s QueueStore) {
	ctx := t.Context()
	enqueue(t, s, "ack", "o")
	it := wantLeased(t, lease(t, s, 1, longLease), "ack")["ack"]
	before := time.Now()
	if err := s.Ack(ctx, it.Ref(), 201, queueRetention); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	got := mustItem(t, s, "ack")
	if got.State != idempotency.ItemDelivered || got.HasPayload || got.LastStatus != 201 || !between(got.FinishedAt, before, after) || got.Attempts != 1 {
		t.Fatalf("after Ack: %+v", got)
	}
	if got.ExpiresAt.Before(before.Add(queueRetention-time.Second)) || got.ExpiresAt.After(after.Add(queueRetention+time.Second)) {
		t.Fatalf("ExpiresAt %v, want about %v from now", got.ExpiresAt, queueRetention)
	}
	if err := s.Ack(ctx, it.Ref(), 200, queueRetention); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Fatalf("second Ack = %v, want ErrLeaseLost", err)
	}
	for name, fn := range map[string]func() error{
		"Retry":      func() error { return s.Retry(ctx, it.Ref(), 0, 500, "status") },
		"Reject":     func() error { return s.Reject(ctx, it.Ref(), 409, queueRetention) },
		"DeadLetter": func() error { return s.DeadLetter(ctx, it.Ref(), 500, "status", time.Minute, queueRetention) },
		"Unlease":    func() error { return s.Unlease(ctx, it.Ref()) },
	} {
		if err := fn(); !errors.Is(err, idempotency.ErrLeaseLost) {
			t.Errorf("%s of a delivered item = %v, want ErrLeaseLost", name, err)
		}
	}
	if st := stats(t, s); st.Queued != 0 || !st.Oldest.IsZero() {
		t.Fatalf("stats %+v after the only item was delivered", st)
	}
	if rec := mustGet(t, s, K("ack")); rec.Answer.Outcome != idempotency.OutcomeQueued {
		t.Fatalf("dedupe record changed: %+v", rec)
	}
	wantLeased(t, lease(t, s, 5, longLease))
}

func testReject(t *testing.T, s QueueStore) {
	enqueue(t, s, "rej", "o")
	it := lease(t, s, 1, longLease)[0]
	if err := s.Reject(t.Context(), it.Ref(), 422, queueRetention); err != nil {
		t.Fatal(err)
	}
	got := mustItem(t, s, "rej")
	if got.State != idempotency.ItemBusinessRejected || got.HasPayload || got.LastStatus != 422 {
		t.Fatalf("after Reject: %+v", got)
	}
	wantLeased(t, lease(t, s, 5, longLease))
}

func testRetryKeepsOrder(t *testing.T, s QueueStore) {
	ctx := t.Context()
	enqueue(t, s, "add", "cust")
	enqueue(t, s, "remove", "cust")
	add := wantLeased(t, lease(t, s, 5, longLease), "add")["add"]
	if err := s.Retry(ctx, add.Ref(), 0, 503, "status"); err != nil {
		t.Fatal(err)
	}
	got := mustItem(t, s, "add")
	if got.State != idempotency.ItemPending || got.LastStatus != 503 || got.LastReason != "status" || got.Attempts != 1 || !got.HasPayload {
		t.Fatalf("after Retry: %+v", got)
	}
	// The retried add comes again before the remove.
	add = wantLeased(t, lease(t, s, 5, longLease), "add")["add"]
	if add.Attempts != 2 {
		t.Fatalf("Attempts = %d, want 2", add.Attempts)
	}
	if err := s.Ack(ctx, add.Ref(), 200, queueRetention); err != nil {
		t.Fatal(err)
	}
	wantLeased(t, lease(t, s, 5, longLease), "remove")
}

func testDeadLetter(t *testing.T, s QueueStore) {
	ctx := t.Context()
	enqueue(t, s, "d1", "cust")
	enqueue(t, s, "d2", "cust")
	d1 := lease(t, s, 5, longLease)[0]
	if err := s.DeadLetter(ctx, d1.Ref(), 0, "timeout", 30*time.Minute, queueRetention); err != nil {
		t.Fatal(err)
	}
	got := mustItem(t, s, "d1")
	if got.State != idempotency.ItemDead || !got.HasPayload || got.LastReason != "timeout" || got.FinishedAt.IsZero() {
		t.Fatalf("dead letter: %+v", got)
	}
	if st := stats(t, s); st.Dead != 1 || st.Queued != 1 {
		t.Fatalf("stats %+v, want 1 dead, 1 queued", st)
	}
	// The dead letter no longer holds its customer back.
	d2 := wantLeased(t, lease(t, s, 5, longLease), "d2")["d2"]
	// Redelivered, it takes its original place before d2, after d2's
	// lease.
	if err := s.Redeliver(ctx, K("d1")); err != nil {
		t.Fatal(err)
	}
	got = mustItem(t, s, "d1")
	if got.State != idempotency.ItemPending || got.Attempts != 0 || got.RedeliveredAt.IsZero() || !got.HasPayload || !got.AgeFrom().Equal(got.RedeliveredAt) {
		t.Fatalf("redelivered: %+v", got)
	}
	if st := stats(t, s); st.Dead != 0 || st.Queued != 2 {
		t.Fatalf("stats %+v, want 0 dead, 2 queued", st)
	}
	wantLeased(t, lease(t, s, 5, longLease))
	if err := s.Retry(ctx, d2.Ref(), 0, 500, "status"); err != nil {
		t.Fatal(err)
	}
	d1 = wantLeased(t, lease(t, s, 5, longLease), "d1")["d1"]
	if err := s.Ack(ctx, d1.Ref(), 200, queueRetention); err != nil {
		t.Fatal(err)
	}
	wantLeased(t, lease(t, s, 5, longLease), "d2")
	for _, c := range []struct {
		id   string
		want error
	}{{"d1", idempotency.ErrNotDeadLetter}, {"d2", idempotency.ErrNotDeadLetter}, {"nothing", idempotency.ErrItemNotFound}} {
		if err := s.Redeliver(ctx, K(c.id)); !errors.Is(err, c.want) {
			t.Errorf("Redeliver(%s) = %v, want %v", c.id, err, c.want)
		}
	}
}

// testRedeliverOvertaken: Redeliver with overtaking APIs refuses a dead
// letter (ErrOvertaken, left dead with its payload) once a later item of
// its order key and of such an API is leased, delivered or rejected; an
// earlier one, a pending one, or one of another API does not stand in the
// way, and without overtakers (force) it redelivers.
func testRedeliverOvertaken(t *testing.T, s QueueStore) {
	ctx := t.Context()
	const other = "removePaymentMethod" // K's API is addPaymentMethod
	keyOf := func(api, id string) idempotency.Key { k := K(id); k.API = api; return k }
	leaseOne := func(k idempotency.Key) idempotency.Item {
		t.Helper()
		items := lease(t, s, 5, longLease)
		if len(items) != 1 || items[0].Key != k {
			t.Fatalf("Lease: %v, want %v alone", ids(items), k)
		}
		return items[0]
	}
	wantDead := func(k idempotency.Key, when string) {
		t.Helper()
		it, ok, err := s.Item(ctx, k)
		if err != nil || !ok || it.State != idempotency.ItemDead || !it.HasPayload {
			t.Fatalf("%s: %v is %+v, %v, %v; want dead with its payload", when, k, it, ok, err)
		}
	}
	for _, finish := range []string{"ack", "reject"} {
		t.Run(finish, func(t *testing.T) {
			o := "ov-" + finish
			early := keyOf(other, "ov-early-"+finish)
			dead := K("ov-dead-" + finish)
			sameAPI := K("ov-same-" + finish)
			later := keyOf(other, "ov-later-"+finish)
			// An earlier item of the overtaking API, delivered: no obstacle.
			enqueueKey(t, s, early, o)
			if err := s.Ack(ctx, leaseOne(early).Ref(), 200, queueRetention); err != nil {
				t.Fatal(err)
			}
			enqueueKey(t, s, dead, o)
			if err := s.DeadLetter(ctx, leaseOne(dead).Ref(), 503, "status", time.Hour, queueRetention); err != nil {
				t.Fatal(err)
			}
			// A later item of the dead letter's own API, delivered: no
			// obstacle either.
			enqueueKey(t, s, sameAPI, o)
			if err := s.Ack(ctx, leaseOne(sameAPI).Ref(), 200, queueRetention); err != nil {
				t.Fatal(err)
			}
			// A later opposite item still pending: the dead letter goes back
			// before it.
			enqueueKey(t, s, later, o)
			if err := s.Redeliver(ctx, dead, other); err != nil {
				t.Fatalf("Redeliver with the later item pending: %v, want nil", err)
			}
			if err := s.DeadLetter(ctx, leaseOne(dead).Ref(), 503, "status", time.Hour, queueRetention); err != nil {
				t.Fatal(err)
			}
			// Leased: refused.
			l := leaseOne(later)
			if err := s.Redeliver(ctx, dead, "notifyOther", other); !errors.Is(err, idempotency.ErrOvertaken) {
				t.Fatalf("Redeliver with the later item leased: %v, want ErrOvertaken", err)
			}
			wantDead(dead, "refused while leased")
			// Finished: refused.
			if finish == "ack" {
				err := s.Ack(ctx, l.Ref(), 200, queueRetention)
				if err != nil {
					t.Fatal(err)
				}
			} else if err := s.Reject(ctx, l.Ref(), 422, queueRetention); err != nil {
				t.Fatal(err)
			}
			if err := s.Redeliver(ctx, dead, other); !errors.Is(err, idempotency.ErrOvertaken) {
				t.Fatalf("Redeliver after the later item's %s: %v, want ErrOvertaken", finish, err)
			}
			wantDead(dead, "refused after "+finish)
			if st := stats(t, s); st.Queued != 0 {
				t.Fatalf("stats %+v after refusals, want nothing queued", st)
			}
			// Other overtaking APIs than the later item's: no obstacle;
			// then force (no overtakers) redelivers too.
			if err := s.Redeliver(ctx, dead, "notifyOther"); err != nil {
				t.Fatalf("Redeliver overtaken by other APIs only: %v, want nil", err)
			}
			if err := s.DeadLetter(ctx, leaseOne(dead).Ref(), 503, "status", time.Hour, queueRetention); err != nil {
				t.Fatal(err)
			}
			if err := s.Redeliver(ctx, dead); err != nil {
				t.Fatalf("Redeliver without overtakers (force): %v, want nil", err)
			}
			if it := mustItem(t, s, dead.RequestID); it.State != idempotency.ItemPending {
				t.Fatalf("forced: %+v, want pending", it)
			}
			if err := s.Ack(ctx, leaseOne(dead).Ref(), 200, queueRetention); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func testRedeliverDead(t *testing.T, s QueueStore) {
	ctx := t.Context()
	for i := range 3 {
		id := "rd" + strconv.Itoa(i)
		enqueue(t, s, id, "o"+id)
	}
	items := lease(t, s, 5, longLease)
	for _, it := range items[:2] {
		if err := s.DeadLetter(ctx, it.Ref(), 500, "status", time.Hour, queueRetention); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.RedeliverDead(ctx)
	if err != nil || n != 2 {
		t.Fatalf("RedeliverDead = %d, %v; want 2", n, err)
	}
	if n, err := s.RedeliverDead(ctx); err != nil || n != 0 {
		t.Fatalf("second RedeliverDead = %d, %v; want 0", n, err)
	}
	wantLeased(t, lease(t, s, 5, longLease), items[0].Key.RequestID, items[1].Key.RequestID)
}

func testUnlease(t *testing.T, s QueueStore) {
	enqueue(t, s, "un", "o")
	it := lease(t, s, 1, longLease)[0]
	if err := s.Unlease(t.Context(), it.Ref()); err != nil {
		t.Fatal(err)
	}
	if got := mustItem(t, s, "un"); got.State != idempotency.ItemPending || got.Attempts != 0 {
		t.Fatalf("after Unlease: %+v", got)
	}
	again := lease(t, s, 1, longLease)
	if len(again) != 1 || again[0].Attempts != 1 || again[0].LeaseToken == it.LeaseToken {
		t.Fatalf("lease after Unlease: %+v", again)
	}
	if err := s.Unlease(t.Context(), it.Ref()); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Fatalf("Unlease with the old token = %v", err)
	}
}

func testBound(t *testing.T, s QueueStore) {
	const max = 3
	for i := range max {
		if err := tryEnqueue(t, s, "b"+strconv.Itoa(i), "o"+strconv.Itoa(i), max); err != nil {
			t.Fatalf("enqueue %d of %d: %v", i+1, max, err)
		}
	}
	if err := tryEnqueue(t, s, "over", "x", max); !errors.Is(err, idempotency.ErrQueueFull) {
		t.Fatalf("enqueue beyond the bound = %v, want ErrQueueFull", err)
	}
	if _, ok, _ := s.Item(t.Context(), K("over")); ok {
		t.Fatal("the refused item was stored")
	}
	// The refused claim stays claimable (tryEnqueue released it).
	mustAbsent(t, s, K("over"))
	it := lease(t, s, 1, longLease)[0]
	if err := s.Ack(t.Context(), it.Ref(), 200, queueRetention); err != nil {
		t.Fatal(err)
	}
	if err := tryEnqueue(t, s, "over", "x", max); err != nil {
		t.Fatalf("enqueue after one left the queue: %v", err)
	}
}

func testScanItems(t *testing.T, s QueueStore) {
	ctx := t.Context()
	enqueue(t, s, "s1", "o1")
	enqueue(t, s, "s2", "o2")
	enqueue(t, s, "s3", "o3")
	for _, it := range lease(t, s, 2, longLease) {
		if err := s.Ack(ctx, it.Ref(), 200, queueRetention); err != nil {
			t.Fatal(err)
		}
	}
	states := map[string]idempotency.ItemState{}
	if err := s.ScanItems(ctx, func(it idempotency.Item) bool {
		if it.Payload != nil {
			t.Errorf("ScanItems returned a payload for %v", it.Key)
		}
		states[it.Key.RequestID] = it.State
		return true
	}); err != nil {
		t.Fatal(err)
	}
	n := map[idempotency.ItemState]int{}
	for _, st := range states {
		n[st]++
	}
	if len(states) != 3 || n[idempotency.ItemDelivered] != 2 || n[idempotency.ItemPending] != 1 {
		t.Fatalf("ScanItems saw %v", states)
	}
	calls := 0
	if err := s.ScanItems(ctx, func(idempotency.Item) bool { calls++; return false }); err != nil || calls != 1 {
		t.Fatalf("ScanItems stopping at once: %d calls, %v", calls, err)
	}
}

func testQueueInvalid(t *testing.T, s QueueStore) {
	ctx := t.Context()
	c := mustClaim(t, s, K("inv"), FP(1))
	opts := idempotency.EnqueueOptions{Retention: longRetention}
	for name, it := range map[string]idempotency.NewItem{
		"empty order key": {Payload: []byte("x")},
		"empty payload":   {OrderKey: "o"},
		"huge payload":    {OrderKey: "o", Payload: make([]byte, idempotency.MaxPayloadLen+1)},
	} {
		if err := s.Enqueue(ctx, K("inv"), c.Token, it, opts); !errors.Is(err, idempotency.ErrInvalidArgument) {
			t.Errorf("Enqueue with %s = %v, want ErrInvalidArgument", name, err)
		}
	}
	if err := s.Enqueue(ctx, K("inv"), c.Token, idempotency.NewItem{OrderKey: "o", Payload: []byte("x")}, idempotency.EnqueueOptions{}); !errors.Is(err, idempotency.ErrInvalidArgument) {
		t.Errorf("Enqueue without retention = %v", err)
	}
	// The largest payload is accepted.
	big := idempotency.NewItem{OrderKey: "o", Payload: bytes.Repeat([]byte{0xA5}, idempotency.MaxPayloadLen)}
	if err := s.Enqueue(ctx, K("inv"), c.Token, big, opts); err != nil {
		t.Fatalf("Enqueue of MaxPayloadLen bytes: %v", err)
	}
	items, err := s.Lease(ctx, 1, longLease)
	if err != nil || len(items) != 1 || !bytes.Equal(items[0].Payload, big.Payload) {
		t.Fatalf("Lease of the largest payload: %d items, %v", len(items), err)
	}
	ref := items[0].Ref()
	for name, err := range map[string]error{
		"Lease 0":          func() error { _, err := s.Lease(ctx, 0, longLease); return err }(),
		"Lease no lease":   func() error { _, err := s.Lease(ctx, 1, 0); return err }(),
		"Ack status":       s.Ack(ctx, ref, 1000, queueRetention),
		"Ack retention":    s.Ack(ctx, ref, 200, 0),
		"Retry negative":   s.Retry(ctx, ref, -time.Second, 500, ""),
		"Retry reason":     s.Retry(ctx, ref, 0, 500, string(bytes.Repeat([]byte{'r'}, idempotency.MaxReasonLen+1))),
		"Dead keep>ret":    s.DeadLetter(ctx, ref, 500, "", 2*queueRetention, queueRetention),
		"Ack zero token":   s.Ack(ctx, idempotency.ItemRef{Key: ref.Key, OrderKey: ref.OrderKey}, 200, queueRetention),
		"Ack no order key": s.Ack(ctx, idempotency.ItemRef{Key: ref.Key, Token: ref.Token}, 200, queueRetention),
		"Redeliver key":    s.Redeliver(ctx, idempotency.Key{}),
	} {
		if !errors.Is(err, idempotency.ErrInvalidArgument) {
			t.Errorf("%s = %v, want ErrInvalidArgument", name, err)
		}
	}
	if got := mustItem(t, s, "inv"); got.State != idempotency.ItemLeased {
		t.Fatalf("invalid calls changed the item: %+v", got)
	}
}

func testQueueClosed(t *testing.T, s QueueStore) {
	ctx := t.Context()
	enqueue(t, s, "cl", "o")
	it := lease(t, s, 1, longLease)[0]
	c := mustClaim(t, s, K("cl2"), FP(1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Enqueue":       s.Enqueue(ctx, K("cl2"), c.Token, idempotency.NewItem{OrderKey: "o", Payload: []byte("x")}, idempotency.EnqueueOptions{Retention: time.Hour}),
		"Lease":         func() error { _, err := s.Lease(ctx, 1, longLease); return err }(),
		"Ack":           s.Ack(ctx, it.Ref(), 200, queueRetention),
		"Retry":         s.Retry(ctx, it.Ref(), 0, 500, ""),
		"Redeliver":     s.Redeliver(ctx, K("cl")),
		"RedeliverDead": func() error { _, err := s.RedeliverDead(ctx); return err }(),
		"Item":          func() error { _, _, err := s.Item(ctx, K("cl")); return err }(),
		"ScanItems":     s.ScanItems(ctx, func(idempotency.Item) bool { return true }),
		"QueueStats":    func() error { _, err := s.QueueStats(ctx); return err }(),
	} {
		if !errors.Is(err, idempotency.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

// testConcurrentLeases: two deliverers (two stores on the same data, where
// the store allows it) lease and acknowledge 8 customers' items at once;
// every item is delivered once, and each customer's in arrival order.
func testConcurrentLeases(t *testing.T, a, b QueueStore) {
	ctx := t.Context()
	const customers, per = 8, 6
	var want []string
	for i := range per {
		for c := range customers {
			id := fmt.Sprintf("c%d-%d", c, i)
			enqueue(t, a, id, "cust"+strconv.Itoa(c))
			want = append(want, id)
		}
	}
	var mu sync.Mutex
	delivered := map[string][]int{} // order key -> item numbers in delivery order
	seen := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Go(func() {
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				mu.Lock()
				done := len(seen) == len(want)
				mu.Unlock()
				if done {
					return
				}
				items, err := s.Lease(ctx, 3, longLease)
				if err != nil {
					errs <- err
					return
				}
				for _, it := range items {
					var c, i int
					fmt.Sscanf(it.Key.RequestID, "c%d-%d", &c, &i)
					mu.Lock()
					if seen[it.Key.RequestID] {
						errs <- fmt.Errorf("%s leased twice", it.Key.RequestID)
					}
					seen[it.Key.RequestID] = true
					delivered[it.OrderKey] = append(delivered[it.OrderKey], i)
					mu.Unlock()
					if err := s.Ack(ctx, it.Ref(), 200, queueRetention); err != nil {
						errs <- err
						return
					}
				}
				if len(items) == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != len(want) {
		t.Fatalf("delivered %d of %d", len(seen), len(want))
	}
	for o, seq := range delivered {
		if !slices.IsSorted(seq) || len(seq) != per {
			t.Errorf("customer %s delivered in order %v", o, seq)
		}
	}
	if st := stats(t, a); st.Queued != 0 {
		t.Fatalf("stats after draining: %+v", st)
	}
}

// testEnqueueWhileDelivering: producers enqueue into a few customers while
// deliverers lease and acknowledge: an item enqueued just as its
// customer's last queued item is acknowledged must not be lost, and each
// customer's items go out once, in their seq order.
func testEnqueueWhileDelivering(t *testing.T, a, b QueueStore) {
	ctx := t.Context()
	const customers, per = 4, 25
	var mu sync.Mutex
	seen := map[string]bool{}
	lastSeq := map[string]uint64{}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for c := range customers {
		wg.Go(func() {
			for i := range per {
				id := fmt.Sprintf("ew%d-%02d", c, i)
				cl, err := a.Claim(ctx, K(id), FP(1), longLease, longRetention)
				if err == nil {
					err = a.Enqueue(ctx, K(id), cl.Token, idempotency.NewItem{OrderKey: "cust" + strconv.Itoa(c), Payload: Payload(id)},
						idempotency.EnqueueOptions{Retention: longRetention})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == customers*per }
	deliverers(ctx, &wg, a, b, 20*time.Second, done, errs, func(s QueueStore, it idempotency.Item) error {
		mu.Lock()
		if seen[it.Key.RequestID] || it.Seq <= lastSeq[it.OrderKey] {
			errs <- fmt.Errorf("%s (seq %d) leased again or after seq %d", it.Key.RequestID, it.Seq, lastSeq[it.OrderKey])
		}
		seen[it.Key.RequestID] = true
		lastSeq[it.OrderKey] = it.Seq
		mu.Unlock()
		return s.Ack(ctx, it.Ref(), 200, queueRetention)
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != customers*per {
		t.Fatalf("delivered %d of %d (an item enqueued during a settlement was lost?)", len(seen), customers*per)
	}
	if st := stats(t, a); st.Queued != 0 {
		t.Fatalf("stats after draining: %+v", st)
	}
}

// testOneCustomerContention: many producers enqueue into one customer
// while deliverers lease, retry once and acknowledge its items. Every
// settlement must succeed however many enqueues race with it (a store
// must not give up on a busy customer: an acknowledgement that fails is a
// redelivery), and the items still go out once each, in seq order.
func testOneCustomerContention(t *testing.T, a, b QueueStore) {
	ctx := t.Context()
	const producers, per = 12, 20
	total := producers * per
	var mu sync.Mutex
	acked := map[string]bool{}
	retried := map[string]bool{}
	var lastSeq uint64
	var wg sync.WaitGroup
	var failed atomic.Bool
	errs := make(chan error, 64)
	for p := range producers {
		s := a
		if p%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for i := range per {
				id := fmt.Sprintf("oc%02d-%02d", p, i)
				cl, err := s.Claim(ctx, K(id), FP(1), longLease, longRetention)
				if err == nil {
					err = s.Enqueue(ctx, K(id), cl.Token, idempotency.NewItem{OrderKey: "one-customer", Payload: Payload(id)},
						idempotency.EnqueueOptions{Retention: longRetention})
				}
				if err != nil {
					errs <- fmt.Errorf("enqueue %s: %w", id, err)
					failed.Store(true)
					return
				}
			}
		})
	}
	done := func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) == total || failed.Load() }
	deliverers(ctx, &wg, a, b, 30*time.Second, done, errs, func(s QueueStore, it idempotency.Item) error {
		id := it.Key.RequestID
		mu.Lock()
		again := retried[id]
		if acked[id] || (!again && it.Seq <= lastSeq) || (again && it.Seq != lastSeq) {
			errs <- fmt.Errorf("%s (seq %d) leased out of order or again after seq %d", id, it.Seq, lastSeq)
		}
		lastSeq = it.Seq
		retried[id] = true
		mu.Unlock()
		if !again {
			if err := s.Retry(ctx, it.Ref(), 0, 503, "status"); err != nil {
				return fmt.Errorf("retry %s: %w", id, err)
			}
			return nil
		}
		if err := s.Ack(ctx, it.Ref(), 200, queueRetention); err != nil {
			return fmt.Errorf("ack %s: %w", id, err)
		}
		mu.Lock()
		acked[id] = true
		mu.Unlock()
		return nil
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(acked) != total {
		t.Fatalf("acknowledged %d of %d", len(acked), total)
	}
}

// deliverers starts two deliverers, one on each store, that lease up to
// four items at a time and hand each to each, until done reports true,
// within has passed, or Lease or each fails (the error goes to errs).
func deliverers(ctx context.Context, wg *sync.WaitGroup, a, b QueueStore, within time.Duration, done func() bool, errs chan<- error, each func(s QueueStore, it idempotency.Item) error) {
	deadline := time.Now().Add(within)
	for _, s := range []QueueStore{a, b} {
		wg.Go(func() {
			for time.Now().Before(deadline) && !done() {
				items, err := s.Lease(ctx, 4, longLease)
				if err != nil {
					errs <- fmt.Errorf("lease: %w", err)
					return
				}
				for _, it := range items {
					if err := each(s, it); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
}

func testRetryDue(t *testing.T, s QueueStore) {
	ctx := t.Context()
	enqueue(t, s, "late", "cust")
	enqueue(t, s, "later", "cust")
	enqueue(t, s, "other", "other")
	got := wantLeased(t, lease(t, s, 5, longLease), "late", "other")
	pause := 800 * time.Millisecond
	start := time.Now()
	if err := s.Retry(ctx, got["late"].Ref(), pause, 0, "unreachable"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, got["other"].Ref(), 200, queueRetention); err != nil {
		t.Fatal(err)
	}
	it := mustItem(t, s, "late")
	if it.DueAt.Before(start.Add(pause-timeTolerance-50*time.Millisecond)) || it.DueAt.After(time.Now().Add(pause+timeTolerance)) {
		t.Fatalf("DueAt %v, want about %v after %v", it.DueAt, pause, start)
	}
	// Neither the retried item nor the one behind it is due yet; another
	// customer's new item is.
	enqueue(t, s, "other2", "other")
	wantLeased(t, lease(t, s, 5, longLease), "other2")
	sleepUntil(it.DueAt.Add(-200 * time.Millisecond))
	wantLeased(t, lease(t, s, 5, longLease))
	sleepUntil(it.DueAt.Add(50 * time.Millisecond))
	wantLeased(t, lease(t, s, 5, longLease), "late")
}

// testLeaseTakeover: a deliverer that holds a lease and stops answering is
// taken over (by another deliverer) once the lease ends; the first one's
// token is dead from then on.
func testLeaseTakeover(t *testing.T, a, b QueueStore) {
	ctx := t.Context()
	enqueue(t, a, "tk", "cust")
	enqueue(t, a, "tk2", "cust")
	first := wantLeased(t, lease(t, a, 5, shortLease), "tk")["tk"]
	sleepUntil(first.LeaseExpiry.Add(-300 * time.Millisecond))
	wantLeased(t, lease(t, b, 5, shortLease))
	sleepUntil(first.LeaseExpiry.Add(50 * time.Millisecond))
	second := wantLeased(t, lease(t, b, 5, longLease), "tk")["tk"]
	if second.LeaseToken == first.LeaseToken || second.Attempts != 2 {
		t.Fatalf("takeover: token %d (was %d), attempts %d", second.LeaseToken, first.LeaseToken, second.Attempts)
	}
	if err := a.Ack(ctx, first.Ref(), 200, queueRetention); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Fatalf("Ack by the deliverer taken over = %v, want ErrLeaseLost", err)
	}
	if err := a.Retry(ctx, first.Ref(), 0, 500, ""); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Fatalf("Retry by the deliverer taken over = %v, want ErrLeaseLost", err)
	}
	wantLeased(t, lease(t, a, 5, longLease))
	if err := b.Ack(ctx, second.Ref(), 200, queueRetention); err != nil {
		t.Fatal(err)
	}
	wantLeased(t, lease(t, a, 5, longLease), "tk2")
}

func testDeadPayloadExpiry(t *testing.T, s QueueStore) {
	ctx := t.Context()
	enqueue(t, s, "dx", "o")
	it := lease(t, s, 1, longLease)[0]
	if err := s.DeadLetter(ctx, it.Ref(), 500, "status", time.Second, queueRetention); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for mustItem(t, s, "dx").HasPayload {
		if time.Now().After(deadline) {
			t.Fatal("the dead letter's payload outlived its retention by 4 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := mustItem(t, s, "dx"); got.State != idempotency.ItemDead {
		t.Fatalf("record after the payload expired: %+v", got)
	}
	if err := s.Redeliver(ctx, K("dx")); !errors.Is(err, idempotency.ErrPayloadExpired) {
		t.Fatalf("Redeliver after the payload expired = %v", err)
	}
	if st := stats(t, s); st.Dead != 0 {
		t.Fatalf("stats %+v: an expired dead letter still counts", st)
	}
	if n, err := s.RedeliverDead(ctx); n != 0 || err != nil {
		t.Fatalf("RedeliverDead = %d, %v", n, err)
	}
}

func testFinishedExpiry(t *testing.T, s QueueStore) {
	ctx := t.Context()
	enqueue(t, s, "fx", "o")
	it := lease(t, s, 1, longLease)[0]
	if err := s.Ack(ctx, it.Ref(), 200, time.Second); err != nil {
		t.Fatal(err)
	}
	waitItemGone(t, s, K("fx"))
}

// waitItemGone waits for the record of the item of key, delivered with a
// retention of one second, to expire.
func waitItemGone(t *testing.T, s QueueStore, key idempotency.Key) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, ok, err := s.Item(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the delivered item's record outlived its retention by 4 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testOvertakenWhileDeadKept: the store still refuses a dead letter
// overtaken by a later delivered item whose own record has expired, as
// long as the dead letter keeps its payload (a shorter retention given to
// the later item's Ack must not reopen the door).
func testOvertakenWhileDeadKept(t *testing.T, s QueueStore) {
	ctx := t.Context()
	later := K("ovk-later")
	later.API = "removePaymentMethod"
	enqueue(t, s, "ovk-dead", "ovk")
	if err := s.DeadLetter(ctx, lease(t, s, 1, longLease)[0].Ref(), 503, "status", 8*time.Second, 8*time.Second); err != nil {
		t.Fatal(err)
	}
	enqueueKey(t, s, later, "ovk")
	l := lease(t, s, 1, longLease)
	if len(l) != 1 || l[0].Key != later {
		t.Fatalf("Lease: %v, want the later item", ids(l))
	}
	if err := s.Ack(ctx, l[0].Ref(), 200, time.Second); err != nil {
		t.Fatal(err)
	}
	waitItemGone(t, s, later)
	if err := s.Redeliver(ctx, K("ovk-dead"), "removePaymentMethod"); !errors.Is(err, idempotency.ErrOvertaken) {
		t.Fatalf("Redeliver once the later item's record expired, the dead letter's payload kept: %v, want ErrOvertaken", err)
	}
	if it := mustItem(t, s, "ovk-dead"); it.State != idempotency.ItemDead || !it.HasPayload {
		t.Fatalf("the refused dead letter: %+v", it)
	}
}

// testEnqueueAfterRecordExpiry: an item already queued for the key (its
// dedupe record expired meanwhile) is kept when the key is claimed and
// enqueued again.
func testEnqueueAfterRecordExpiry(t *testing.T, s QueueStore) {
	ctx := t.Context()
	c := mustClaim(t, s, K("re"), FP(1))
	item := idempotency.NewItem{OrderKey: "o", Payload: Payload("re")}
	if err := s.Enqueue(ctx, K("re"), c.Token, item, idempotency.EnqueueOptions{Retention: time.Second}); err != nil {
		t.Fatal(err)
	}
	seq := mustItem(t, s, "re").Seq
	waitAbsent(t, s, K("re"), time.Now().Add(5*time.Second))
	c = mustClaim(t, s, K("re"), FP(1))
	if err := s.Enqueue(ctx, K("re"), c.Token, item, idempotency.EnqueueOptions{Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got := mustItem(t, s, "re"); got.Seq != seq {
		t.Fatalf("a second item replaced the first: seq %d, was %d", got.Seq, seq)
	}
	if st := stats(t, s); st.Queued != 1 {
		t.Fatalf("stats %+v, want one item", st)
	}
	if rec := mustGet(t, s, K("re")); rec.State != idempotency.StateDone || rec.Answer.Outcome != idempotency.OutcomeQueued {
		t.Fatalf("record %+v", rec)
	}
}

// ClaimEnqueue is the enqueue benchmark loop every queueing store shares:
// b.N claim + enqueue pairs on unique keys (requestId keyFor(i)), each a
// payload of payloadLen bytes under one of 1,000 order keys, from exactly
// conc goroutines, with a 168h retention. It fails b on the first error
// and returns the wall time of the loop.
func ClaimEnqueue(b *testing.B, s QueueStore, conc, payloadLen int, keyFor func(i int64) string) time.Duration {
	payload := bytes.Repeat([]byte{0x5A}, payloadLen)
	return benchLoop(b, conc, func(ctx context.Context, i int64) error {
		k := K(keyFor(i))
		c, err := s.Claim(ctx, k, FP(1), time.Minute, 168*time.Hour)
		if err == nil && c.Status != idempotency.Claimed {
			err = fmt.Errorf("claim of a unique key: %v", c.Status)
		}
		if err == nil {
			err = s.Enqueue(ctx, k, c.Token, idempotency.NewItem{OrderKey: "order-" + strconv.FormatInt(i%1000, 10), Payload: payload},
				idempotency.EnqueueOptions{Retention: 168 * time.Hour})
		}
		return err
	})
}
