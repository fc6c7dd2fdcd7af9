package redisstore_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// TestQueueConformance runs the queue suite on a real redis-server; the
// fleet cases use a second store (another gateway) on the same prefix.
func TestQueueConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{AppendOnly: true})
	storetest.RunQueue(t,
		func(t *testing.T) storetest.QueueStore { return open(t, srv, redisstore.Options{}) },
		func(t *testing.T, s storetest.QueueStore) storetest.QueueStore {
			return open(t, srv, redisstore.Options{Prefix: s.(*redisstore.Store).Prefix()})
		})
}

// TestQueueWaitReplicas runs the queue suite through Sentinel with
// WaitReplicas 1: every enqueue, settlement and redelivery waits for the
// replica in the same pipeline as its script.
func TestQueueWaitReplicas(t *testing.T) {
	const dataSecret = "queue-data-secret"
	d := redistest.StartSentinel(t, redistest.SentinelConfig{Data: redistest.Config{Password: dataSecret, AppendOnly: true}, Password: sentinelSecret})
	opts := redisstore.Options{WaitReplicas: 1, WaitReplicasTimeout: 2 * time.Second}
	storetest.RunQueue(t,
		func(t *testing.T) storetest.QueueStore { return openSentinel(t, d, dataSecret, opts) },
		func(t *testing.T, s storetest.QueueStore) storetest.QueueStore {
			o := opts
			o.Prefix = s.(*redisstore.Store).Prefix()
			return openSentinel(t, d, dataSecret, o)
		})
}

// TestQueueCluster runs the queue suite on a three-primary Redis Cluster.
// Every key of one order key's items (the items, payloads, the order key's
// set and the shard's indexes) hashes to one slot, so each queue script
// runs whole on one node; the shards of a store spread over the primaries.
func TestQueueCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	client := cluster.Client(t)
	ctx := t.Context()
	storetest.RunQueue(t,
		func(t *testing.T) storetest.QueueStore { return open(t, nil, redisstore.Options{Client: client}) },
		func(t *testing.T, s storetest.QueueStore) storetest.QueueStore {
			return open(t, nil, redisstore.Options{Client: client, Prefix: s.(*redisstore.Store).Prefix()})
		})

	s := open(t, nil, redisstore.Options{Client: client})
	const customers = 64
	for c := range customers {
		for i := range 2 {
			k := storetest.K(fmt.Sprintf("slot-%d-%d", c, i))
			cl, err := s.Claim(ctx, k, storetest.FP(1), time.Minute, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Enqueue(ctx, k, cl.Token, idempotency.NewItem{OrderKey: fmt.Sprintf("customer-%d", c), Payload: []byte("p")},
				idempotency.EnqueueOptions{Retention: time.Hour}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Group the store's queue keys by slot: each customer's keys (found
	// through its items) must share one slot with its shard's indexes.
	var names []string
	for _, n := range cluster.Nodes {
		keys, err := n.Client(0).Keys(ctx, s.Prefix()+"q{*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			t.Errorf("a cluster node holds none of the queue's keys: the shards did not spread")
		}
		names = append(names, keys...)
	}
	slots := map[string]int64{} // shard base -> slot
	for _, name := range names {
		slot, err := client.ClusterKeySlot(ctx, name).Result()
		if err != nil {
			t.Fatal(err)
		}
		var shard int
		if _, err := fmt.Sscanf(name[len(s.Prefix()):], "q{%d}", &shard); err != nil {
			t.Fatalf("queue key %q: %v", name, err)
		}
		base := fmt.Sprint(shard)
		if prev, ok := slots[base]; ok && prev != slot {
			t.Errorf("key %q of shard %s is in slot %d, the shard's other keys in %d", name, base, slot, prev)
		}
		slots[base] = slot
	}
	if len(slots) < 2 {
		t.Errorf("64 customers used %d shards", len(slots))
	}
	for c := range customers {
		it, ok, err := s.Item(ctx, storetest.K(fmt.Sprintf("slot-%d-0", c)))
		it2, ok2, err2 := s.Item(ctx, storetest.K(fmt.Sprintf("slot-%d-1", c)))
		if err != nil || err2 != nil || !ok || !ok2 || it.Seq >= it2.Seq || it.OrderKey != it2.OrderKey {
			t.Fatalf("customer %d: items %+v %+v (%v %v)", c, it, it2, err, err2)
		}
	}
}

// TestQueuedReplayNeedsDurability: with WaitReplicas, an enqueue whose
// wait is not confirmed reports it (the gateway answers U), and the
// provider's resend does not replay S from the record it left: its Claim
// waits for the record's durability again and fails the same way, until
// the wait can be confirmed.
func TestQueuedReplayNeedsDurability(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{AppendOnly: true})
	waiting := open(t, srv, redisstore.Options{WaitReplicas: 1, WaitReplicasTimeout: 50 * time.Millisecond})
	ctx := t.Context()
	k := storetest.K("unconfirmed-enqueue")
	c, err := waiting.Claim(ctx, k, storetest.FP(1), time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	err = waiting.Enqueue(ctx, k, c.Token, idempotency.NewItem{OrderKey: "o", Payload: []byte("p")}, idempotency.EnqueueOptions{Retention: time.Hour})
	if !errors.Is(err, redisstore.ErrUnconfirmed) {
		t.Fatalf("Enqueue on a primary without the replica WaitReplicas asks for = %v, want ErrUnconfirmed", err)
	}
	res, err := waiting.Claim(ctx, k, storetest.FP(1), time.Minute, time.Hour)
	if !errors.Is(err, redisstore.ErrUnconfirmed) {
		t.Fatalf("the resend's Claim = %v, %v: want ErrUnconfirmed (never a replay of an unconfirmed queued record)", res.Status, err)
	}
	// A store without a wait replays it (the server's persistence is all
	// it promises), as does any done record that is not queued.
	plain := open(t, srv, redisstore.Options{Prefix: waiting.Prefix()})
	if res, err := plain.Claim(ctx, k, storetest.FP(1), time.Minute, time.Hour); err != nil || res.Status != idempotency.Done {
		t.Fatalf("Claim without a wait = %v, %v; want Done", res.Status, err)
	}
}
