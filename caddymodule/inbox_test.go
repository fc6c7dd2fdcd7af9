package caddymodule

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// receiptConfig is a gateway that acknowledges on receipt, with short
// pauses between tries.
func receiptConfig(extra string) gatewayConfig {
	return gatewayConfig{extra: "acknowledge on_receipt {\n\t\t\tkey " + inboxKeyA + "\n\t\t\tbackoff 50ms 200ms\n" + extra + "\t\t}"}
}

// itemState is the queue state of a notification in the gateway's store.
func itemState(t *testing.T, g *gateway, key idempotency.Key) idempotency.ItemState {
	t.Helper()
	it, found, err := storeFor(t, g).Item(context.Background(), key)
	if err != nil || !found {
		t.Fatalf("item %v: found %v, %v", key, found, err)
	}
	return it.State
}

// With acknowledge on_receipt a notification is answered S while the
// backend is down, delivered through reverse_proxy once it is back (the
// same X-Dws-* headers, the exact body, no Signature), and its duplicates
// replay S without reaching the backend.
func TestOnReceiptQueuesThenDelivers(t *testing.T) {
	b := newBackend(t)
	b.status(http.StatusServiceUnavailable)
	g := startGateway(t, b, receiptConfig(""))
	body := addSample(t, "receipt-1")
	key := keyOf("addPaymentMethod", "receipt-1")

	phase(t, "answered S while the backend fails", func(t *testing.T) {
		g.send(g.notice(addPath, body)).expect(t, http.StatusOK, "S", "SUCCESS")
		waitUntil(t, "tries that fail", func() bool { return len(b.hits()) >= 2 })
		if s := itemState(t, g, key); !s.Queued() {
			t.Fatalf("item %v while the backend fails, want queued", s)
		}
	})
	phase(t, "a duplicate replays S", func(t *testing.T) {
		g.send(g.notice(addPath, body)).expect(t, http.StatusOK, "S", "SUCCESS")
	})
	phase(t, "delivered once the backend is back", func(t *testing.T) {
		b.setRespond(nil)
		waitUntil(t, "the delivery", func() bool { return itemState(t, g, key) == idempotency.ItemDelivered })
		hits := b.hits()
		last := hits[len(hits)-1]
		if !bytes.Equal(last.body, body) || last.length != int64(len(body)) || last.path != addPath {
			t.Fatalf("delivered %q (length %d) to %s, want the exact body to %s", last.body, last.length, last.path, addPath)
		}
		for name, want := range map[string]string{"X-Dws-Api": "addPaymentMethod", "X-Dws-Client-Id": testClientID,
			"X-Dws-Request-Id": "receipt-1", "X-Dws-Idempotency-Key": "receipt-1", "X-Dws-Key-Version": "1", "X-Dws-Verified": "true", "Content-Length": strconv.Itoa(len(body)),
			"Client-Id": testClientID, "Signature": ""} {
			if got := last.header.Get(name); got != want {
				t.Errorf("delivered %s: %q, want %q", name, got, want)
			}
		}
		n := len(hits)
		g.send(g.notice(addPath, body)).expect(t, http.StatusOK, "S", "SUCCESS")
		time.Sleep(300 * time.Millisecond)
		if len(b.hits()) != n {
			t.Fatalf("the backend got %d requests after the delivery, want none", len(b.hits())-n)
		}
	})
}

// A business-reject status ends the deliveries of a notification
// (business_rejected, no retry).
func TestOnReceiptBusinessRejection(t *testing.T) {
	b := newBackend(t)
	b.status(http.StatusConflict)
	g := startGateway(t, b, receiptConfig(""))
	key := keyOf("addPaymentMethod", "receipt-409")
	g.send(g.notice(addPath, addSample(t, "receipt-409"))).expect(t, http.StatusOK, "S", "SUCCESS")
	waitUntil(t, "the rejection", func() bool { return itemState(t, g, key) == idempotency.ItemBusinessRejected })
	time.Sleep(300 * time.Millisecond)
	if n := len(b.hits()); n != 1 {
		t.Fatalf("the backend got %d tries, want 1", n)
	}
}

// Beyond max_queued a notification is answered U and its claim released,
// so DWS's resend is queued once there is room.
func TestOnReceiptQueueFull(t *testing.T) {
	b := newBackend(t)
	b.status(http.StatusServiceUnavailable)
	g := startGateway(t, b, receiptConfig("\t\t\tmax_queued 1\n"))
	g.send(g.notice(addPath, addSample(t, "full-1"))).expect(t, http.StatusOK, "S", "SUCCESS")
	second := g.notice(addPath, addSample(t, "full-2"))
	g.send(second).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	if _, found, _ := storeFor(t, g).Get(context.Background(), keyOf("addPaymentMethod", "full-2")); found {
		t.Fatal("the refused notification's claim was kept")
	}
	b.setRespond(nil)
	waitUntil(t, "the first delivery", func() bool {
		return itemState(t, g, keyOf("addPaymentMethod", "full-1")) == idempotency.ItemDelivered
	})
	g.send(g.notice(addPath, addSample(t, "full-2"))).expect(t, http.StatusOK, "S", "SUCCESS")
	waitUntil(t, "the resend's delivery", func() bool {
		return itemState(t, g, keyOf("addPaymentMethod", "full-2")) == idempotency.ItemDelivered
	})
}

// Deliveries go on across a config reload, with the new config: queued
// while the route's upstream is down, the notifications are delivered
// once a reload points it at the backend, without a new DWS request.
// A reload that renames the server which received a queued notification
// (the Caddyfile's servers option, or a site added before it) does not
// strand it: the delivery finds the server by its addresses.
func TestOnReceiptDeliversAfterServerRenamed(t *testing.T) {
	b := newBackend(t)
	b.status(http.StatusServiceUnavailable)
	cfg := receiptConfig("")
	cfg.storage = t.TempDir()
	g := startGateway(t, b, cfg)
	key := keyOf("addPaymentMethod", "renamed-1")
	g.send(g.notice(addPath, addSample(t, "renamed-1"))).expect(t, http.StatusOK, "S", "SUCCESS")
	waitUntil(t, "a failed try", func() bool {
		it, _, _ := storeFor(t, g).Item(context.Background(), key)
		return it.Attempts >= 1 && it.State == idempotency.ItemPending
	})
	cfg.globals = "servers :9080 {\n\t\tname renamed\n\t}"
	g = startGateway(t, b, cfg) // a reload: the server is now "renamed", not "srv0"
	b.status(http.StatusOK)
	waitUntil(t, "the delivery after the rename", func() bool { return itemState(t, g, key) == idempotency.ItemDelivered })
	if n := len(b.hits()); n < 2 {
		t.Fatalf("the backend got %d requests, want the failed try and the delivery", n)
	}
}

func TestOnReceiptDeliversAcrossReload(t *testing.T) {
	b := newBackend(t)
	cfg := receiptConfig("")
	cfg.storage = t.TempDir()
	cfg.upstream = "127.0.0.1:1" // nothing listens there
	g := startGateway(t, b, cfg)
	key := keyOf("addPaymentMethod", "reload-1")
	g.send(g.notice(addPath, addSample(t, "reload-1"))).expect(t, http.StatusOK, "S", "SUCCESS")
	waitUntil(t, "a failed try", func() bool {
		it, _, _ := storeFor(t, g).Item(context.Background(), key)
		return it.Attempts >= 1 && it.State == idempotency.ItemPending
	})
	cfg.upstream = ""
	g = startGateway(t, b, cfg) // a reload of the running Caddy
	waitUntil(t, "the delivery after the reload", func() bool { return itemState(t, g, key) == idempotency.ItemDelivered })
	if n := len(b.hits()); n != 1 {
		t.Fatalf("the backend got %d requests, want 1", n)
	}
}

// on_receipt: a try whose 200 came before the deadline and whose body
// came after it is delivered, not retried (the backend has it once).
func TestInboxStatusBeforeDeadlineSettlesDespiteSlowBody(t *testing.T) {
	b := newBackend(t)
	b.setRespond(slowBodyAfterStatus)
	g := startGateway(t, b, receiptConfig(""))
	g.send(g.notice(addPath, addSample(t, "slow-body-2"))).expect(t, http.StatusOK, "S", "SUCCESS")
	key := keyOf("addPaymentMethod", "slow-body-2")
	var it idempotency.Item
	waitUntil(t, "the first try settled", func() bool {
		var err error
		if it, _, err = storeFor(t, g).Item(t.Context(), key); err != nil {
			t.Fatal(err)
		}
		return it.State == idempotency.ItemDelivered || it.Attempts > 1
	})
	b.setRespond(nil)
	if it.State != idempotency.ItemDelivered || it.Attempts != 1 {
		t.Fatalf("item %v after %d tries (last %d %q), want delivered after one", it.State, it.Attempts, it.LastStatus, it.LastReason)
	}
	if n := len(b.hits()); n != 1 {
		t.Errorf("the backend got the notification %d times, want once", n)
	}
}
