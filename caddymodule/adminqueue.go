package caddymodule

import (
	"github.com/caddyserver/caddy/v2"

	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/adminview"
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
	ans, err := adminview.Queue(r.Context(), sources(pooledStores()))
	if err != nil {
		return answerError(w, err)
	}
	return writeJSON(w, ans)
}

// serveDeadLetters answers GET /dws_notify/dead_letters.
func (a *adminAPI) serveDeadLetters(w http.ResponseWriter, r *http.Request) error {
	limit, err := adminview.ParseLimit(r.URL.Query().Get("limit"), adminapi.DefaultDeadLetterLimit, adminapi.MaxDeadLetterLimit)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	done, err := takeScanSlot(w)
	if err != nil {
		return err
	}
	defer done()
	ans, err := adminview.DeadLetters(r.Context(), sources(pooledStores()), limit)
	if err != nil {
		return answerError(w, err)
	}
	return writeJSON(w, ans)
}

// deliveredRemoves scans s's queue for the delivered
// removePaymentMethods that make a dead add stale.
func deliveredRemoves(ctx context.Context, s *sharedStore) (adminview.Removes, error) {
	removes := adminview.Removes{}
	err := s.ScanItems(ctx, func(it idempotency.Item) bool {
		removes.Note(it)
		return true
	})
	return removes, err
}

// serveRedeliver answers POST /dws_notify/redeliver.
func (a *adminAPI) serveRedeliver(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	requestID, all := q.Get("request_id"), q.Get("dead") == "all"
	force := q.Get("force") == "1" || q.Get("force") == "true"
	if (requestID == "") == !all || (q.Has("dead") && !all) {
		return apiError(http.StatusBadRequest, "redeliver takes request_id=ID (with api and client_id to narrow it) or dead=all")
	}
	api, clientID := q.Get("api"), q.Get("client_id")
	if err := adminview.CheckKey(requestID, api, clientID); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
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
			for _, key := range adminview.LookupKeys(s.served, requestID, api, clientID) {
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
			var removes adminview.Removes
			if removes, err = deliveredRemoves(ctx, s.sharedStore); err == nil {
				dead = slices.DeleteFunc(dead, func(it idempotency.Item) bool {
					if !removes.Stale(it) {
						return false
					}
					ans.Skipped = append(ans.Skipped, adminapi.SkippedItem{ItemView: adminview.Item(s.name, it), Reason: adminview.StaleAddReason})
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
				ans.Redelivered = append(ans.Redelivered, adminview.Item(s.name, it))
			case errors.Is(rerr, idempotency.ErrPayloadExpired):
				ans.Skipped = append(ans.Skipped, adminapi.SkippedItem{ItemView: adminview.Item(s.name, it), Reason: "its payload expired with the dead letters' retention"})
			case errors.Is(rerr, idempotency.ErrNotDeadLetter):
			default:
				err = rerr
			}
		}
		if err != nil {
			ans.Errors = append(ans.Errors, adminview.StoreFailure(s.name, err))
			err = nil
		}
		if len(ans.Redelivered) > 0 {
			s.deliveries.notify()
		}
	}
	switch {
	case !all && len(ans.Redelivered) == 0 && len(ans.Skipped) > 0:
		w.Header().Set(adminapi.ErrorCodeHeader, adminapi.CodeLaterRemoveDelivered)
		return apiError(http.StatusConflict, "not redelivered: %s (force=1 redelivers it anyway)", adminview.StaleAddReason)
	case !all && len(ans.Redelivered) == 0 && refusal != nil:
		return refusal
	case !all && found == 0 && len(ans.Errors) == 0:
		w.Header().Set(adminapi.ErrorCodeHeader, adminapi.CodeNoRecord)
		return apiError(http.StatusNotFound, "no queued notification of requestId %q%s in %s", requestID, adminview.FilterText(api, clientID), adminview.StoresText(storeNames(stores)))
	case len(ans.Errors) == len(stores):
		return answerError(w, adminview.AllFailed(ans.Errors))
	}
	return writeJSON(w, ans)
}
