package redisstore_test

import (
	"errors"
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

// TestQueueCluster: on a Redis Cluster the dedupe record and the queue
// item would be in different slots, written by two scripts on two
// primaries, so a failover could lose the item of a record that replays
// S: the queue is refused there with ErrQueueUnsupported (QueueSupported
// for the configuration, and Enqueue itself), and nothing is written.
func TestQueueCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	client := cluster.Client(t)
	ctx := t.Context()
	s := open(t, nil, redisstore.Options{Client: client})
	if err := s.QueueSupported(); !errors.Is(err, redisstore.ErrQueueUnsupported) {
		t.Fatalf("QueueSupported on a Cluster = %v, want ErrQueueUnsupported", err)
	}
	k := storetest.K("cluster-refused")
	cl, err := s.Claim(ctx, k, storetest.FP(1), time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Enqueue(ctx, k, cl.Token, idempotency.NewItem{OrderKey: "customer", Payload: []byte("p")}, idempotency.EnqueueOptions{Retention: time.Hour})
	if !errors.Is(err, redisstore.ErrQueueUnsupported) {
		t.Fatalf("Enqueue on a Cluster = %v, want ErrQueueUnsupported", err)
	}
	if rec, ok, err := s.Get(ctx, k); err != nil || !ok || rec.State != idempotency.StateInFlight {
		t.Fatalf("the refused enqueue's claim: %+v %v %v, want it untouched", rec, ok, err)
	}
	for _, n := range cluster.Nodes {
		if keys, err := n.Client(0).Keys(ctx, s.Prefix()+"q{*").Result(); err != nil || len(keys) != 0 {
			t.Fatalf("queue keys on a cluster node after a refused enqueue: %v %v", keys, err)
		}
	}
	srv := redistest.Start(t, redistest.Config{})
	if err := open(t, srv, redisstore.Options{}).QueueSupported(); err != nil {
		t.Fatalf("QueueSupported on a single server = %v", err)
	}
}

// TestQueuedReplayNeedsDurability: with WaitReplicas, an enqueue whose
// wait is not confirmed reports it (the gateway answers U), and the
// provider's resend does not replay S from the record it left: its Claim
// waits for the record's durability again and fails the same way, until
// the wait can be confirmed.
func TestQueuedReplayNeedsDurability(t *testing.T) {
	srv, waiting, k, c := claimWithoutReplica(t, "unconfirmed-enqueue")
	ctx := t.Context()
	err := waiting.Enqueue(ctx, k, c.Token, idempotency.NewItem{OrderKey: "o", Payload: []byte("p")}, idempotency.EnqueueOptions{Retention: time.Hour})
	if !errors.Is(err, redisstore.ErrUnconfirmed) {
		t.Fatalf("Enqueue on a primary without the replica WaitReplicas asks for = %v, want ErrUnconfirmed", err)
	}
	res, err := waiting.Claim(ctx, k, storetest.FP(1), time.Minute, time.Hour)
	if !errors.Is(err, redisstore.ErrUnconfirmed) {
		t.Fatalf("the resend's Claim = %v, %v: want ErrUnconfirmed (never a replay of an unconfirmed queued record)", res.Status, err)
	}
	// A store without a wait replays it (the server's persistence is all
	// it promises).
	plain := open(t, srv, redisstore.Options{Prefix: waiting.Prefix()})
	if res, err := plain.Claim(ctx, k, storetest.FP(1), time.Minute, time.Hour); err != nil || res.Status != idempotency.Done {
		t.Fatalf("Claim without a wait = %v, %v; want Done", res.Status, err)
	}
}
