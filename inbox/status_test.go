package inbox

import (
	"fmt"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// TestDeliveryStatusSettles pins how each backend status settles a try:
// only a final 2xx is delivered; an interim 1xx (a backend that never sent
// a final status) or a number outside 100-999 is no answer at all; a 3xx is
// not a success; a business rejection is kept. Everything not delivered
// nor rejected stays queued for another try.
func TestDeliveryStatusSettles(t *testing.T) {
	tests := []struct {
		status     int
		want       Result
		wantStatus int    // the attempt's and the item's recorded status
		wantReason string // "" when settled
		wantState  idempotency.ItemState
	}{
		{-1, Retrying, 0, "error", idempotency.ItemPending},
		{0, Retrying, 0, "error", idempotency.ItemPending},
		{100, Retrying, 0, "error", idempotency.ItemPending},
		{199, Retrying, 0, "error", idempotency.ItemPending},
		{200, Delivered, 200, "", idempotency.ItemDelivered},
		{204, Delivered, 204, "", idempotency.ItemDelivered},
		{299, Delivered, 299, "", idempotency.ItemDelivered},
		{300, Retrying, 300, "status", idempotency.ItemPending},
		{302, Retrying, 302, "status", idempotency.ItemPending},
		{409, BusinessRejected, 409, "", idempotency.ItemBusinessRejected},
		{500, Retrying, 500, "status", idempotency.ItemPending},
		{999, Retrying, 999, "status", idempotency.ItemPending},
		{1000, Retrying, 0, "error", idempotency.ItemPending},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			h := newHarness(t, Config{FirstBackoff: time.Minute, MaxBackoff: time.Hour, BusinessReject: func(s int) bool { return s == 409 }})
			h.rec.answer = func(Delivery) (int, error) { return tt.status, nil }
			h.enqueue("s", "c")
			h.start()
			h.eventually("one try", func() bool { return len(h.attempts()) == 1 })
			a := h.attempts()[0]
			if a.Result != tt.want || a.Status != tt.wantStatus || a.Reason != tt.wantReason || a.StoreErr != nil {
				t.Fatalf("attempt %+v, want %v with status %d, reason %q", a, tt.want, tt.wantStatus, tt.wantReason)
			}
			it := h.item("s")
			if it.State != tt.wantState || it.LastStatus != tt.wantStatus {
				t.Fatalf("item %v with status %d, want %v with %d", it.State, it.LastStatus, tt.wantState, tt.wantStatus)
			}
			if tt.want == Retrying {
				if !it.HasPayload || a.RetryIn != time.Minute || !it.DueAt.Equal(h.clock.Now().Add(time.Minute)) {
					t.Fatalf("retried item %+v (retry in %v), want its payload kept and due in a minute", it, a.RetryIn)
				}
			} else if it.HasPayload {
				t.Fatalf("settled item kept its payload: %+v", it)
			}
		})
	}
}
