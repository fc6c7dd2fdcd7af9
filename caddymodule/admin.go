package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/adminview"
)

func init() {
	caddy.RegisterModule(new(adminAPI))
}

// adminAPI is the admin.api.dws_notify module: read-only endpoints on
// Caddy's admin API that answer from the idempotency stores the dws_notify
// handlers of the running config share (storePool).
//
//   - GET /dws_notify/record?request_id=ID[&api=NAME][&client_id=ID]: the
//     records of a requestId (for an Antom API, the notification's
//     composed key, e.g. 2020010123456789XXXX:PAYMENT_RESULT:S), in every
//     pooled store, read by key (the Client-Ids and APIs the handlers
//     serve), never by a scan; a record queued at receipt (acknowledge
//     on_receipt) comes with its inbox item, read by the same key;
//   - GET /dws_notify/stats: record counts by outcome, per store and in
//     total;
//   - GET /dws_notify/follow_up[?limit=N][&api=NAME][&client_id=ID]: the
//     records acknowledged although the backend refused them for a business
//     reason, oldest first;
//   - the inbox's queue, dead letters and redelivery (adminqueue.go).
//
// A store that cannot be read (closed meanwhile, Redis down) is listed in
// the answer's errors and the other stores still answer; the answer is an
// error only when no store could be read (or, for record, when nothing was
// found and a store could not be read). stats and follow_up scan every
// record: at most maxAdminScans of them run at once, more are answered 429.
//
// It owns no resources: it holds no reference to a store between requests,
// so it has no Cleanup. Records hold no card data, so neither do the
// answers.
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (*adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.dws_notify",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes returns the admin routes under /dws_notify/.
func (a *adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: adminapi.Base, Handler: caddy.AdminHandlerFunc(a.serve)}}
}

// serve routes one admin request. Errors are caddy.APIError values, which
// the admin server writes as {"error": "..."} with their status.
func (a *adminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	endpoint := strings.TrimPrefix(r.URL.Path, adminapi.Base)
	if endpoint == "redeliver" {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			return apiError(http.StatusMethodNotAllowed, "method %s not allowed: %sredeliver changes the queue (POST)", r.Method, adminapi.Base)
		}
		return a.serveRedeliver(w, r)
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		return apiError(http.StatusMethodNotAllowed, "method %s not allowed: the dws_notify admin endpoints are read-only (GET) but for redeliver", r.Method)
	}
	switch endpoint {
	case "queue":
		return a.serveQueue(w, r)
	case "dead_letters":
		return a.serveDeadLetters(w, r)
	case "record":
		return a.serveRecord(w, r)
	case "stats":
		return a.serveStats(w, r)
	case "follow_up":
		return a.serveFollowUp(w, r)
	case "backup":
		return a.serveBackup(w, r)
	}
	return apiError(http.StatusNotFound, "no dws_notify admin endpoint at %s (there are %[2]srecord, %[2]sstats, %[2]sfollow_up, %[2]sbackup, %[2]squeue, %[2]sdead_letters and %[2]sredeliver)", r.URL.Path, adminapi.Base)
}

// serveRecord answers GET /dws_notify/record. It reads records by key,
// never scanning: with client_id, for that Client-Id and the api given or
// every API; without, for every Client-Id and API the handlers using the
// store serve (sharedStore.serve), narrowed to the api given. The stores
// are read at once; one that fails is listed in Errors and the others
// still answer.
func (a *adminAPI) serveRecord(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	requestID := q.Get("request_id")
	if requestID == "" {
		return apiError(http.StatusBadRequest, "request_id is required")
	}
	api, clientID := q.Get("api"), q.Get("client_id")
	if err := adminview.CheckKey(requestID, api, clientID); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	stores := pooledStores()
	if len(stores) == 0 {
		return errNoStores()
	}
	ans, err := adminview.FindRecords(r.Context(), sources(stores), requestID, api, clientID, time.Now())
	if err != nil {
		return answerError(w, err)
	}
	return writeJSON(w, ans)
}

// maxAdminScans bounds the stats and follow_up requests that scan the
// stores at once in this process; more are answered 429. A scan reads
// every record (about a second per million records in Badger, tens of
// seconds per million in Redis, whose server every gateway of a fleet
// shares).
const maxAdminScans = 2

// scanSlots holds a token per running scanning request.
var scanSlots = make(chan struct{}, maxAdminScans)

// scanRetryAfter is the Retry-After of a 429 answer, in seconds.
const scanRetryAfter = "5"

// takeScanSlot takes a scan slot, or answers 429; the returned function
// gives the slot back.
func takeScanSlot(w http.ResponseWriter) (func(), error) {
	select {
	case scanSlots <- struct{}{}:
		return func() { <-scanSlots }, nil
	default:
	}
	w.Header().Set("Retry-After", scanRetryAfter)
	return nil, apiError(http.StatusTooManyRequests, "%d dws_notify stats or follow_up requests are already reading every record; ask again in a few seconds", maxAdminScans)
}

// serveStats answers GET /dws_notify/stats.
func (a *adminAPI) serveStats(w http.ResponseWriter, r *http.Request) error {
	if len(r.URL.Query()) != 0 {
		return apiError(http.StatusBadRequest, "stats takes no parameters")
	}
	done, err := takeScanSlot(w)
	if err != nil {
		return err
	}
	defer done()
	ans, err := adminview.Stats(r.Context(), sources(pooledStores()))
	if err != nil {
		return answerError(w, err)
	}
	return writeJSON(w, ans)
}

// serveFollowUp answers GET /dws_notify/follow_up.
func (a *adminAPI) serveFollowUp(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := adminview.ParseLimit(q.Get("limit"), adminapi.DefaultFollowUpLimit, adminapi.MaxFollowUpLimit)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	api, clientID := q.Get("api"), q.Get("client_id")
	if err := adminview.CheckKey("", api, clientID); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	done, err := takeScanSlot(w)
	if err != nil {
		return err
	}
	defer done()
	ans, err := adminview.FollowUps(r.Context(), sources(pooledStores()), limit, api, clientID, time.Now())
	if err != nil {
		return answerError(w, err)
	}
	return writeJSON(w, ans)
}

// pooledStore is a store the admin API reads, with the Client-Ids and APIs
// served from it.
type pooledStore struct {
	*sharedStore
	// served are the keys registered by the handlers of every pooled store
	// with this name, sorted by Client-Id, then API.
	served []adminview.Served
}

// pooledStores returns the stores of the running config (every storage
// directory, and every Redis server, database and prefix, that a dws_notify
// handler names), ordered by name. Pooled stores with the same name hold
// the same records (handlers on one Redis and prefix with different client
// settings, or an old and a new config during a reload), so only one of
// them is returned, with the keys all of them serve, and no record is
// shown or counted twice.
func pooledStores() []pooledStore {
	var stores []*sharedStore
	storePool.Range(func(_, v any) bool {
		if s, ok := v.(*sharedStore); ok && s != nil {
			stores = append(stores, s)
		}
		return true
	})
	// Of stores with one name, keep one that can be read now, if any.
	slices.SortFunc(stores, func(a, b *sharedStore) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		_, errA := a.Current()
		_, errB := b.Current()
		switch {
		case errA == nil && errB != nil:
			return -1
		case errA != nil && errB == nil:
			return 1
		}
		return 0
	})
	var out []pooledStore
	for _, s := range stores {
		if len(out) == 0 || out[len(out)-1].name != s.name {
			out = append(out, pooledStore{sharedStore: s})
		}
		last := &out[len(out)-1]
		for _, k := range s.servedKeys() {
			last.served = append(last.served, adminview.Served{ClientID: k.clientID, API: k.api})
		}
	}
	for i := range out {
		out[i].served = adminview.SortServed(out[i].served)
	}
	return out
}

// writeJSON writes v as indented JSON; it is marshalled first, so a failure
// is still a clean error answer.
func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return apiError(http.StatusInternalServerError, "encoding the answer: %v", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// sources returns stores as the admin views read them.
func sources(stores []pooledStore) []adminview.Source {
	out := make([]adminview.Source, len(stores))
	for i, s := range stores {
		out[i] = adminview.Source{Name: s.name, Served: s.served, Store: s.sharedStore}
	}
	return out
}

// answerError returns err, an *adminview.Error, as the admin server's
// error answer, with its code header; any other error is a 500.
func answerError(w http.ResponseWriter, err error) error {
	var e *adminview.Error
	if !errors.As(err, &e) {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	if e.Code != "" {
		w.Header().Set(adminapi.ErrorCodeHeader, e.Code)
	}
	return caddy.APIError{HTTPStatus: e.Status, Err: e.Err}
}

// errNoStores is the answer of a lookup on a Caddy whose config has no
// dws_notify handler.
func errNoStores() error {
	return apiError(http.StatusNotFound, "no dws_notify store is open: the running config has no dws_notify handler")
}

func apiError(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

// Interface guards.
var (
	_ caddy.Module      = (*adminAPI)(nil)
	_ caddy.AdminRouter = (*adminAPI)(nil)
)
