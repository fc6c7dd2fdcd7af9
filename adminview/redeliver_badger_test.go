package adminview

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// inboxOf is a real Badger store on disk whose queue the test drives as
// the inbox would: enqueue, lease, then ack, reject or dead-letter.
type inboxOf struct {
	t *testing.T
	s *idempotency.BadgerStore
}

func openInbox(t *testing.T) inboxOf {
	s, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return inboxOf{t, s}
}

func inboxKey(api, id string) idempotency.Key {
	return idempotency.Key{ClientID: "C", API: api, RequestID: id}
}

// enqueue queues the notification api id of customer "cust".
func (b inboxOf) enqueue(api, id string) {
	b.t.Helper()
	ctx := b.t.Context()
	c, err := b.s.Claim(ctx, inboxKey(api, id), storetest.FP(1), time.Minute, time.Hour)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := b.s.Enqueue(ctx, inboxKey(api, id), c.Token, idempotency.NewItem{OrderKey: "cust", Payload: []byte("sealed " + id)},
		idempotency.EnqueueOptions{Retention: time.Hour}); err != nil {
		b.t.Fatal(err)
	}
}

// lease leases the customer's next item and checks it is id.
func (b inboxOf) lease(id string) idempotency.Item {
	b.t.Helper()
	items, err := b.s.Lease(b.t.Context(), 10, time.Minute)
	if err != nil || len(items) != 1 || items[0].Key.RequestID != id {
		b.t.Fatalf("Lease: %v, %v; want %s", items, err, id)
	}
	return items[0]
}

// redeliver asks Redeliver for id, without force.
func (b inboxOf) redeliver(id string) (adminapi.RedeliverAnswer, error) {
	served := SortServed([]Served{{"C", addAPI}, {"C", removeAPI}})
	return Redeliver(b.t.Context(), []Source{{Name: "/data", Served: served, Store: b.s}}, RedeliverQuery{RequestID: id}, func(int) {})
}

// TestRedeliverInFlightOvertaker: on a real Badger store, a dead letter
// whose customer's later opposite item is leased (being delivered now) is
// refused like one whose later item was delivered: put back before it, it
// would still be delivered after it, the lease being the customer's one.
// It failed before: the dead remove was redelivered and, once the add was
// acknowledged, delivered after it.
func TestRedeliverInFlightOvertaker(t *testing.T) {
	for _, tc := range []struct {
		name, deadAPI, laterAPI, code string
	}{
		{"remove then add", removeAPI, addAPI, adminapi.CodeLaterAddDelivered},
		{"add then remove", addAPI, removeAPI, adminapi.CodeLaterRemoveDelivered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := openInbox(t)
			ctx := t.Context()
			b.enqueue(tc.deadAPI, "first")
			if err := b.s.DeadLetter(ctx, b.lease("first").Ref(), 503, "status", time.Hour, time.Hour); err != nil {
				t.Fatal(err)
			}
			b.enqueue(tc.laterAPI, "later")
			later := b.lease("later")

			_, err := b.redeliver("first")
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusConflict || e.Code != tc.code || !strings.Contains(err.Error(), tc.laterAPI+" of the same customer is being delivered") {
				t.Fatalf("the later %s leased: %v, want 409 %s", tc.laterAPI, err, tc.code)
			}
			if err := b.s.Ack(ctx, later.Ref(), 200, time.Hour); err != nil {
				t.Fatal(err)
			}
			if it, _, err := b.s.Item(ctx, inboxKey(tc.deadAPI, "first")); err != nil || it.State != idempotency.ItemDead {
				t.Fatalf("the dead letter is %v, %v after the later one was delivered; want still dead", it.State, err)
			}
			if _, err := b.redeliver("first"); !errors.As(err, &e) || e.Code != tc.code || !strings.Contains(err.Error(), "was delivered") {
				t.Fatalf("the later %s delivered: %v, want 409 %s", tc.laterAPI, err, tc.code)
			}
		})
	}
}

// TestRedeliverRejectedAndPendingOvertaker: a later opposite item the
// backend refused for a business reason (most likely because the dead one
// never arrived) makes the dead letter stale too; a pending one does not,
// and the dead letter, put back before it, is delivered first.
func TestRedeliverRejectedAndPendingOvertaker(t *testing.T) {
	b := openInbox(t)
	ctx := t.Context()
	b.enqueue(addAPI, "add")
	if err := b.s.DeadLetter(ctx, b.lease("add").Ref(), 503, "status", time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	b.enqueue(removeAPI, "rm")
	if err := b.s.Reject(ctx, b.lease("rm").Ref(), 422, time.Hour); err != nil {
		t.Fatal(err)
	}
	var e *Error
	if _, err := b.redeliver("add"); !errors.As(err, &e) || e.Code != adminapi.CodeLaterRemoveDelivered || !strings.Contains(err.Error(), "was refused by the backend") {
		t.Fatalf("the later remove business-rejected: %v, want 409 %s", err, adminapi.CodeLaterRemoveDelivered)
	}

	b.enqueue(removeAPI, "rm2")
	if err := b.s.DeadLetter(ctx, b.lease("rm2").Ref(), 503, "status", time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	b.enqueue(addAPI, "add2") // pending: not yet tried
	if ans, err := b.redeliver("rm2"); err != nil || len(ans.Redelivered) != 1 {
		t.Fatalf("the later add pending: %+v, %v; want rm2 redelivered", ans, err)
	}
	b.lease("rm2")
}
