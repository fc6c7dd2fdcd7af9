package idempotency

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The Badger queue's keys (values in queue_codec.go). K is the record key's
// field encoding (appendKey without its prefix), O an order key as a
// uvarint length and its bytes:
//
//	q 1 K               item
//	q 2 K               payload (deleted when delivered or rejected; TTL when dead)
//	q 3 O seq           the order key's queued items, by seq -> K
//	q 4 O               order state: its due time, its leased item
//	q 5 due O           the due index: order keys by when they are next leasable
//	q 6 seq             every queued item by seq -> K (count, oldest)
//	q 7 K               dead letters that keep their payload (TTL)
//	q 8 O               finished: per API, the highest seq delivered or rejected (TTL)
//
// One order key has one due-index entry while it has queued items: at its
// leased item's lease expiry while one is leased, else at its lowest-seq
// item's DueAt. Lease walks the index up to now, so it only meets order
// keys it can act on.
var (
	qItemPrefix   = []byte{'q', 1}
	qBodyPrefix   = []byte{'q', 2}
	qOrderPrefix  = []byte{'q', 3}
	qStatePrefix  = []byte{'q', 4}
	qDuePrefix    = []byte{'q', 5}
	qArrivePrefix = []byte{'q', 6}
	qDeadPrefix   = []byte{'q', 7}
	qFinPrefix    = []byte{'q', 8}
)

func qKey(prefix []byte, k Key) []byte {
	b := appendKey(make([]byte, 0, 80), k)
	return append(append(make([]byte, 0, len(b)), prefix...), b[len(recordKeyPrefix):]...)
}

func appendOrder(dst []byte, o string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(o)))
	return append(dst, o...)
}

func qOrderKey(o string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(appendOrder(append([]byte(nil), qOrderPrefix...), o), seq)
}

func qStateKey(o string) []byte { return appendOrder(append([]byte(nil), qStatePrefix...), o) }

func qDueKey(due time.Time, o string) []byte {
	return appendOrder(appendTime(append([]byte(nil), qDuePrefix...), due), o)
}

func qArriveKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), qArrivePrefix...), seq)
}

// keyFromFields decodes K (a record key's fields).
func keyFromFields(b []byte) (Key, error) {
	return decodeKey(append(append(make([]byte, 0, len(recordKeyPrefix)+len(b)), recordKeyPrefix...), b...))
}

// badgerQueue is the queue's in-process state. Badger is opened by one
// process, so the count of queued items is kept in memory, and the writes
// that move items between states (Lease, the settlements, Redeliver) are
// serialized by mu. Enqueues are not (their commits still run one at a
// time, as every commit of the store, failstop.go).
//
// Every transaction that writes an order key's entries (an enqueue into
// it, the lease of its next item, a settlement, a redelivery) holds the
// order key's stripe lock (orders) from before it starts until it
// committed. Badger's conflict detection would order them too (an
// enqueue rewrites its order key's state, which every other writer of
// the order key reads, so a settlement that found no next item cannot
// commit over an enqueue it did not see), but it does so by making the
// losers run again, and a busy customer could make an acknowledgement run
// out of attempts: the item would be delivered again. With the lock,
// writers of one order key never conflict with each other; the conflict
// detection stays as the safety net.
type badgerQueue struct {
	mu sync.Mutex
	// queued counts the pending and leased items, and the enqueues under
	// way that reserved a place (reserve).
	queued atomic.Int64

	// orders are the stripe locks over order keys (lockOrder).
	orders    [orderStripes]sync.Mutex
	orderSeed maphash.Seed

	seqMu   sync.Mutex
	lastSeq uint64

	// scanFloor, lastScan and lastRewind (unix nanoseconds) and
	// belowFloor let Lease seek into the due index instead of walking it
	// from its start: see dueFrom. Lease sets them under mu; fixOrder
	// reads scanFloor and sets belowFloor from any transaction.
	scanFloor            atomic.Int64
	lastScan, lastRewind int64
	belowFloor           atomic.Bool
}

// dueScanMargin is how far before the floor a Lease's scan of the due
// index starts, for a writer whose clock reading preceded the scan but
// whose commit followed it; dueRewindEvery bounds how long an entry
// below the floor can go unseen if everything else failed.
const (
	dueScanMargin  = 250 * time.Millisecond
	dueRewindEvery = 30 * time.Second
)

// dueFrom is where Lease starts scanning the due index: the zero time (the
// whole index) at first, every dueRewindEvery, when the clock went back
// since the last scan, and when a writer put an entry below the floor;
// otherwise dueScanMargin before the floor the last scan left.
//
// Why a floor: delivered items leave deleted due entries that Badger's
// iterator walks until compaction drops them, so a scan from the start
// costs more with every delivery (BenchmarkDrain: 650 µs per delivery over
// a 20,000-item drain, 200-290 with the floor). A due entry is never
// written before the time it is written (fixOrder clamps a past head's due
// time to now), so while the clock only moves forward no live entry is
// older than the first one the last scan saw, or than that scan's now.
func (q *badgerQueue) dueFrom(now time.Time) time.Time {
	n := now.UnixNano()
	floor := q.scanFloor.Load()
	if floor == 0 || n < q.lastScan || n-q.lastRewind > int64(dueRewindEvery) || q.belowFloor.Swap(false) {
		return time.Time{}
	}
	return time.Unix(0, floor).Add(-dueScanMargin)
}

// noteScan records a scan of the due index that started at from, at now,
// whose first entry (if any) is due at first.
func (q *badgerQueue) noteScan(from, now, first time.Time) {
	if from.IsZero() {
		q.lastRewind = now.UnixNano()
	}
	q.lastScan = now.UnixNano()
	floor := now
	if !first.IsZero() && first.Before(now) {
		floor = first
	}
	q.scanFloor.Store(floor.UnixNano())
}

// noteDue is told of every due entry written: one below the floor (the
// clock went back) makes the next scan read the whole index.
func (q *badgerQueue) noteDue(due time.Time) {
	if f := q.scanFloor.Load(); f != 0 && due.UnixNano() < f-int64(dueScanMargin) {
		q.belowFloor.Store(true)
	}
}

// reserve counts one more queued item unless the count is at max.
func (q *badgerQueue) reserve(max int64) bool {
	for {
		n := q.queued.Load()
		if n >= max {
			return false
		}
		if q.queued.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// orderStripes is the number of stripe locks over order keys.
const orderStripes = 64

// lockOrder locks order key o's stripe and returns the unlock.
func (q *badgerQueue) lockOrder(o string) func() {
	m := &q.orders[maphash.String(q.orderSeed, o)%orderStripes]
	m.Lock()
	return m.Unlock
}

// nextSeq returns a new seq: the wall clock in Unix nanoseconds, or one
// more than the last when the clock has not moved past it. The queue
// starts from the highest seq it holds, so seqs grow across restarts
// unless the clock steps back past the newest item. (No write is needed:
// a Badger Sequence would commit on its own, outside the store's one
// commit at a time.)
func (q *badgerQueue) nextSeq() uint64 {
	q.seqMu.Lock()
	defer q.seqMu.Unlock()
	q.lastSeq = max(q.lastSeq+1, uint64(time.Now().UnixNano()))
	return q.lastSeq
}

// queue returns the queue state, reading the count of queued items on
// first use.
func (s *BadgerStore) queue() (*badgerQueue, error) {
	s.qOnce.Do(func() {
		q := &badgerQueue{orderSeed: maphash.MakeSeed()}
		err := s.view("queue", func(txn *badger.Txn) error {
			o := badger.DefaultIteratorOptions
			o.PrefetchValues = false
			o.Prefix = qArrivePrefix
			it := txn.NewIterator(o)
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				q.queued.Add(1)
				if k := it.Item().Key(); len(k) == len(qArrivePrefix)+8 {
					q.lastSeq = max(q.lastSeq, binary.BigEndian.Uint64(k[len(qArrivePrefix):]))
				}
			}
			return nil
		})
		if err != nil {
			s.qErr = fmt.Errorf("idempotency: counting queued items: %w", err)
			return
		}
		s.q = q
	})
	return s.q, s.qErr
}

// qop enters the store and locks the queue for a write.
func (s *BadgerStore) qop() (*badgerQueue, func(), error) {
	if err := s.enter(); err != nil {
		return nil, nil, err
	}
	q, err := s.queue()
	if err != nil {
		s.ops.Done()
		return nil, nil, err
	}
	q.mu.Lock()
	return q, func() { q.mu.Unlock(); s.ops.Done() }, nil
}

// durable waits for the group commit (when the store fsyncs that way).
func (s *BadgerStore) durable(ctx context.Context, op string, key Key) error {
	if s.syncer == nil {
		return nil
	}
	if err := s.syncer.wait(ctx); err != nil {
		return fmt.Errorf("idempotency: %s %v: waiting for sync: %w", op, key, err)
	}
	return nil
}

var _ Queue = (*BadgerStore)(nil)

// Enqueue implements Queue: one transaction checks the claim, writes the
// item and completes the record; then it waits for the group commit.
func (s *BadgerStore) Enqueue(ctx context.Context, key Key, token uint64, item NewItem, opts EnqueueOptions) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ValidateNewItem(item, opts); err != nil {
		return err
	}
	// Every value must stay below the value threshold: the group commit
	// fsyncs the write-ahead logs only, not the value log.
	if thr := s.db.Opts().ValueThreshold; int64(len(item.Payload)) >= thr || maxItemValueLen >= thr {
		return fmt.Errorf("%w: a payload of %d bytes does not fit below the store's value threshold of %d bytes", ErrInvalidArgument, len(item.Payload), thr)
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.ops.Done()
	q, err := s.queue()
	if err != nil {
		return err
	}
	// The bound is exact: an enqueue reserves its place in the count
	// before it writes and gives it back unless it added an item.
	if opts.MaxQueued > 0 && !q.reserve(opts.MaxQueued) {
		return ErrQueueFull
	}
	reserved := opts.MaxQueued > 0
	rk := appendKey(make([]byte, 0, 64), key)
	ik := qKey(qItemPrefix, key)
	var added bool
	unlockOrder := q.lockOrder(item.OrderKey)
	err = s.update(ctx, key, "enqueue", func(txn *badger.Txn) error {
		added = false
		now := s.now()
		rit, err := txn.Get(rk)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrLeaseLost
		}
		if err != nil {
			return err
		}
		rec, err := recordFromItem(rit, key)
		if err != nil {
			return err
		}
		if rec.State != StateInFlight || rec.Token != token {
			return ErrLeaseLost
		}
		switch _, err := txn.Get(ik); {
		case errors.Is(err, badger.ErrKeyNotFound):
			seq := q.nextSeq()
			it := Item{Key: key, OrderKey: item.OrderKey, Seq: seq, State: ItemPending, EnqueuedAt: now, DueAt: now}
			if err := s.putItem(txn, &it, 0); err != nil {
				return err
			}
			if err := txn.Set(qKey(qBodyPrefix, key), item.Payload); err != nil {
				return err
			}
			if err := s.linkItem(txn, &it); err != nil {
				return err
			}
			if err := touchOrder(txn, item.OrderKey); err != nil {
				return err
			}
			added = true
		case err != nil:
			return err
		}
		rec.State = StateDone
		rec.Answer = QueuedAnswer
		rec.CompletedAt = now
		return txn.SetEntry(newEntry(rk, appendValue(make([]byte, 0, 96), &rec), opts.Retention))
	})
	unlockOrder()
	switch {
	case reserved && (err != nil || !added):
		q.queued.Add(-1)
	case !reserved && err == nil && added:
		q.queued.Add(1)
	}
	if err != nil {
		return err
	}
	s.completions.Add(1)
	return s.durable(ctx, "enqueue", key)
}

// putItem writes an item, kept for retention (0: no TTL).
func (s *BadgerStore) putItem(txn *badger.Txn, it *Item, retention time.Duration) error {
	v := appendItemValue(make([]byte, 0, 96+len(it.OrderKey)), it)
	k := qKey(qItemPrefix, it.Key)
	if retention > 0 {
		return txn.SetEntry(newEntry(k, v, retention))
	}
	return txn.Set(k, v)
}

// linkItem puts a queued item into its order key and the arrival index
// and brings the order key's due entry up to date.
func (s *BadgerStore) linkItem(txn *badger.Txn, it *Item) error {
	fields := qKey(nil, it.Key)
	if err := txn.Set(qOrderKey(it.OrderKey, it.Seq), fields); err != nil {
		return err
	}
	if err := txn.Set(qArriveKey(it.Seq), fields); err != nil {
		return err
	}
	return s.fixOrder(txn, it.OrderKey)
}

// touchOrder rewrites order key o's state as it is, so that every
// transaction that read it conflicts with this one.
func touchOrder(txn *badger.Txn, o string) error {
	st, found, err := getOrderState(txn, o)
	if err != nil || !found {
		return err
	}
	return txn.Set(qStateKey(o), st.value())
}

// unlinkItem takes an item that leaves the queue out of its order key and
// the arrival index, and updates the order key.
func (s *BadgerStore) unlinkItem(txn *badger.Txn, it *Item) error {
	if err := txn.Delete(qOrderKey(it.OrderKey, it.Seq)); err != nil {
		return err
	}
	if err := txn.Delete(qArriveKey(it.Seq)); err != nil {
		return err
	}
	return s.fixOrder(txn, it.OrderKey)
}

// getItem reads the item of key (found false when absent).
func getItem(txn *badger.Txn, key Key) (Item, bool, error) {
	bi, err := txn.Get(qKey(qItemPrefix, key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Item{}, false, nil
	}
	if err != nil {
		return Item{}, false, err
	}
	it, err := itemFrom(bi, key)
	return it, err == nil, err
}

func itemFrom(bi *badger.Item, key Key) (Item, error) {
	it := Item{Key: key}
	if err := bi.Value(func(v []byte) error { return decodeItemValue(v, &it) }); err != nil {
		return Item{}, fmt.Errorf("queue item %v: %w", key, err)
	}
	if exp := bi.ExpiresAt(); exp != 0 {
		it.ExpiresAt = time.Unix(int64(exp), 0)
	}
	return it, nil
}

func getOrderState(txn *badger.Txn, o string) (orderState, bool, error) {
	bi, err := txn.Get(qStateKey(o))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return orderState{}, false, nil
	}
	if err != nil {
		return orderState{}, false, err
	}
	var st orderState
	err = bi.Value(func(v []byte) error {
		var err error
		st, err = decodeOrderState(v)
		return err
	})
	return st, err == nil, err
}

// orderItem returns the queued item of order key o with the given seq,
// or with the lowest seq when seq is 0.
func orderItem(txn *badger.Txn, o string, seq uint64) (Item, bool, error) {
	var fields []byte
	if seq != 0 {
		bi, err := txn.Get(qOrderKey(o, seq))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return Item{}, false, nil
		}
		if err != nil {
			return Item{}, false, err
		}
		if fields, err = bi.ValueCopy(nil); err != nil {
			return Item{}, false, err
		}
	} else {
		opt := badger.DefaultIteratorOptions
		opt.Prefix = appendOrder(append([]byte(nil), qOrderPrefix...), o)
		opt.PrefetchSize = 1
		it := txn.NewIterator(opt)
		it.Rewind()
		if !it.Valid() {
			it.Close()
			return Item{}, false, nil
		}
		var err error
		fields, err = it.Item().ValueCopy(nil)
		it.Close()
		if err != nil {
			return Item{}, false, err
		}
	}
	key, err := keyFromFields(fields)
	if err != nil {
		return Item{}, false, err
	}
	it, found, err := getItem(txn, key)
	if err == nil && !found {
		err = fmt.Errorf("%w: order index names the missing queue item %v", ErrCorruptRecord, key)
	}
	return it, found, err
}

// fixOrder recomputes order key o's state and due entry from its items:
// at the leased item's lease expiry while one is leased, else at the
// lowest-seq item's DueAt; no state at all when it has no queued item.
func (s *BadgerStore) fixOrder(txn *badger.Txn, o string) error {
	st, found, err := getOrderState(txn, o)
	if err != nil {
		return err
	}
	next := orderState{}
	if found && st.leasedSeq != 0 {
		l, ok, err := orderItem(txn, o, st.leasedSeq)
		if err != nil {
			return err
		}
		if ok && l.State == ItemLeased {
			next = orderState{due: l.LeaseExpiry, leasedSeq: l.Seq}
		}
	}
	if next.leasedSeq == 0 {
		head, ok, err := orderItem(txn, o, 0)
		if err != nil {
			return err
		}
		if !ok {
			if found {
				if err := txn.Delete(qDueKey(st.due, o)); err != nil {
					return err
				}
				return txn.Delete(qStateKey(o))
			}
			return nil
		}
		next.due = head.DueAt
		// A due entry is never written in the past (Lease's scan floor
		// relies on it, see dueFrom): a head due earlier is due now, unless
		// the order key's entry already says it is due.
		if now := s.now(); next.due.Before(now) {
			if found && st.leasedSeq == 0 && !st.due.After(now) {
				next.due = st.due
			} else {
				next.due = now
			}
		}
	}
	if found && next == st {
		return nil
	}
	if found && !next.due.Equal(st.due) {
		if err := txn.Delete(qDueKey(st.due, o)); err != nil {
			return err
		}
	}
	if q, err := s.queue(); err == nil {
		q.noteDue(next.due)
	}
	if err := txn.Set(qDueKey(next.due, o), nil); err != nil {
		return err
	}
	return txn.Set(qStateKey(o), next.value())
}

// Lease implements Queue.
func (s *BadgerStore) Lease(ctx context.Context, max int, lease time.Duration) ([]Item, error) {
	if err := ValidateLease(max, lease); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q, unlock, err := s.qop()
	if err != nil {
		return nil, err
	}
	defer unlock()
	var orders []string
	now := s.now()
	from := q.dueFrom(now)
	if err := s.view("lease", func(txn *badger.Txn) error {
		var first time.Time
		var err error
		orders, first, err = dueOrders(txn, from, now, max)
		if err == nil {
			q.noteScan(from, now, first)
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("idempotency: lease: %w", err)
	}
	// One transaction per order key: an enqueue into one customer only
	// makes that customer's lease run again.
	var out []Item
	for _, o := range orders {
		var it Item
		var ok bool
		unlockOrder := q.lockOrder(o)
		err := s.update(ctx, Key{}, "lease", func(txn *badger.Txn) error {
			var err error
			it, ok, err = s.leaseOrder(txn, o, s.now(), lease)
			return err
		})
		unlockOrder()
		if err != nil {
			return out, err
		}
		if ok {
			out = append(out, it)
		}
	}
	return out, nil
}

// dueOrders lists up to max order keys whose due entry is not after now,
// scanning the due index from the entries due at from on (from the start
// when from is zero), and returns the due time of the first entry it saw
// (zero if none).
func dueOrders(txn *badger.Txn, from, now time.Time, max int) ([]string, time.Time, error) {
	opt := badger.DefaultIteratorOptions
	opt.PrefetchValues = false
	opt.Prefix = qDuePrefix
	it := txn.NewIterator(opt)
	defer it.Close()
	limit := appendTime(append([]byte(nil), qDuePrefix...), now)
	if from.IsZero() {
		it.Rewind()
	} else {
		it.Seek(appendTime(append([]byte(nil), qDuePrefix...), from))
	}
	var orders []string
	var first time.Time
	for ; it.Valid() && len(orders) < max; it.Next() {
		k := it.Item().Key()
		if len(k) < len(limit) {
			return nil, first, fmt.Errorf("%w: bad due index key", ErrCorruptRecord)
		}
		if first.IsZero() {
			first = readTime(k[len(qDuePrefix):])
		}
		if bytes.Compare(k[:len(limit)], limit) > 0 {
			break
		}
		rest := k[len(limit):]
		n, w := uvarint(rest)
		if w <= 0 || n != uint64(len(rest)-w) {
			return nil, first, fmt.Errorf("%w: bad due index key", ErrCorruptRecord)
		}
		orders = append(orders, string(rest[w:]))
	}
	return orders, first, nil
}

// leaseOrder leases order key o's next item if it may: it takes over an
// expired lease, then leases the lowest-seq item when it is due.
func (s *BadgerStore) leaseOrder(txn *badger.Txn, o string, now time.Time, lease time.Duration) (Item, bool, error) {
	st, found, err := getOrderState(txn, o)
	if err != nil || !found {
		return Item{}, false, err
	}
	if st.leasedSeq != 0 {
		l, ok, err := orderItem(txn, o, st.leasedSeq)
		if err != nil {
			return Item{}, false, err
		}
		if ok && l.State == ItemLeased && l.LeaseExpiry.After(now) {
			return Item{}, false, s.fixOrder(txn, o)
		}
		if ok && l.State == ItemLeased {
			// The holder's lease ended: the item is pending again (still
			// due) and is leased below if it is the order key's first.
			l.State = ItemPending
			if err := s.putItem(txn, &l, 0); err != nil {
				return Item{}, false, err
			}
		}
		st.leasedSeq = 0
		if err := txn.Set(qStateKey(o), st.value()); err != nil {
			return Item{}, false, err
		}
	}
	head, ok, err := orderItem(txn, o, 0)
	if err != nil {
		return Item{}, false, err
	}
	if !ok || head.DueAt.After(now) {
		return Item{}, false, s.fixOrder(txn, o)
	}
	head.State = ItemLeased
	head.Attempts++
	head.LeaseToken = newToken(head.LeaseToken)
	head.LeaseExpiry = now.Add(lease)
	if err := s.putItem(txn, &head, 0); err != nil {
		return Item{}, false, err
	}
	if err := txn.Set(qStateKey(o), orderState{due: st.due, leasedSeq: head.Seq}.value()); err != nil {
		return Item{}, false, err
	}
	if err := s.fixOrder(txn, o); err != nil {
		return Item{}, false, err
	}
	bi, err := txn.Get(qKey(qBodyPrefix, head.Key))
	if err != nil {
		return Item{}, false, fmt.Errorf("queue item %v: payload: %w", head.Key, err)
	}
	if head.Payload, err = bi.ValueCopy(nil); err != nil {
		return Item{}, false, err
	}
	head.HasPayload = true
	return head, true, nil
}

// settle runs fn on the item that ref holds leased, in a transaction,
// after which the queue count moves by delta; it waits for the group
// commit.
func (s *BadgerStore) settle(ctx context.Context, op string, ref ItemRef, delta int64, fn func(txn *badger.Txn, it *Item, now time.Time) error) error {
	if err := ValidateRef(ref); err != nil {
		return err
	}
	q, unlock, err := s.qop()
	if err != nil {
		return err
	}
	unlockOrder := q.lockOrder(ref.OrderKey)
	err = s.update(ctx, ref.Key, op, func(txn *badger.Txn) error {
		it, ok, err := getItem(txn, ref.Key)
		if err != nil {
			return err
		}
		if !ok || it.State != ItemLeased || it.LeaseToken != ref.Token || it.OrderKey != ref.OrderKey {
			return ErrLeaseLost
		}
		return fn(txn, &it, s.now())
	})
	unlockOrder()
	if err == nil {
		q.queued.Add(delta)
	}
	unlock()
	if err != nil {
		return err
	}
	return s.durable(ctx, op, ref.Key)
}

// finish makes a leased item final: its record kept for retention, its
// payload deleted (keep 0) or kept for keep.
func (s *BadgerStore) finish(txn *badger.Txn, it *Item, now time.Time, state ItemState, status int, reason string, keep, retention time.Duration) error {
	it.State = state
	it.FinishedAt = now
	it.LastStatus = status
	it.LastReason = reason
	if err := s.putItem(txn, it, retention); err != nil {
		return err
	}
	bk := qKey(qBodyPrefix, it.Key)
	if keep == 0 {
		if err := txn.Delete(bk); err != nil {
			return err
		}
	} else {
		bi, err := txn.Get(bk)
		if err != nil {
			return fmt.Errorf("queue item %v: payload: %w", it.Key, err)
		}
		p, err := bi.ValueCopy(nil)
		if err != nil {
			return err
		}
		if err := txn.SetEntry(newEntry(bk, p, keep)); err != nil {
			return err
		}
		if err := txn.SetEntry(newEntry(qKey(qDeadPrefix, it.Key), nil, keep)); err != nil {
			return err
		}
	}
	if err := noteFinished(txn, it, state, keep, retention); err != nil {
		return err
	}
	return s.unlinkItem(txn, it)
}

// finEntry is one API's entry in an order key's finished record: the
// highest seq of its items delivered or business_rejected.
type finEntry struct {
	api string
	seq uint64
}

// finRecord is an order key's finished record (q 8 O): its entries, and
// until when a dead letter of the order key keeps its payload. Its value
// is deadUntil (Unix nanoseconds, 8 bytes big-endian, 0 for none), then per API a
// uvarint length, the API and the seq (8 bytes, big-endian).
type finRecord struct {
	deadUntil time.Time
	entries   []finEntry
}

func qFinKey(o string) []byte { return appendOrder(append([]byte(nil), qFinPrefix...), o) }

// getFinished reads order key o's finished record and its expiry (zero
// when absent).
func getFinished(txn *badger.Txn, o string) (finRecord, time.Time, error) {
	bi, err := txn.Get(qFinKey(o))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return finRecord{}, time.Time{}, nil
	}
	if err != nil {
		return finRecord{}, time.Time{}, err
	}
	var r finRecord
	err = bi.Value(func(v []byte) error {
		bad := fmt.Errorf("%w: bad finished record of an order key", ErrCorruptRecord)
		if len(v) < 8 {
			return bad
		}
		r.deadUntil = readTime(v)
		for v = v[8:]; len(v) > 0; {
			api, w, err := readString(v, MaxKeyFieldLen)
			if err != nil || len(v)-w < 8 {
				return bad
			}
			r.entries = append(r.entries, finEntry{api: api, seq: binary.BigEndian.Uint64(v[w:])})
			v = v[w+8:]
		}
		return nil
	})
	return r, time.Unix(int64(bi.ExpiresAt()), 0), err
}

// noteFinished keeps the finished record of it's order key up to date as
// it becomes final, so that Redeliver can tell, in its own transaction,
// that a later item was delivered or rejected: item records have no index
// by order key once they leave the queue.
//
// A delivered or business_rejected item raises its API's seq. The record
// must outlive every dead letter it protects (an earlier item of the
// order key that still keeps its payload), and should not outlive the
// finished items it names by much: it lasts at least the finished item's
// retention (as long as the item's own record, so the store refuses what
// a scan of the items shows) and at least until the order key's dead
// letters' payloads expire (deadUntil, which each dead letter raises to
// its keep), whatever the retentions each call was given. It is one small
// record per order key, gone once both have passed.
func noteFinished(txn *badger.Txn, it *Item, state ItemState, keep, retention time.Duration) error {
	r, exp, err := getFinished(txn, it.OrderKey)
	if err != nil {
		return err
	}
	now := time.Now() // Badger's expiry (exp) is on the wall clock, not BadgerOptions.Now
	ttl := retention
	if state == ItemDead {
		ttl = keep
		if until := now.Add(keep); until.After(r.deadUntil) {
			r.deadUntil = until
		}
	} else {
		i := slices.IndexFunc(r.entries, func(e finEntry) bool { return e.api == it.Key.API })
		switch {
		case i < 0:
			r.entries = append(r.entries, finEntry{api: it.Key.API, seq: it.Seq})
		case r.entries[i].seq < it.Seq:
			r.entries[i].seq = it.Seq
		}
	}
	ttl = max(ttl, exp.Sub(now), r.deadUntil.Sub(now))
	v := appendTime(nil, r.deadUntil) // 0: no dead letter
	for _, e := range r.entries {
		v = binary.BigEndian.AppendUint64(appendOrder(v, e.api), e.seq)
	}
	return txn.SetEntry(newEntry(qFinKey(it.OrderKey), v, ttl))
}

// overtaken reports whether a later item of it's order key, of one of
// the APIs in overtakers, is leased, delivered or business_rejected.
func overtaken(txn *badger.Txn, it *Item, overtakers []string) (bool, error) {
	st, found, err := getOrderState(txn, it.OrderKey)
	if err != nil {
		return false, err
	}
	if found && st.leasedSeq > it.Seq {
		l, ok, err := orderItem(txn, it.OrderKey, st.leasedSeq)
		if err != nil {
			return false, err
		}
		if ok && l.State == ItemLeased && slices.Contains(overtakers, l.Key.API) {
			return true, nil
		}
	}
	r, _, err := getFinished(txn, it.OrderKey)
	if err != nil {
		return false, err
	}
	for _, e := range r.entries {
		if e.seq > it.Seq && slices.Contains(overtakers, e.api) {
			return true, nil
		}
	}
	return false, nil
}

// Ack implements Queue.
func (s *BadgerStore) Ack(ctx context.Context, ref ItemRef, status int, retention time.Duration) error {
	if err := ValidateOutcome(status, "", retention); err != nil {
		return err
	}
	return s.settle(ctx, "ack", ref, -1, func(txn *badger.Txn, it *Item, now time.Time) error {
		return s.finish(txn, it, now, ItemDelivered, status, "", 0, retention)
	})
}

// Reject implements Queue.
func (s *BadgerStore) Reject(ctx context.Context, ref ItemRef, status int, retention time.Duration) error {
	if err := ValidateOutcome(status, "", retention); err != nil {
		return err
	}
	return s.settle(ctx, "reject", ref, -1, func(txn *badger.Txn, it *Item, now time.Time) error {
		return s.finish(txn, it, now, ItemBusinessRejected, status, "", 0, retention)
	})
}

// DeadLetter implements Queue.
func (s *BadgerStore) DeadLetter(ctx context.Context, ref ItemRef, status int, reason string, keep, retention time.Duration) error {
	if err := ValidateOutcome(status, reason, keep, retention); err != nil {
		return err
	}
	if keep > retention {
		return fmt.Errorf("%w: payload kept %v longer than the record's retention %v", ErrInvalidArgument, keep, retention)
	}
	return s.settle(ctx, "dead-letter", ref, -1, func(txn *badger.Txn, it *Item, now time.Time) error {
		return s.finish(txn, it, now, ItemDead, status, reason, keep, retention)
	})
}

// Retry implements Queue.
func (s *BadgerStore) Retry(ctx context.Context, ref ItemRef, after time.Duration, status int, reason string) error {
	if err := ValidateOutcome(status, reason); err != nil {
		return err
	}
	if after < 0 {
		return fmt.Errorf("%w: negative pause %v", ErrInvalidArgument, after)
	}
	return s.settle(ctx, "retry", ref, 0, func(txn *badger.Txn, it *Item, now time.Time) error {
		it.State = ItemPending
		it.DueAt = now.Add(after)
		it.LastStatus = status
		it.LastReason = reason
		if err := s.putItem(txn, it, 0); err != nil {
			return err
		}
		return s.fixOrder(txn, it.OrderKey)
	})
}

// Unlease implements Queue.
func (s *BadgerStore) Unlease(ctx context.Context, ref ItemRef) error {
	return s.settle(ctx, "unlease", ref, 0, func(txn *badger.Txn, it *Item, now time.Time) error {
		it.State = ItemPending
		if it.Attempts > 0 {
			it.Attempts--
		}
		if err := s.putItem(txn, it, 0); err != nil {
			return err
		}
		return s.fixOrder(txn, it.OrderKey)
	})
}

// Redeliver implements Queue.
func (s *BadgerStore) Redeliver(ctx context.Context, key Key, overtakers ...string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	q, unlock, err := s.qop()
	if err != nil {
		return err
	}
	// The item's order key (which never changes) names the stripe lock.
	var orderKey string
	err = s.view("redeliver", func(txn *badger.Txn) error {
		it, ok, err := getItem(txn, key)
		orderKey = it.OrderKey
		if err == nil && !ok {
			err = ErrItemNotFound
		}
		return err
	})
	if err != nil {
		unlock()
		if errors.Is(err, ErrItemNotFound) || errors.Is(err, ErrCorruptRecord) {
			return err
		}
		return fmt.Errorf("idempotency: redeliver %v: %w", key, err)
	}
	unlockOrder := q.lockOrder(orderKey)
	err = s.update(ctx, key, "redeliver", func(txn *badger.Txn) error {
		it, ok, err := getItem(txn, key)
		switch {
		case err != nil:
			return err
		case !ok:
			return ErrItemNotFound
		case it.State != ItemDead:
			return ErrNotDeadLetter
		}
		if len(overtakers) > 0 {
			over, err := overtaken(txn, &it, overtakers)
			if err != nil {
				return err
			}
			if over {
				return ErrOvertaken
			}
		}
		bk := qKey(qBodyPrefix, key)
		bi, err := txn.Get(bk)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrPayloadExpired
		}
		if err != nil {
			return err
		}
		p, err := bi.ValueCopy(nil)
		if err != nil {
			return err
		}
		now := s.now()
		it.State = ItemPending
		it.Attempts = 0
		it.RedeliveredAt = now
		it.DueAt = now
		it.FinishedAt = time.Time{}
		if err := s.putItem(txn, &it, 0); err != nil {
			return err
		}
		if err := txn.Set(bk, p); err != nil {
			return err
		}
		if err := txn.Delete(qKey(qDeadPrefix, key)); err != nil {
			return err
		}
		return s.linkItem(txn, &it)
	})
	unlockOrder()
	if err == nil {
		q.queued.Add(1)
	}
	unlock()
	if err != nil {
		return err
	}
	return s.durable(ctx, "redeliver", key)
}

// RedeliverDead implements Queue.
func (s *BadgerStore) RedeliverDead(ctx context.Context) (int, error) {
	var keys []Key
	if err := s.qview(ctx, func(txn *badger.Txn) error {
		opt := badger.DefaultIteratorOptions
		opt.PrefetchValues = false
		opt.Prefix = qDeadPrefix
		it := txn.NewIterator(opt)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k, err := keyFromFields(it.Item().Key()[len(qDeadPrefix):])
			if err != nil {
				return err
			}
			keys = append(keys, k)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		err := s.Redeliver(ctx, k)
		switch {
		case err == nil:
			n++
		case errors.Is(err, ErrNotDeadLetter), errors.Is(err, ErrPayloadExpired), errors.Is(err, ErrItemNotFound):
			// Redelivered or expired meanwhile.
		default:
			return n, err
		}
	}
	return n, nil
}

// qview runs fn in a read-only transaction of the open store.
func (s *BadgerStore) qview(ctx context.Context, fn func(txn *badger.Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.ops.Done()
	if err := s.failure(); err != nil {
		return err
	}
	if err := s.view("queue", fn); err != nil {
		if errors.Is(err, ErrCorruptRecord) {
			return err
		}
		return fmt.Errorf("idempotency: queue: %w", err)
	}
	return nil
}

func hasPayload(txn *badger.Txn, key Key) (bool, error) {
	_, err := txn.Get(qKey(qBodyPrefix, key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Item implements Queue.
func (s *BadgerStore) Item(ctx context.Context, key Key) (Item, bool, error) {
	if err := ValidateKey(key); err != nil {
		return Item{}, false, err
	}
	var it Item
	var found bool
	err := s.qview(ctx, func(txn *badger.Txn) error {
		var err error
		if it, found, err = getItem(txn, key); err != nil || !found {
			return err
		}
		it.HasPayload, err = hasPayload(txn, key)
		return err
	})
	return it, found, err
}

// ScanItems implements Queue: one consistent snapshot.
func (s *BadgerStore) ScanItems(ctx context.Context, fn func(Item) bool) error {
	return s.qview(ctx, func(txn *badger.Txn) error {
		opt := badger.DefaultIteratorOptions
		opt.Prefix = qItemPrefix
		iter := txn.NewIterator(opt)
		defer iter.Close()
		for iter.Rewind(); iter.Valid(); iter.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			bi := iter.Item()
			key, err := keyFromFields(bi.Key()[len(qItemPrefix):])
			if err != nil {
				return err
			}
			it, err := itemFrom(bi, key)
			if err != nil {
				return err
			}
			if it.HasPayload, err = hasPayload(txn, key); err != nil {
				return err
			}
			if !fn(it) {
				return nil
			}
		}
		return nil
	})
}

// QueueStats implements Queue: the count is kept in memory, the oldest is
// the first entry of the arrival index, the dead letters are counted.
func (s *BadgerStore) QueueStats(ctx context.Context) (QueueStats, error) {
	var st QueueStats
	err := s.qview(ctx, func(txn *badger.Txn) error {
		q, err := s.queue()
		if err != nil {
			return err
		}
		st.Queued = q.queued.Load()
		opt := badger.DefaultIteratorOptions
		opt.Prefix = qArrivePrefix
		opt.PrefetchSize = 1
		it := txn.NewIterator(opt)
		it.Rewind()
		var fields []byte
		if it.Valid() {
			fields, err = it.Item().ValueCopy(nil)
		}
		it.Close()
		if err != nil {
			return err
		}
		if fields != nil {
			key, err := keyFromFields(fields)
			if err != nil {
				return err
			}
			item, ok, err := getItem(txn, key)
			if err != nil {
				return err
			}
			if ok {
				st.Oldest = item.EnqueuedAt
			}
		}
		opt = badger.DefaultIteratorOptions
		opt.PrefetchValues = false
		opt.Prefix = qDeadPrefix
		dit := txn.NewIterator(opt)
		defer dit.Close()
		for dit.Rewind(); dit.Valid(); dit.Next() {
			st.Dead++
		}
		return nil
	})
	return st, err
}
