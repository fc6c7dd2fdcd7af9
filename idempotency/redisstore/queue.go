package redisstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// The queue (idempotency.Queue) on Redis.
//
// The queue is split into QueueShards shards; an order key always goes to
// the same one (FNV-1a of the order key), and one script changes its
// items, its set and its entries in the shard's indexes atomically. Under
// the shard's base name <prefix>q{<n>}:
//
//	i:<K>      item (HASH, fields in queue_scripts.go); TTL once final
//	b:<K>      payload (STRING); deleted when delivered or rejected, TTL when dead
//	o:<O>      the order key's queued items (ZSET member K, score seq)
//	s          seq counter (INCR)
//	due        order keys by when they are next leasable (ZSET, µs)
//	l          the leased item of each order key (HASH O -> K)
//	a          queued items by arrival (ZSET K, µs): depth and oldest
//	d          dead letters that keep their payload (ZSET K, payload expiry µs)
//	f:<O>      the order key's finished items: per API (escaped), the
//	           highest seq delivered or business_rejected, and ':dead',
//	           until when its dead letters keep their payload (HASH; TTL,
//	           as the Badger store's finished record, noteFinished)
//
// K is the record key's fields (<ClientID>:<API>:<RequestID>, escaped as in
// record keys), O the order key escaped the same way.
//
// Enqueue writes the item and completes the claim in one script (and,
// with Options.WaitAOF or WaitReplicas, its wait in the same pipeline):
// the record and the item are written together or not at all, so a
// failover can lose both (the provider's resend claims again) but never
// the item of a record that replays S. That needs the record and the
// shard's keys on one server: a single server or a Sentinel-managed
// primary. On a Cluster they are in different slots (the record's slot
// follows the request, the shard's the customer), on different primaries
// whose failovers are independent, so the queue is refused there
// (ErrQueueUnsupported, QueueSupported). The bound is checked against
// the total of the shards' depths, read at most a second before (and at
// once when the last reading was within a tenth of the bound), so a fleet
// may overshoot it by what it enqueues in that second.
const QueueShards = 16

// queueState is the store's cached queue depth for the bound.
type queueState struct {
	mu    sync.Mutex
	count int64     // total depth at the last reading
	at    time.Time // when it was read (zero: never)
	added int64     // enqueued here since

	nextShard int // the shard Lease starts with next
}

// boundFresh is how long a reading of the depth is used for the bound.
const boundFresh = time.Second

func shardOf(orderKey string) int {
	h := fnv.New32a()
	h.Write([]byte(orderKey))
	return int(h.Sum32() % QueueShards)
}

func (s *Store) shardBase(n int) string {
	return s.prefix + "q{" + strconv.Itoa(n) + "}:"
}

// member is the key's fields as a queue member name.
func member(k idempotency.Key) string {
	return strings.TrimPrefix(recordKey("", k), recordMarker)
}

func escapeOrder(o string) string { return string(appendField(nil, o)) }

var _ idempotency.Queue = (*Store)(nil)

// evalRun runs a script (EVALSHA, then EVAL when the server lost it) and
// notes the local times around it.
func (s *Store) evalRun(ctx context.Context, sc *redis.Script, keys []string, args ...any) (v any, sent, recv time.Time, err error) {
	sent = s.clock.now()
	v, err = sc.Run(ctx, s.client, keys, args...).Result()
	recv = s.clock.now()
	return v, sent, recv, err
}

// ErrQueueUnsupported is returned by Enqueue (and QueueSupported) when
// the store reaches Redis through a client that may put the dedupe
// record and the queue item on different servers (a Cluster or a Ring):
// enqueueing could not be atomic there. The gateway's configuration
// should refuse the inbox with such a store.
var ErrQueueUnsupported = errors.New("redisstore: the inbox queue needs a single Redis server or a Sentinel-managed primary (the dedupe record and the queue item must be written by one script), not a Cluster")

// QueueSupported returns nil when the store can queue (its client talks
// to one server: a URL, Sentinel, or a *redis.Client given as
// Options.Client), else an error wrapping ErrQueueUnsupported.
func (s *Store) QueueSupported() error {
	if _, ok := s.client.(*redis.Client); ok {
		return nil
	}
	return fmt.Errorf("%w (the client is a %T)", ErrQueueUnsupported, s.client)
}

// Enqueue implements idempotency.Queue: one script checks the claim,
// writes the item (unless one is stored for the key already) and
// completes the record, with the wait in the same pipeline.
func (s *Store) Enqueue(ctx context.Context, key idempotency.Key, token uint64, item idempotency.NewItem, opts idempotency.EnqueueOptions) error {
	if err := idempotency.ValidateKey(key); err != nil {
		return err
	}
	if err := idempotency.ValidateNewItem(item, opts); err != nil {
		return err
	}
	if err := s.QueueSupported(); err != nil {
		return err
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	if opts.MaxQueued > 0 {
		if err := s.checkBound(ctx, opts.MaxQueued); err != nil {
			return err
		}
	}
	base, m, o := s.shardBase(shardOf(item.OrderKey)), member(key), escapeOrder(item.OrderKey)
	keys := []string{recordKey(s.prefix, key), base + "i:" + m, base + "b:" + m, base + "o:" + o, base + "s", base + "a", base + "due", base + "l"}
	args := []any{formatHex16(token), formatHex16(newToken()), idempotency.QueuedAnswer.ResultCode, string(idempotency.QueuedAnswer.Outcome),
		strconv.Itoa(idempotency.QueuedAnswer.BackendStatus), ceilDiv(min(opts.Retention, maxDuration), time.Millisecond),
		base, m, o, item.Payload}
	v, err := s.runScript(ctx, enqueueScript, keys, args)
	if err != nil {
		return fmt.Errorf("redisstore: enqueue %v: %w", key, err)
	}
	st, a, err := replyStatus(v)
	switch {
	case err != nil:
		return fmt.Errorf("redisstore: enqueue %v: %w", key, err)
	case st == stLost:
		return idempotency.ErrLeaseLost
	case st == stCorrupt:
		return corruptError(key, a)
	case st != stOK:
		return fmt.Errorf("redisstore: enqueue %v: %w: status %q", key, errUnexpectedReply, st)
	}
	if len(a) > 1 && str(a[1]) == "queued" {
		s.q.mu.Lock()
		s.q.added++
		s.q.mu.Unlock()
	}
	return nil
}

// checkBound returns ErrQueueFull when the queue holds max items.
func (s *Store) checkBound(ctx context.Context, max int64) error {
	s.q.mu.Lock()
	est, fresh := s.q.count+s.q.added, !s.q.at.IsZero() && s.clock.now().Sub(s.q.at) < boundFresh
	s.q.mu.Unlock()
	if fresh && est < max-max/10 {
		return nil
	}
	st, err := s.stats(ctx)
	if err != nil {
		return fmt.Errorf("redisstore: reading the queue depth: %w", err)
	}
	s.q.mu.Lock()
	s.q.count, s.q.at, s.q.added = st.Queued, s.clock.now(), 0
	s.q.mu.Unlock()
	if st.Queued >= max {
		return idempotency.ErrQueueFull
	}
	return nil
}

// pipeScripts runs one script per key set in a pipeline (loading the
// script and trying once more when the server lost it).
func (s *Store) pipeScripts(ctx context.Context, sc *redis.Script, keys [][]string, args [][]any) (_ []any, sent, recv time.Time, _ error) {
	for attempt := 0; ; attempt++ {
		sent = s.clock.now()
		pipe := s.client.Pipeline()
		cmds := make([]*redis.Cmd, len(keys))
		for i := range keys {
			cmds[i] = sc.EvalSha(ctx, pipe, keys[i], args[i]...)
		}
		_, err := pipe.Exec(ctx)
		recv = s.clock.now()
		if err == nil {
			out := make([]any, len(cmds))
			for i, c := range cmds {
				out[i] = c.Val()
			}
			return out, sent, recv, nil
		}
		if attempt > 0 || !redis.HasErrorPrefix(err, "NOSCRIPT") {
			return nil, sent, recv, err
		}
		if err := sc.Load(ctx, s.client).Err(); err != nil {
			return nil, sent, recv, err
		}
	}
}

// stats sums the shards' figures (one pipeline).
func (s *Store) stats(ctx context.Context) (idempotency.QueueStats, error) {
	keys := make([][]string, QueueShards)
	args := make([][]any, QueueShards)
	for n := range QueueShards {
		base := s.shardBase(n)
		keys[n] = []string{base + "a", base + "d"}
	}
	replies, sent, recv, err := s.pipeScripts(ctx, queueStatsScript, keys, args)
	if err != nil {
		return idempotency.QueueStats{}, err
	}
	var st idempotency.QueueStats
	for _, v := range replies {
		a, ok := v.([]any)
		if !ok || len(a) != 5 {
			return st, fmt.Errorf("%w: queue stats reply %T", errUnexpectedReply, v)
		}
		now, err1 := parseMicros(str(a[0]))
		queued, ok1 := a[1].(int64)
		dead, ok2 := a[4].(int64)
		if err1 != nil || !ok1 || !ok2 {
			return st, fmt.Errorf("%w: queue stats reply", errUnexpectedReply)
		}
		st.Queued += queued
		st.Dead += dead
		if !absent(a[3]) {
			score, err := strconv.ParseFloat(str(a[3]), 64)
			if err != nil {
				return st, fmt.Errorf("%w: queue stats score", errUnexpectedReply)
			}
			off := s.clock.observe(sent, recv, now)
			t := time.UnixMicro(int64(score)).Add(off)
			if st.Oldest.IsZero() || t.Before(st.Oldest) {
				st.Oldest = t
			}
		}
	}
	return st, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// QueueStats implements idempotency.Queue.
func (s *Store) QueueStats(ctx context.Context) (idempotency.QueueStats, error) {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return idempotency.QueueStats{}, err
	}
	defer end()
	st, err := s.stats(ctx)
	if err != nil {
		return st, fmt.Errorf("redisstore: queue stats: %w", err)
	}
	return st, nil
}

// Lease implements idempotency.Queue: it asks the shards in turn, from
// one that moves on with every call, until it has max items.
func (s *Store) Lease(ctx context.Context, max int, lease time.Duration) ([]idempotency.Item, error) {
	if err := idempotency.ValidateLease(max, lease); err != nil {
		return nil, err
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	s.q.mu.Lock()
	first := s.q.nextShard
	s.q.nextShard = (s.q.nextShard + 1) % QueueShards
	s.q.mu.Unlock()
	var out []idempotency.Item
	for i := range QueueShards {
		base := s.shardBase((first + i) % QueueShards)
		want := max - len(out)
		args := []any{base, want, ceilDiv(lease, time.Microsecond)}
		for range want {
			args = append(args, formatHex16(newToken()))
		}
		v, sent, recv, err := s.evalRun(ctx, leaseScript, []string{base + "due", base + "l"}, args...)
		if err != nil {
			return out, fmt.Errorf("redisstore: lease: %w", err)
		}
		st, a, err := replyStatus(v)
		if err != nil || st != stOK || len(a) < 2 {
			return out, fmt.Errorf("redisstore: lease: %w", errors.Join(err, errUnexpectedReply))
		}
		now, err := parseMicros(str(a[1]))
		if err != nil {
			return out, fmt.Errorf("redisstore: lease: %w: server time", errUnexpectedReply)
		}
		off := s.clock.observe(sent, recv, now)
		for _, x := range a[2:] {
			it, err := decodeItem(x, off)
			if err != nil {
				return out, fmt.Errorf("redisstore: lease: %w", err)
			}
			out = append(out, it)
		}
		if len(out) == max {
			break
		}
	}
	return out, nil
}

// decodeItem parses an item reply (see queue_scripts.go), moving its times
// by off to the local clock.
func decodeItem(v any, off time.Duration) (idempotency.Item, error) {
	a, ok := v.([]any)
	if !ok || len(a) != 17 {
		return idempotency.Item{}, fmt.Errorf("%w: item reply %T", errUnexpectedReply, v)
	}
	m := str(a[0])
	key, err := decodeRecordKey("", recordMarker+m)
	if err != nil {
		return idempotency.Item{}, err
	}
	corrupt := func(what string) error {
		return fmt.Errorf("queue item %v: %w: %s", key, idempotency.ErrCorruptRecord, what)
	}
	f := a[1:14]
	if str(f[0]) != "1" {
		return idempotency.Item{}, corrupt("unknown format version")
	}
	it := idempotency.Item{Key: key}
	state, err := strconv.Atoi(str(f[1]))
	if err != nil || state < int(idempotency.ItemPending) || state > int(idempotency.ItemDead) {
		return it, corrupt("bad state")
	}
	it.State = idempotency.ItemState(state)
	if it.OrderKey, err = unescapeField(str(f[2])); err != nil || it.OrderKey == "" {
		return it, corrupt("bad order key")
	}
	if it.Seq, err = strconv.ParseUint(str(f[3]), 10, 64); err != nil || it.Seq == 0 {
		return it, corrupt("bad seq")
	}
	optTime := func(x any, t *time.Time) error {
		if absent(x) {
			return nil
		}
		v, err := parseMicros(str(x))
		if err != nil {
			return err
		}
		*t = v.Add(off)
		return nil
	}
	if err := errors.Join(optTime(f[4], &it.EnqueuedAt), optTime(f[5], &it.RedeliveredAt), optTime(f[6], &it.DueAt),
		optTime(f[9], &it.LeaseExpiry), optTime(f[12], &it.FinishedAt)); err != nil || it.EnqueuedAt.IsZero() || it.DueAt.IsZero() {
		return it, corrupt("bad times")
	}
	if it.Attempts, err = strconv.Atoi(str(f[7])); err != nil || it.Attempts < 0 {
		return it, corrupt("bad attempts")
	}
	if !absent(f[8]) {
		if it.LeaseToken, ok = parseHex16(str(f[8])); !ok {
			return it, corrupt("bad lease token")
		}
	}
	if it.LastStatus, err = strconv.Atoi(str(f[10])); err != nil || it.LastStatus < 0 || it.LastStatus > 999 {
		return it, corrupt("bad status")
	}
	it.LastReason = str(f[11])
	pttl, err := strconv.ParseInt(str(a[14]), 10, 64)
	if err != nil {
		return it, fmt.Errorf("%w: item TTL", errUnexpectedReply)
	}
	if pttl >= 0 {
		it.ExpiresAt = time.Now().Add(time.Duration(pttl) * time.Millisecond)
	}
	it.HasPayload = str(a[15]) == "1"
	if p, ok := a[16].(string); ok {
		it.Payload = []byte(p)
	}
	return it, nil
}

// settle runs the settle script for ref.
func (s *Store) settle(ctx context.Context, ref idempotency.ItemRef, mode string, status int, reason string, dur, retention string) error {
	if err := idempotency.ValidateRef(ref); err != nil {
		return err
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	base, m, o := s.shardBase(shardOf(ref.OrderKey)), member(ref.Key), escapeOrder(ref.OrderKey)
	keys := []string{base + "i:" + m, base + "b:" + m, base + "l", base + "a", base + "d", base + "o:" + o, base + "f:" + o}
	args := []any{base, m, o, formatHex16(ref.Token), mode, strconv.Itoa(status), reason, dur, retention, escapeOrder(ref.Key.API)}
	var v any
	if s.waitTimeout > 0 && mode != "unlease" {
		v, err = s.scriptAndWait(ctx, settleScript, keys, args)
	} else {
		v, err = settleScript.Run(ctx, s.client, keys, args...).Result()
	}
	if err != nil {
		return fmt.Errorf("redisstore: %s %v: %w", mode, ref.Key, err)
	}
	st, _, err := replyStatus(v)
	switch {
	case err != nil:
		return fmt.Errorf("redisstore: %s %v: %w", mode, ref.Key, err)
	case st == stOK:
		return nil
	case st == stLost:
		return idempotency.ErrLeaseLost
	}
	return fmt.Errorf("redisstore: %s %v: %w: status %q", mode, ref.Key, errUnexpectedReply, st)
}

// Ack implements idempotency.Queue.
func (s *Store) Ack(ctx context.Context, ref idempotency.ItemRef, status int, retention time.Duration) error {
	if err := idempotency.ValidateOutcome(status, "", retention); err != nil {
		return err
	}
	return s.settle(ctx, ref, "ack", status, "", "0", ceilDiv(min(retention, maxDuration), time.Millisecond))
}

// Reject implements idempotency.Queue.
func (s *Store) Reject(ctx context.Context, ref idempotency.ItemRef, status int, retention time.Duration) error {
	if err := idempotency.ValidateOutcome(status, "", retention); err != nil {
		return err
	}
	return s.settle(ctx, ref, "reject", status, "", "0", ceilDiv(min(retention, maxDuration), time.Millisecond))
}

// DeadLetter implements idempotency.Queue.
func (s *Store) DeadLetter(ctx context.Context, ref idempotency.ItemRef, status int, reason string, keep, retention time.Duration) error {
	if err := idempotency.ValidateOutcome(status, reason, keep, retention); err != nil {
		return err
	}
	if keep > retention {
		return fmt.Errorf("%w: payload kept %v longer than the record's retention %v", idempotency.ErrInvalidArgument, keep, retention)
	}
	return s.settle(ctx, ref, "dead", status, reason, ceilDiv(min(keep, maxDuration), time.Millisecond), ceilDiv(min(retention, maxDuration), time.Millisecond))
}

// Retry implements idempotency.Queue.
func (s *Store) Retry(ctx context.Context, ref idempotency.ItemRef, after time.Duration, status int, reason string) error {
	if err := idempotency.ValidateOutcome(status, reason); err != nil {
		return err
	}
	if after < 0 {
		return fmt.Errorf("%w: negative pause %v", idempotency.ErrInvalidArgument, after)
	}
	return s.settle(ctx, ref, "retry", status, reason, ceilDiv(min(after, maxDuration), time.Microsecond), "0")
}

// Unlease implements idempotency.Queue.
func (s *Store) Unlease(ctx context.Context, ref idempotency.ItemRef) error {
	return s.settle(ctx, ref, "unlease", 0, "", "0", "0")
}

// locate finds the shard holding key's item and returns the item, without
// its payload. The order key is not known here, so every shard is asked
// (one pipeline).
func (s *Store) locate(ctx context.Context, key idempotency.Key) (int, idempotency.Item, bool, error) {
	m := member(key)
	keys := make([][]string, QueueShards)
	args := make([][]any, QueueShards)
	for n := range QueueShards {
		base := s.shardBase(n)
		keys[n] = []string{base + "i:" + m}
		args[n] = []any{base, m}
	}
	replies, sent, recv, err := s.pipeScripts(ctx, getItemScript, keys, args)
	if err != nil {
		return 0, idempotency.Item{}, false, err
	}
	for n, v := range replies {
		st, a, err := replyStatus(v)
		switch {
		case err != nil:
			return 0, idempotency.Item{}, false, err
		case st == stAbsent:
			continue
		case st != stFound || len(a) != 3:
			return 0, idempotency.Item{}, false, fmt.Errorf("%w: item status %q", errUnexpectedReply, st)
		}
		now, err := parseMicros(str(a[1]))
		if err != nil {
			return 0, idempotency.Item{}, false, fmt.Errorf("%w: server time", errUnexpectedReply)
		}
		it, err := decodeItem(a[2], s.clock.observe(sent, recv, now))
		return n, it, err == nil, err
	}
	return 0, idempotency.Item{}, false, nil
}

// Item implements idempotency.Queue.
func (s *Store) Item(ctx context.Context, key idempotency.Key) (idempotency.Item, bool, error) {
	if err := idempotency.ValidateKey(key); err != nil {
		return idempotency.Item{}, false, err
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return idempotency.Item{}, false, err
	}
	defer end()
	_, it, found, err := s.locate(ctx, key)
	if err != nil {
		return idempotency.Item{}, false, fmt.Errorf("redisstore: item %v: %w", key, err)
	}
	return it, found, nil
}

// Redeliver implements idempotency.Queue.
func (s *Store) Redeliver(ctx context.Context, key idempotency.Key, overtakers ...string) error {
	if err := idempotency.ValidateKey(key); err != nil {
		return err
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	n, _, found, err := s.locate(ctx, key)
	if err != nil {
		return fmt.Errorf("redisstore: redeliver %v: %w", key, err)
	}
	if !found {
		return idempotency.ErrItemNotFound
	}
	return s.redeliverIn(ctx, n, key, overtakers)
}

func (s *Store) redeliverIn(ctx context.Context, shard int, key idempotency.Key, overtakers []string) error {
	base, m := s.shardBase(shard), member(key)
	keys := []string{base + "i:" + m, base + "b:" + m, base + "a", base + "d"}
	args := []any{base, m}
	for _, api := range overtakers {
		args = append(args, escapeOrder(api))
	}
	v, err := s.runScript(ctx, redeliverScript, keys, args)
	if err != nil {
		return fmt.Errorf("redisstore: redeliver %v: %w", key, err)
	}
	st, _, err := replyStatus(v)
	switch {
	case err != nil:
		return fmt.Errorf("redisstore: redeliver %v: %w", key, err)
	case st == stOK:
		return nil
	case st == stAbsent:
		return idempotency.ErrItemNotFound
	case st == "not_dead":
		return idempotency.ErrNotDeadLetter
	case st == "expired":
		return idempotency.ErrPayloadExpired
	case st == "overtaken":
		return idempotency.ErrOvertaken
	}
	return fmt.Errorf("redisstore: redeliver %v: %w: status %q", key, errUnexpectedReply, st)
}

// RedeliverDead implements idempotency.Queue, shard by shard.
func (s *Store) RedeliverDead(ctx context.Context) (int, error) {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer end()
	total := 0
	for n := range QueueShards {
		v, err := deadListScript.Run(ctx, s.client, []string{s.shardBase(n) + "d"}).StringSlice()
		if err != nil {
			return total, fmt.Errorf("redisstore: listing dead letters: %w", err)
		}
		for _, m := range v {
			key, err := decodeRecordKey("", recordMarker+m)
			if err != nil {
				return total, err
			}
			err = s.redeliverIn(ctx, n, key, nil)
			switch {
			case err == nil:
				total++
			case errors.Is(err, idempotency.ErrNotDeadLetter), errors.Is(err, idempotency.ErrPayloadExpired), errors.Is(err, idempotency.ErrItemNotFound):
			default:
				return total, err
			}
		}
	}
	return total, nil
}

// ScanItems implements idempotency.Queue with SCAN over the item keys (on
// every primary of a Cluster), fetching each batch with one pipeline. Like
// Scan it is not a snapshot and skips keys SCAN returns twice.
func (s *Store) ScanItems(ctx context.Context, fn func(idempotency.Item) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.ops.Done()
	nodes, err := s.scanNodes(ctx)
	if err != nil {
		return fmt.Errorf("redisstore: scan items: %w", err)
	}
	match := globEscape(s.prefix+"q{") + "*}:i:*"
	seed := maphash.MakeSeed()
	seen := map[uint64]struct{}{}
	for _, n := range nodes {
		var cursor uint64
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			rctx, cancel := context.WithTimeout(ctx, s.opTimeout)
			names, next, err := n.Scan(rctx, cursor, match, scanBatch).Result()
			cancel()
			if err != nil {
				return fmt.Errorf("redisstore: scan items: %w", err)
			}
			more, err := s.scanItemBatch(ctx, names, seed, seen, fn)
			if err != nil || !more {
				return err
			}
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	return nil
}

func (s *Store) scanItemBatch(ctx context.Context, names []string, seed maphash.Seed, seen map[uint64]struct{}, fn func(idempotency.Item) bool) (bool, error) {
	var keys [][]string
	var args [][]any
	for _, name := range names {
		h := maphash.String(seed, name)
		if _, dup := seen[h]; dup {
			continue
		}
		seen[h] = struct{}{}
		i := strings.LastIndex(name, "}:i:")
		if i < 0 {
			continue
		}
		keys = append(keys, []string{name})
		args = append(args, []any{name[:i+2], name[i+4:]})
	}
	if len(keys) == 0 {
		return true, nil
	}
	rctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	replies, sent, recv, err := s.pipeScripts(rctx, getItemScript, keys, args)
	if err != nil {
		return false, fmt.Errorf("redisstore: scan items: %w", err)
	}
	for _, v := range replies {
		st, a, err := replyStatus(v)
		if err != nil {
			return false, err
		}
		if st != stFound || len(a) != 3 {
			continue
		}
		now, err := parseMicros(str(a[1]))
		if err != nil {
			return false, fmt.Errorf("%w: server time", errUnexpectedReply)
		}
		it, err := decodeItem(a[2], s.clock.observe(sent, recv, now))
		if err != nil {
			return false, err
		}
		if !fn(it) {
			return false, nil
		}
	}
	return true, nil
}
