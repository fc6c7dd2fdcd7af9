package caddymodule

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/guard"
	"github.com/dwsnotify/dws_notify/notification"
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
//     serve), never by a scan;
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

// countRecord counts rec in c.
func countRecord(c *adminapi.OutcomeCounts, rec idempotency.Record) {
	c.Total++
	switch {
	case rec.State == idempotency.StateInFlight:
		c.InFlight++
	case rec.Answer.Outcome == idempotency.OutcomeAccepted:
		c.Accepted++
	case rec.Answer.Outcome == idempotency.OutcomeBusinessRejected:
		c.BusinessRejected++
	case rec.Answer.Outcome == idempotency.OutcomeQueued:
		c.Queued++
	default:
		c.Other++
	}
}

// mergeCounts adds o to c.
func mergeCounts(c *adminapi.OutcomeCounts, o adminapi.OutcomeCounts) {
	c.InFlight += o.InFlight
	c.Accepted += o.Accepted
	c.BusinessRejected += o.BusinessRejected
	c.Queued += o.Queued
	c.Other += o.Other
	c.Total += o.Total
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
	api, clientID, err := keyFilters(q.Get("api"), q.Get("client_id"))
	if err != nil {
		return err
	}
	if len(requestID) > idempotency.MaxKeyFieldLen {
		return apiError(http.StatusBadRequest, "request_id is longer than %d bytes", idempotency.MaxKeyFieldLen)
	}
	stores := pooledStores()
	if len(stores) == 0 {
		return errNoStores()
	}
	now := time.Now()
	type result struct {
		records []adminapi.RecordView
		err     error
	}
	results := make([]result, len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			for _, key := range lookupKeys(s.served, requestID, api, clientID) {
				rec, found, err := s.Get(r.Context(), key)
				if err != nil {
					results[i].err = err
					return
				}
				if found {
					results[i].records = append(results[i].records, viewOf(s.sharedStore, rec, now))
				}
			}
		})
	}
	wg.Wait()
	ans := adminapi.RecordsAnswer{Records: []adminapi.RecordView{}, Errors: []adminapi.StoreError{}}
	for i, res := range results {
		ans.Records = append(ans.Records, res.records...)
		if res.err != nil {
			ans.Errors = append(ans.Errors, storeFailure(stores[i].sharedStore, res.err))
		}
	}
	switch {
	case len(ans.Records) > 0:
		return writeJSON(w, ans)
	case len(ans.Errors) == len(stores):
		return allStoresFailed(ans.Errors)
	case len(ans.Errors) > 0:
		var read []pooledStore
		for i, res := range results {
			if res.err == nil {
				read = append(read, stores[i])
			}
		}
		return apiError(http.StatusServiceUnavailable, "no record of requestId %q%s in %s, but not every store could be read, and the record may be in one that could not (ask again): %s",
			requestID, filterText(api, clientID), storesText(read), failuresText(ans.Errors))
	}
	w.Header().Set(adminapi.ErrorCodeHeader, adminapi.CodeNoRecord)
	return apiError(http.StatusNotFound, "no record of requestId %q%s in %s", requestID, filterText(api, clientID), storesText(stores))
}

// lookupKeys returns the keys under which a store may hold the records of
// requestID: for clientID when given, else for every served Client-Id;
// for api when given, else every API (with clientID) or every served API.
func lookupKeys(served []servedKey, requestID, api, clientID string) []idempotency.Key {
	var keys []idempotency.Key
	if clientID != "" {
		apis := notification.Names()
		if api != "" {
			apis = []string{api}
		}
		for _, name := range apis {
			keys = append(keys, idempotency.Key{ClientID: clientID, API: name, RequestID: requestID})
		}
		return keys
	}
	for i, k := range served {
		switch {
		case api == "":
			keys = append(keys, idempotency.Key{ClientID: k.clientID, API: k.api, RequestID: requestID})
		case i == 0 || served[i-1].clientID != k.clientID: // served is sorted: each Client-Id once
			keys = append(keys, idempotency.Key{ClientID: k.clientID, API: api, RequestID: requestID})
		}
	}
	return keys
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
	stores := pooledStores()
	ans := adminapi.StatsAnswer{Stores: []adminapi.StoreStats{}, Errors: []adminapi.StoreError{}}
	for _, s := range stores {
		st := adminapi.StoreStats{Storage: s.name}
		err := s.Scan(r.Context(), func(rec idempotency.Record) bool {
			countRecord(&st.OutcomeCounts, rec)
			return true
		})
		if err != nil {
			ans.Errors = append(ans.Errors, storeFailure(s.sharedStore, err))
			continue
		}
		ans.Stores = append(ans.Stores, st)
		mergeCounts(&ans.Total, st.OutcomeCounts)
	}
	if len(stores) > 0 && len(ans.Errors) == len(stores) {
		return allStoresFailed(ans.Errors)
	}
	return writeJSON(w, ans)
}

// serveFollowUp answers GET /dws_notify/follow_up.
func (a *adminAPI) serveFollowUp(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := adminapi.DefaultFollowUpLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > adminapi.MaxFollowUpLimit {
			return apiError(http.StatusBadRequest, "limit must be a number from 1 to %d, not %q", adminapi.MaxFollowUpLimit, v)
		}
		limit = n
	}
	api, clientID, err := keyFilters(q.Get("api"), q.Get("client_id"))
	if err != nil {
		return err
	}
	done, err := takeScanSlot(w)
	if err != nil {
		return err
	}
	defer done()
	now := time.Now()
	oldest := &newestFirst{}
	total := 0
	stores := pooledStores()
	fails := []adminapi.StoreError{}
	for _, s := range stores {
		// A store's records count only if its whole scan worked.
		mine, n := &newestFirst{}, 0
		err := s.Scan(r.Context(), func(rec idempotency.Record) bool {
			if rec.State != idempotency.StateDone || rec.Answer.Outcome != idempotency.OutcomeBusinessRejected ||
				(api != "" && rec.Key.API != api) || (clientID != "" && rec.Key.ClientID != clientID) {
				return true
			}
			n++
			// Keep the limit oldest: the heap's top is the newest kept.
			heap.Push(mine, viewOf(s.sharedStore, rec, now))
			if mine.Len() > limit {
				heap.Pop(mine)
			}
			return true
		})
		if err != nil {
			fails = append(fails, storeFailure(s.sharedStore, err))
			continue
		}
		total += n
		for _, v := range *mine {
			heap.Push(oldest, v)
			if oldest.Len() > limit {
				heap.Pop(oldest)
			}
		}
	}
	if len(stores) > 0 && len(fails) == len(stores) {
		return allStoresFailed(fails)
	}
	records := slices.Clone(*oldest)
	slices.SortFunc(records, compareCompletion)
	return writeJSON(w, adminapi.FollowUpAnswer{Records: records, Total: total, Limit: limit, Truncated: total > limit, Errors: fails})
}

// compareCompletion orders records by completion time, then by key, so the
// follow-up list is stable.
func compareCompletion(a, b adminapi.RecordView) int {
	if c := a.CompletedAt.Compare(b.CompletedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ClientID+"\x00"+a.API+"\x00"+a.RequestID, b.ClientID+"\x00"+b.API+"\x00"+b.RequestID)
}

// newestFirst is a heap whose top is the record completed last, so the
// follow-up scan keeps the limit oldest records in bounded memory.
type newestFirst []adminapi.RecordView

func (h newestFirst) Len() int           { return len(h) }
func (h newestFirst) Less(i, j int) bool { return compareCompletion(h[i], h[j]) > 0 }
func (h newestFirst) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }

// Push implements heap.Interface.
func (h *newestFirst) Push(x any) { *h = append(*h, x.(adminapi.RecordView)) }

// Pop implements heap.Interface.
func (h *newestFirst) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// keyFilters checks the optional api and client_id parameters.
func keyFilters(api, clientID string) (string, string, error) {
	if api != "" {
		if _, ok := notification.Lookup(api); !ok {
			return "", "", apiError(http.StatusBadRequest, "unknown api %q (known: %s)", api, strings.Join(notification.Names(), ", "))
		}
	}
	if len(clientID) > idempotency.MaxKeyFieldLen {
		return "", "", apiError(http.StatusBadRequest, "client_id is longer than %d bytes", idempotency.MaxKeyFieldLen)
	}
	return api, clientID, nil
}

// pooledStore is a store the admin API reads, with the Client-Ids and APIs
// served from it.
type pooledStore struct {
	*sharedStore
	// served are the keys registered by the handlers of every pooled store
	// with this name, sorted by Client-Id, then API.
	served []servedKey
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
		last.served = append(last.served, s.servedKeys()...)
	}
	for i := range out {
		slices.SortFunc(out[i].served, func(a, b servedKey) int {
			if c := strings.Compare(a.clientID, b.clientID); c != 0 {
				return c
			}
			return strings.Compare(a.api, b.api)
		})
		out[i].served = slices.Compact(out[i].served)
	}
	return out
}

// viewOf renders rec for the admin API, times in UTC.
func viewOf(s *sharedStore, rec idempotency.Record, now time.Time) adminapi.RecordView {
	v := adminapi.RecordView{
		Storage:   s.name,
		ClientID:  rec.Key.ClientID,
		API:       rec.Key.API,
		RequestID: rec.Key.RequestID,
		State:     rec.State.String(),
		ClaimedAt: utc(rec.ClaimedAt),
		ExpiresAt: utc(rec.ExpiresAt),
	}
	if rec.State == idempotency.StateDone {
		v.Outcome = string(rec.Answer.Outcome)
		v.ResultCode = rec.Answer.ResultCode
		v.BackendStatus = rec.Answer.BackendStatus
		v.CompletedAt = utc(rec.CompletedAt)
	} else {
		v.LeaseExpiry = utc(rec.LeaseExpiry)
		v.LeaseExpired = !rec.LeaseExpiry.IsZero() && !now.Before(rec.LeaseExpiry)
	}
	return v
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
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

// storeFailure describes a store that could not be read, with the status
// the endpoint answers if it is the only store: 503 when the store was
// closed meanwhile (a reload dropped its directory, or Caddy is stopping),
// is being reopened or reached, or its Redis server cannot be reached; 500
// otherwise.
func storeFailure(s *sharedStore, err error) adminapi.StoreError {
	failure := func(status int, format string, args ...any) adminapi.StoreError {
		return adminapi.StoreError{Storage: s.name, Error: fmt.Sprintf(format, args...), Status: status}
	}
	switch {
	case errors.Is(err, idempotency.ErrClosed):
		return failure(http.StatusServiceUnavailable, "the dws_notify store at %s was closed while it was being read (a config reload or shutdown is in progress); try again", s.name)
	case errors.Is(err, guard.ErrUnavailable), errors.Is(err, guard.ErrBroken):
		return failure(http.StatusServiceUnavailable, "the dws_notify store at %s cannot be read now: %v", s.name, err)
	case errors.As(err, new(net.Error)):
		// A Redis store whose server is down or unreachable.
		return failure(http.StatusServiceUnavailable, "the dws_notify store at %s is not reachable: %v", s.name, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return failure(http.StatusServiceUnavailable, "reading the dws_notify store at %s was cut short: %v", s.name, err)
	}
	return failure(http.StatusInternalServerError, "reading the dws_notify store at %s: %v", s.name, err)
}

// allStoresFailed is the answer when no store could be read: the failure
// of the one store as it is, or for several 503 when asking again may help
// for one of them at least, else 500, naming every store and its error.
func allStoresFailed(fails []adminapi.StoreError) error {
	if len(fails) == 1 {
		return caddy.APIError{HTTPStatus: fails[0].Status, Err: errors.New(fails[0].Error)}
	}
	status := http.StatusInternalServerError
	for _, f := range fails {
		if f.Status == http.StatusServiceUnavailable {
			status = f.Status
		}
	}
	return apiError(status, "none of the %d dws_notify stores could be read: %s", len(fails), failuresText(fails))
}

func failuresText(fails []adminapi.StoreError) string {
	msgs := make([]string, len(fails))
	for i, f := range fails {
		msgs[i] = f.Error
	}
	return strings.Join(msgs, "; ")
}

// errNoStores is the answer of a lookup on a Caddy whose config has no
// dws_notify handler.
func errNoStores() error {
	return apiError(http.StatusNotFound, "no dws_notify store is open: the running config has no dws_notify handler")
}

func filterText(api, clientID string) string {
	var parts []string
	if api != "" {
		parts = append(parts, "api "+api)
	}
	if clientID != "" {
		parts = append(parts, "Client-Id "+clientID)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func storesText(stores []pooledStore) string {
	if len(stores) == 1 {
		return "the store at " + stores[0].name
	}
	return strconv.Itoa(len(stores)) + " stores"
}

func apiError(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

// Interface guards.
var (
	_ caddy.Module      = (*adminAPI)(nil)
	_ caddy.AdminRouter = (*adminAPI)(nil)
)
