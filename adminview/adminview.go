// Package adminview is the Caddy-free logic of the admin.api.dws_notify
// endpoints: how records and inbox items are rendered (the adminapi
// types), counted and ordered, which keys a requestId is looked up under,
// the checks of the query parameters, the redelivery's stale-add rule and
// the texts of a store that could not be read. The endpoints themselves
// (routing, the store pool, the scan slots, writing the answer) are in
// caddymodule (admin.go, adminqueue.go), which calls this package.
package adminview

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/guard"
	"github.com/dwsnotify/dws_notify/notification"
)

// Served is a Client-Id and notify API that a handler using a store
// accepts: the admin API looks the records of a requestId up by these
// keys (point reads) instead of scanning the store.
type Served struct {
	ClientID, API string
}

// SortServed sorts keys by Client-Id, then API, and drops repeats, as
// LookupKeys wants them.
func SortServed(keys []Served) []Served {
	slices.SortFunc(keys, func(a, b Served) int {
		if c := strings.Compare(a.ClientID, b.ClientID); c != 0 {
			return c
		}
		return strings.Compare(a.API, b.API)
	})
	return slices.Compact(keys)
}

// LookupKeys returns the keys under which a store may hold the records of
// requestID: for clientID when given, else for every served Client-Id;
// for api when given, else every API (with clientID) or every served API.
// served is sorted (SortServed).
func LookupKeys(served []Served, requestID, api, clientID string) []idempotency.Key {
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
			keys = append(keys, idempotency.Key{ClientID: k.ClientID, API: k.API, RequestID: requestID})
		case i == 0 || served[i-1].ClientID != k.ClientID: // served is sorted: each Client-Id once
			keys = append(keys, idempotency.Key{ClientID: k.ClientID, API: api, RequestID: requestID})
		}
	}
	return keys
}

// CheckKey checks the optional api and client_id parameters, then the
// length of requestID. Its errors are the text of a 400 answer.
func CheckKey(requestID, api, clientID string) error {
	if api != "" {
		if _, ok := notification.Lookup(api); !ok {
			return fmt.Errorf("unknown api %q (known: %s)", api, strings.Join(notification.Names(), ", "))
		}
	}
	if len(clientID) > idempotency.MaxKeyFieldLen {
		return fmt.Errorf("client_id is longer than %d bytes", idempotency.MaxKeyFieldLen)
	}
	if len(requestID) > idempotency.MaxKeyFieldLen {
		return fmt.Errorf("request_id is longer than %d bytes", idempotency.MaxKeyFieldLen)
	}
	return nil
}

// ParseLimit reads a limit parameter: def when v is empty, else a number
// from 1 to maxLimit. Its error is the text of a 400 answer.
func ParseLimit(v string, def, maxLimit int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		return 0, fmt.Errorf("limit must be a number from 1 to %d, not %q", maxLimit, v)
	}
	return n, nil
}

// CountRecord counts rec in c.
func CountRecord(c *adminapi.OutcomeCounts, rec idempotency.Record) {
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

// MergeCounts adds o to c.
func MergeCounts(c *adminapi.OutcomeCounts, o adminapi.OutcomeCounts) {
	c.InFlight += o.InFlight
	c.Accepted += o.Accepted
	c.BusinessRejected += o.BusinessRejected
	c.Queued += o.Queued
	c.Other += o.Other
	c.Total += o.Total
}

// FollowUp reports whether rec belongs on the follow-up list narrowed to
// api and clientID (each when given): acknowledged although the backend
// refused it for a business reason.
func FollowUp(rec idempotency.Record, api, clientID string) bool {
	return rec.State == idempotency.StateDone && rec.Answer.Outcome == idempotency.OutcomeBusinessRejected &&
		(api == "" || rec.Key.API == api) && (clientID == "" || rec.Key.ClientID == clientID)
}

// Record renders rec of the store named storage, times in UTC; now tells
// whether an in-flight record's lease has expired.
func Record(storage string, rec idempotency.Record, now time.Time) adminapi.RecordView {
	v := adminapi.RecordView{
		Storage:   storage,
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

// Item renders the inbox item it of the store named storage, times in UTC.
func Item(storage string, it idempotency.Item) adminapi.ItemView {
	v := adminapi.ItemView{
		Storage: storage, ClientID: it.Key.ClientID, API: it.Key.API, RequestID: it.Key.RequestID,
		State: it.State.String(), Attempts: it.Attempts,
		EnqueuedAt: utc(it.EnqueuedAt), RedeliveredAt: utc(it.RedeliveredAt), DueAt: utc(it.DueAt),
		LastStatus: it.LastStatus, LastReason: it.LastReason, FinishedAt: utc(it.FinishedAt),
		HasPayload: it.HasPayload, ExpiresAt: utc(it.ExpiresAt),
	}
	if it.State == idempotency.ItemLeased {
		v.LeaseExpiry = utc(it.LeaseExpiry)
	}
	return v
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// CountItem counts the inbox item it in v: by state, and, while it is
// queued, in Queued and Oldest.
func CountItem(v *adminapi.QueueStoreView, it idempotency.Item) {
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
}

// TrimDeadLetters orders ans.Items oldest first, sets Total and keeps at
// most ans.Limit of them (Truncated when some were dropped).
func TrimDeadLetters(ans *adminapi.DeadLettersAnswer) {
	slices.SortFunc(ans.Items, func(x, y adminapi.ItemView) int { return x.EnqueuedAt.Compare(y.EnqueuedAt) })
	ans.Total = len(ans.Items)
	if ans.Total > ans.Limit {
		ans.Items, ans.Truncated = ans.Items[:ans.Limit], true
	}
}

// CompareCompletion orders records by completion time, then by key, so the
// follow-up list is stable.
func CompareCompletion(a, b adminapi.RecordView) int {
	if c := a.CompletedAt.Compare(b.CompletedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ClientID+"\x00"+a.API+"\x00"+a.RequestID, b.ClientID+"\x00"+b.API+"\x00"+b.RequestID)
}

// Oldest keeps the limit records completed first of those it is given, in
// bounded memory: the follow-up scan feeds it every matching record.
type Oldest struct {
	limit int
	h     newestFirst
}

// NewOldest returns an Oldest that keeps limit records.
func NewOldest(limit int) *Oldest {
	return &Oldest{limit: limit, h: newestFirst{}}
}

// Add offers v: it is kept if it is among the limit oldest so far.
func (o *Oldest) Add(v adminapi.RecordView) {
	// The heap's top is the newest kept.
	heap.Push(&o.h, v)
	if o.h.Len() > o.limit {
		heap.Pop(&o.h)
	}
}

// AddAll offers every record another Oldest kept.
func (o *Oldest) AddAll(from *Oldest) {
	for _, v := range from.h {
		o.Add(v)
	}
}

// Sorted returns the records kept, oldest first (never nil).
func (o *Oldest) Sorted() []adminapi.RecordView {
	records := slices.Clone(o.h)
	slices.SortFunc(records, CompareCompletion)
	return records
}

// newestFirst is a heap whose top is the record completed last.
type newestFirst []adminapi.RecordView

func (h newestFirst) Len() int           { return len(h) }
func (h newestFirst) Less(i, j int) bool { return CompareCompletion(h[i], h[j]) > 0 }
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

// The two DWS APIs whose order within one customer matters to a
// redelivery: an add and a remove of one customer can undo each other.
const (
	addAPI    = "addPaymentMethod"
	removeAPI = "removePaymentMethod"
)

// Overtakers holds, per order key, the later addPaymentMethod ([0]) and
// removePaymentMethod ([1]) of highest sequence number that the backend
// has or is getting (Overtakes), in a store's queue.
type Overtakers map[string][2]Overtaker

// Overtaker is an item that makes the earlier opposite item of its
// customer stale: its sequence number and state.
type Overtaker struct {
	Seq   uint64
	State idempotency.ItemState
}

// Overtakes reports whether an item in state s stands in the way of an
// earlier opposite item of its customer being redelivered: whether the
// backend has it or is getting it, so that the redelivered item, put back
// in its original place, would still reach the backend after it.
//
//   - delivered: the backend took it.
//   - leased: a deliverer holds it; the backend may be taking it now, and
//     the redelivered item, though put before it, is leased only once this
//     lease ends (one live lease per customer), so after it.
//   - business_rejected: the backend saw it and refused it, quite likely
//     because the earlier item never arrived (a remove of a card never
//     bound, an add of a card still bound); the earlier one arriving now
//     would still undo what the customer did last.
//
// A pending item is no obstacle: the redelivered item is put before it and
// delivered first, as it would have been. Nor is a dead one: the backend
// never answered it 2xx, and redelivered it goes back in its own place,
// after the earlier one (dead=all keeps that order).
func Overtakes(s idempotency.ItemState) bool {
	return s == idempotency.ItemDelivered || s == idempotency.ItemLeased || s == idempotency.ItemBusinessRejected
}

// dwsSide is 0 for an add, 1 for a remove, -1 for any other API.
func dwsSide(api string) int {
	switch api {
	case addAPI:
		return 0
	case removeAPI:
		return 1
	}
	return -1
}

// OvertakingAPIs are the APIs whose later items make an item of api
// stale (Overtakers.Stale), for the store's atomic check
// (idempotency.Queue.Redeliver): the opposite API of an add or remove,
// none for any other API.
func OvertakingAPIs(api string) []string {
	switch dwsSide(api) {
	case 0:
		return []string{removeAPI}
	case 1:
		return []string{addAPI}
	}
	return nil
}

// overtakenAfterScan is Stale's reason and code for an item the store
// refused with idempotency.ErrOvertaken: the later opposite item's state
// is not known, only that the backend has it or is getting it.
func overtakenAfterScan(it idempotency.Item) (reason, code string) {
	return stale(dwsSide(it.Key.API), "was or is being delivered")
}

// Note records it if it is an add or remove that Overtakes; a scan of
// the store's items feeds every item to it.
func (o Overtakers) Note(it idempotency.Item) {
	side := dwsSide(it.Key.API)
	if side < 0 || !Overtakes(it.State) {
		return
	}
	later := o[it.OrderKey]
	if it.Seq > later[side].Seq {
		later[side] = Overtaker{Seq: it.Seq, State: it.State}
		o[it.OrderKey] = later
	}
}

// Stale says why it must not be redelivered without force: an add that a
// later remove of the same customer has overtaken (Overtakes), or a
// remove that a later add has overtaken (the same card may have been
// bound again; the order key is the customer, not the card, so this errs
// on the side of asking). The reason names the state of the latest
// overtaker. It returns "" and the empty code for any other item.
func (o Overtakers) Stale(it idempotency.Item) (reason, code string) {
	side := dwsSide(it.Key.API)
	if side < 0 {
		return "", ""
	}
	later := o[it.OrderKey][1-side]
	if later.Seq <= it.Seq {
		return "", ""
	}
	return stale(side, overtakerHow(later.State))
}

// stale is the reason and code of an item on side (0 an add, 1 a
// remove) that a later opposite item of the same customer overtook; how
// says what became of that item.
func stale(side int, how string) (reason, code string) {
	const reason0 = "a later %s of the same customer %s: redelivered now, %s"
	if side == 0 {
		return fmt.Sprintf(reason0, removeAPI, how, "this would bind a card the customer removed"), adminapi.CodeLaterRemoveDelivered
	}
	return fmt.Sprintf(reason0, addAPI, how, "this could unbind a card the customer bound again"), adminapi.CodeLaterAddDelivered
}

// overtakerHow says what became of an overtaker in state (Overtakes).
func overtakerHow(state idempotency.ItemState) string {
	switch state {
	case idempotency.ItemLeased:
		return "is being delivered"
	case idempotency.ItemBusinessRejected:
		return "was refused by the backend (business_rejected)"
	}
	return "was delivered"
}

// StoreFailure describes the store named storage that could not be read,
// with the status the endpoint answers if it is the only store: 503 when
// the store was closed meanwhile (a reload dropped its directory, or Caddy
// is stopping), is being reopened or reached, or its Redis server cannot
// be reached; 500 otherwise.
func StoreFailure(storage string, err error) adminapi.StoreError {
	failure := func(status int, format string, args ...any) adminapi.StoreError {
		return adminapi.StoreError{Storage: storage, Error: fmt.Sprintf(format, args...), Status: status}
	}
	switch {
	case errors.Is(err, idempotency.ErrClosed):
		return failure(http.StatusServiceUnavailable, "the dws_notify store at %s was closed while it was being read (a config reload or shutdown is in progress); try again", storage)
	case errors.Is(err, guard.ErrUnavailable), errors.Is(err, guard.ErrBroken):
		return failure(http.StatusServiceUnavailable, "the dws_notify store at %s cannot be read now: %v", storage, err)
	case errors.As(err, new(net.Error)):
		// A Redis store whose server is down or unreachable.
		return failure(http.StatusServiceUnavailable, "the dws_notify store at %s is not reachable: %v", storage, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return failure(http.StatusServiceUnavailable, "reading the dws_notify store at %s was cut short: %v", storage, err)
	}
	return failure(http.StatusInternalServerError, "reading the dws_notify store at %s: %v", storage, err)
}

// AllFailed is the answer when no store could be read, an *Error: the
// failure of the one store as it is, or for several 503 when asking again
// may help for one of them at least, else 500, naming every store and its
// error.
func AllFailed(fails []adminapi.StoreError) error {
	if len(fails) == 1 {
		return &Error{Status: fails[0].Status, Err: errors.New(fails[0].Error)}
	}
	status := http.StatusInternalServerError
	for _, f := range fails {
		if f.Status == http.StatusServiceUnavailable {
			status = f.Status
		}
	}
	return &Error{Status: status, Err: fmt.Errorf("none of the %d dws_notify stores could be read: %s", len(fails), FailuresText(fails))}
}

// FailuresText joins the errors of fails.
func FailuresText(fails []adminapi.StoreError) string {
	msgs := make([]string, len(fails))
	for i, f := range fails {
		msgs[i] = f.Error
	}
	return strings.Join(msgs, "; ")
}

// FilterText describes the api and Client-Id a lookup was narrowed to, if
// any, as " (api NAME, Client-Id ID)".
func FilterText(api, clientID string) string {
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

// StoresText names the stores looked in: the one store by its name, else
// how many.
func StoresText(names []string) string {
	if len(names) == 1 {
		return "the store at " + names[0]
	}
	return strconv.Itoa(len(names)) + " stores"
}
