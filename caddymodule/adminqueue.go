package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/idempotency"
)

// The admin endpoints of the inbox (acknowledge on_receipt):
//
//   - GET /dws_notify/queue: per store, the notifications queued and the
//     oldest, and every item kept by state;
//   - GET /dws_notify/dead_letters[?limit=N]: the dead letters, oldest
//     first;
//   - POST /dws_notify/redeliver?request_id=ID[&api=NAME][&client_id=ID][&force=1]
//     or ?dead=all: put dead letters back in the queue. A dead
//     addPaymentMethod whose customer's later removePaymentMethod was
//     delivered is refused (409) unless force=1, and skipped by dead=all:
//     delivered now, it would bind a card the customer removed.
//
// queue and dead_letters scan every item (a scan slot each); redeliver by
// requestId reads by key and scans only for the later-remove check.

// itemView renders it for the admin API, times in UTC.
func itemView(s *sharedStore, it idempotency.Item) adminapi.ItemView {
	return adminapi.ItemView{
		Storage: s.name, ClientID: it.Key.ClientID, API: it.Key.API, RequestID: it.Key.RequestID,
		State: it.State.String(), Attempts: it.Attempts,
		EnqueuedAt: utc(it.EnqueuedAt), RedeliveredAt: utc(it.RedeliveredAt), DueAt: utc(it.DueAt),
		LastStatus: it.LastStatus, LastReason: it.LastReason, FinishedAt: utc(it.FinishedAt),
		HasPayload: it.HasPayload, ExpiresAt: utc(it.ExpiresAt),
	}
}

// serveQueue answers GET /dws_notify/queue.
func (a *adminAPI) serveQueue(w http.ResponseWriter, r *http.Request) error {
	if len(r.URL.Query()) != 0 {
		return apiError(http.StatusBadRequest, "queue takes no parameters")
	}
	done, err := takeScanSlot(w)
	if err != nil {
		return err
	}
	defer done()
	stores := pooledStores()
	ans := adminapi.QueueAnswer{Stores: []adminapi.QueueStoreView{}, Errors: []adminapi.StoreError{}}
	for _, s := range stores {
		v := adminapi.QueueStoreView{Storage: s.name}
		err := s.ScanItems(r.Context(), func(it idempotency.Item) bool {
			c := &v.States
			c.Total++
			switch it.State {
			case idempotency.ItemPending:
				c.Pending++
			case idempotency.ItemLeased:
				c.Leased++
			case idempotency.ItemDelivered:
				c.Delivered++
			case idempotency.ItemBusinessRejected:
				c.BusinessRejected++
			case idempotency.ItemDead:
				c.Dead++
			}
			if it.State.Queued() {
				v.Queued++
				if v.Oldest.IsZero() || it.EnqueuedAt.Before(v.Oldest) {
					v.Oldest = utc(it.EnqueuedAt)
				}
			}
			return true
		})
		if err != nil {
			ans.Errors = append(ans.Errors, storeFailure(s.sharedStore, err))
			continue
		}
		ans.Stores = append(ans.Stores, v)
	}
	if len(stores) > 0 && len(ans.Errors) == len(stores) {
		return allStoresFailed(ans.Errors)
	}
	return writeJSON(w, ans)
}

// serveDeadLetters answers GET /dws_notify/dead_letters.
func (a *adminAPI) serveDeadLetters(w http.ResponseWriter, r *http.Request) error {
	limit := adminapi.DefaultDeadLetterLimit
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > adminapi.MaxDeadLetterLimit {
			return apiError(http.StatusBadRequest, "limit must be a number from 1 to %d, not %q", adminapi.MaxDeadLetterLimit, v)
		}
		limit = n
	}
	done, err := takeScanSlot(w)
	if err != nil {
		return err
	}
	defer done()
	stores := pooledStores()
	ans := adminapi.DeadLettersAnswer{Items: []adminapi.ItemView{}, Limit: limit, Errors: []adminapi.StoreError{}}
	for _, s := range stores {
		var mine []adminapi.ItemView
		err := s.ScanItems(r.Context(), func(it idempotency.Item) bool {
			if it.State == idempotency.ItemDead {
				mine = append(mine, itemView(s.sharedStore, it))
			}
			return true
		})
		if err != nil {
			ans.Errors = append(ans.Errors, storeFailure(s.sharedStore, err))
			continue
		}
		ans.Items = append(ans.Items, mine...)
	}
	if len(stores) > 0 && len(ans.Errors) == len(stores) {
		return allStoresFailed(ans.Errors)
	}
	slices.SortFunc(ans.Items, func(x, y adminapi.ItemView) int { return x.EnqueuedAt.Compare(y.EnqueuedAt) })
	ans.Total = len(ans.Items)
	if ans.Total > limit {
		ans.Items, ans.Truncated = ans.Items[:limit], true
	}
	return writeJSON(w, ans)
}

// removeAPI is the API whose later delivery makes a dead add stale.
const removeAPI = "removePaymentMethod"

// deliveredRemoves returns, per order key, the highest sequence number of
// a delivered removePaymentMethod in s's queue.
func deliveredRemoves(ctx context.Context, s *sharedStore) (map[string]uint64, error) {
	removes := map[string]uint64{}
	err := s.ScanItems(ctx, func(it idempotency.Item) bool {
		if it.Key.API == removeAPI && it.State == idempotency.ItemDelivered && it.Seq > removes[it.OrderKey] {
			removes[it.OrderKey] = it.Seq
		}
		return true
	})
	return removes, err
}

// staleAdd reports whether it is an addPaymentMethod that a delivered
// later removePaymentMethod of the same customer has overtaken.
func staleAdd(it idempotency.Item, removes map[string]uint64) bool {
	return it.Key.API != removeAPI && removes[it.OrderKey] > it.Seq
}

const staleAddReason = "a later removePaymentMethod of the same customer was delivered: redelivered now, this would bind a card the customer removed"

// serveRedeliver answers POST /dws_notify/redeliver.
func (a *adminAPI) serveRedeliver(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	requestID, all := q.Get("request_id"), q.Get("dead") == "all"
	force := q.Get("force") == "1" || q.Get("force") == "true"
	if (requestID == "") == !all || (q.Has("dead") && !all) {
		return apiError(http.StatusBadRequest, "redeliver takes request_id=ID (with api and client_id to narrow it) or dead=all")
	}
	api, clientID, err := keyFilters(q.Get("api"), q.Get("client_id"))
	if err != nil {
		return err
	}
	if len(requestID) > idempotency.MaxKeyFieldLen {
		return apiError(http.StatusBadRequest, "request_id is longer than %d bytes", idempotency.MaxKeyFieldLen)
	}
	done, err := takeScanSlot(w)
	if err != nil {
		return err
	}
	defer done()
	stores := pooledStores()
	if len(stores) == 0 {
		return errNoStores()
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	ans := adminapi.RedeliverAnswer{Redelivered: []adminapi.ItemView{}, Skipped: []adminapi.SkippedItem{}, Errors: []adminapi.StoreError{}}
	var refusal error
	found := 0
	for _, s := range stores {
		var dead []idempotency.Item
		if all {
			err = s.ScanItems(ctx, func(it idempotency.Item) bool {
				if it.State == idempotency.ItemDead {
					dead = append(dead, it)
				}
				return true
			})
		} else {
			for _, key := range lookupKeys(s.served, requestID, api, clientID) {
				it, ok, gerr := s.Item(ctx, key)
				if gerr != nil {
					err = gerr
					break
				}
				if ok {
					found++
					if it.State != idempotency.ItemDead {
						refusal = apiError(http.StatusConflict, "the notification %s %s of Client-Id %s is %s, not a dead letter", it.Key.API, it.Key.RequestID, it.Key.ClientID, it.State)
						continue
					}
					dead = append(dead, it)
				}
			}
		}
		if err == nil && len(dead) > 0 && !force {
			var removes map[string]uint64
			if removes, err = deliveredRemoves(ctx, s.sharedStore); err == nil {
				dead = slices.DeleteFunc(dead, func(it idempotency.Item) bool {
					if !staleAdd(it, removes) {
						return false
					}
					ans.Skipped = append(ans.Skipped, adminapi.SkippedItem{ItemView: itemView(s.sharedStore, it), Reason: staleAddReason})
					return true
				})
			}
		}
		for _, it := range dead {
			if err != nil {
				break
			}
			switch rerr := s.Redeliver(ctx, it.Key); {
			case rerr == nil:
				it.State = idempotency.ItemPending
				ans.Redelivered = append(ans.Redelivered, itemView(s.sharedStore, it))
			case errors.Is(rerr, idempotency.ErrPayloadExpired):
				ans.Skipped = append(ans.Skipped, adminapi.SkippedItem{ItemView: itemView(s.sharedStore, it), Reason: "its payload expired with the dead letters' retention"})
			case errors.Is(rerr, idempotency.ErrNotDeadLetter):
			default:
				err = rerr
			}
		}
		if err != nil {
			ans.Errors = append(ans.Errors, storeFailure(s.sharedStore, err))
			err = nil
		}
		if len(ans.Redelivered) > 0 {
			s.deliveries.notify()
		}
	}
	switch {
	case !all && len(ans.Redelivered) == 0 && len(ans.Skipped) > 0:
		w.Header().Set(adminapi.ErrorCodeHeader, adminapi.CodeLaterRemoveDelivered)
		return apiError(http.StatusConflict, "not redelivered: %s (force=1 redelivers it anyway)", staleAddReason)
	case !all && len(ans.Redelivered) == 0 && refusal != nil:
		return refusal
	case !all && found == 0 && len(ans.Errors) == 0:
		w.Header().Set(adminapi.ErrorCodeHeader, adminapi.CodeNoRecord)
		return apiError(http.StatusNotFound, "no queued notification of requestId %q%s in %s", requestID, filterText(api, clientID), storesText(stores))
	case len(ans.Errors) == len(stores):
		return allStoresFailed(ans.Errors)
	}
	return writeJSON(w, ans)
}
