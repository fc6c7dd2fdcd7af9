package caddymodule

import (
	"github.com/caddyserver/caddy/v2"

	"context"
	"net/http"
	"time"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/adminview"
)

// The admin endpoints of the inbox (acknowledge on_receipt):
//
//   - GET /dws_notify/queue: per store, the notifications queued and the
//     oldest, and every item kept by state;
//   - GET /dws_notify/dead_letters[?limit=N]: the dead letters, oldest
//     first;
//   - POST /dws_notify/redeliver?request_id=ID[&api=NAME][&client_id=ID][&force=1]
//     or ?dead=all: put dead letters back in the queue. A dead
//     addPaymentMethod whose customer's later removePaymentMethod reached
//     the backend (delivered, leased or business_rejected), or a dead
//     removePaymentMethod whose customer's later addPaymentMethod did, is
//     refused (409) unless force=1, and skipped by dead=all: delivered
//     now, it would undo the later one (adminview.Overtakers). The store
//     checks it again in the same step as the redelivery
//     (idempotency.ErrOvertaken), so a later item leased meanwhile counts.
//
// queue and dead_letters scan every item (a scan slot each); redeliver by
// requestId reads by key and scans only for the stale add and remove
// check (skipped with force=1).

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
	ans, err := adminview.Redeliver(ctx, sources(stores), adminview.RedeliverQuery{RequestID: requestID, API: api, ClientID: clientID, All: all, Force: force},
		func(i int) { stores[i].deliveries.notify() })
	if err != nil {
		return answerError(w, err)
	}
	return writeJSON(w, ans)
}
