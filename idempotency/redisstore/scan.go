package redisstore

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// scanBatch is the COUNT hint of each SCAN round and so about how many
// records Scan fetches per pipeline.
const scanBatch = 256

// Scan implements idempotency.Store with SCAN over the keys under the
// store's prefix (on every primary of a Cluster or shard of a Ring, one
// after the other), fetching each batch's records with one pipeline of the
// get script. It is not a snapshot: a record written or deleted during the
// walk may or may not be seen. SCAN may return a key twice; Scan remembers
// a 64-bit hash of every key it passed to fn and skips repeats (8 bytes of
// memory per record, plus map overhead, for the length of the walk). fn
// runs while the store is in use, so Close waits for a running Scan; fn may
// call the store's other methods except Close. Each round trip is bounded
// by the operation timeout; the walk as a whole only by ctx.
func (s *Store) Scan(ctx context.Context, fn func(idempotency.Record) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.ops.Done()

	nodes, err := s.scanNodes(ctx)
	if err != nil {
		return fmt.Errorf("redisstore: scan: %w", err)
	}
	w := &scanWalk{
		s:     s,
		fn:    fn,
		match: globEscape(s.prefix+recordMarker) + "*",
		seed:  maphash.MakeSeed(),
		seen:  make(map[uint64]struct{}),
	}
	for _, n := range nodes {
		more, err := w.node(ctx, n)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
	return nil
}

// scanNodes returns the clients to run SCAN on: the primaries of a
// Cluster, the shards of a Ring, or the one client.
func (s *Store) scanNodes(ctx context.Context) ([]redis.Cmdable, error) {
	var (
		mu    sync.Mutex
		nodes []redis.Cmdable
	)
	collect := func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		nodes = append(nodes, c)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		if err := c.ForEachMaster(ctx, collect); err != nil {
			return nil, err
		}
	case *redis.Ring:
		if err := c.ForEachShard(ctx, collect); err != nil {
			return nil, err
		}
	default:
		nodes = append(nodes, s.client)
	}
	return nodes, nil
}

// scanWalk is the state of one Scan.
type scanWalk struct {
	s     *Store
	fn    func(idempotency.Record) bool
	match string
	seed  maphash.Seed
	seen  map[uint64]struct{}
}

// node walks the keys of one server; it returns false when fn asked to
// stop.
func (w *scanWalk) node(ctx context.Context, n redis.Cmdable) (bool, error) {
	var cursor uint64
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		names, next, err := w.scanRound(ctx, n, cursor)
		if err != nil {
			return false, fmt.Errorf("redisstore: scan: %w", err)
		}
		var fresh []string
		for _, name := range names {
			h := maphash.String(w.seed, name)
			if _, dup := w.seen[h]; !dup {
				w.seen[h] = struct{}{}
				fresh = append(fresh, name)
			}
		}
		more, err := w.records(ctx, fresh)
		if err != nil || !more {
			return false, err
		}
		if next == 0 {
			return true, nil
		}
		cursor = next
	}
}

func (w *scanWalk) scanRound(ctx context.Context, n redis.Cmdable, cursor uint64) ([]string, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, w.s.opTimeout)
	defer cancel()
	return n.Scan(ctx, cursor, w.match, scanBatch).Result()
}

// records fetches the records of names and passes them to fn in order,
// skipping keys that went away since SCAN saw them.
func (w *scanWalk) records(ctx context.Context, names []string) (bool, error) {
	if len(names) == 0 {
		return true, nil
	}
	keys := make([]idempotency.Key, len(names))
	for i, name := range names {
		k, err := decodeRecordKey(w.s.prefix, name)
		if err != nil {
			return false, fmt.Errorf("redisstore: scan: key %q: %w", name, err)
		}
		keys[i] = k
	}
	replies, sent, recv, err := w.fetch(ctx, names)
	if err != nil {
		return false, fmt.Errorf("redisstore: scan: %w", err)
	}
	for i, v := range replies {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		rec, found, err := w.s.getReply(keys[i], v, sent, recv)
		if err != nil {
			return false, err
		}
		if found && !w.fn(rec) {
			return false, nil
		}
	}
	return true, nil
}

// fetch runs the get script on each of names in one pipeline (loading the
// script first if the server lost it, e.g. after a restart). It returns
// the replies and when, on the local clock, the pipeline that gave them
// was sent and answered.
func (w *scanWalk) fetch(ctx context.Context, names []string) (_ []any, sent, recv time.Time, _ error) {
	ctx, cancel := context.WithTimeout(ctx, w.s.opTimeout)
	defer cancel()
	keys := make([][]string, len(names))
	for i, name := range names {
		keys[i] = []string{name}
	}
	return w.s.pipeScripts(ctx, getScript, keys, make([][]any, len(names)))
}

// Close implements idempotency.Store: it waits for running operations and
// closes the client if Open created it (a client given in Options.Client
// stays open). Later calls return the first call's result; every other
// method returns ErrClosed from the moment Close begins.
