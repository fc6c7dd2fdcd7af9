package adminview

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/notification"
)

// Store is what the endpoints use of a store (an idempotency/guard
// Store): reads, and Redeliver for redelivery.
type Store interface {
	Get(ctx context.Context, key idempotency.Key) (idempotency.Record, bool, error)
	Scan(ctx context.Context, fn func(idempotency.Record) bool) error
	ScanItems(ctx context.Context, fn func(idempotency.Item) bool) error
	Item(ctx context.Context, key idempotency.Key) (idempotency.Item, bool, error)
	Redeliver(ctx context.Context, key idempotency.Key, overtakers ...string) error
}

// Source is a store the endpoints read: its name (the storage), the keys
// served from it (sorted: SortServed) and the store.
type Source struct {
	Name   string
	Served []Served
	Store
}

// Error is an error answer: its HTTP status, the code a client acts on
// (sent as adminapi.ErrorCodeHeader; "" for none) and its message.
type Error struct {
	Status int
	Code   string
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the message's error.
func (e *Error) Unwrap() error { return e.Err }

// FindRecords reads the records of requestID in every source by key,
// never scanning (LookupKeys), the sources at once; one that fails is
// listed in Errors and the others still answer. It is an error (an
// *Error) when nothing was found: 404 with adminapi.CodeNoRecord when
// every source was read, else 503 or AllFailed's.
func FindRecords(ctx context.Context, sources []Source, requestID, api, clientID string, now time.Time) (adminapi.RecordsAnswer, error) {
	type result struct {
		records []adminapi.RecordView
		err     error
	}
	results := make([]result, len(sources))
	var wg sync.WaitGroup
	for i, s := range sources {
		wg.Go(func() {
			for _, key := range LookupKeys(s.Served, requestID, api, clientID) {
				rec, found, err := s.Get(ctx, key)
				if err != nil {
					results[i].err = err
					return
				}
				if !found {
					continue
				}
				v := Record(s.Name, rec, now)
				if rec.State == idempotency.StateDone && rec.Answer.Outcome == idempotency.OutcomeQueued {
					// One more point read: the inbox item of the same key.
					// A failure keeps the record read (an operator in an
					// incident still sees it) and says the item is unknown.
					it, ok, err := s.Item(ctx, key)
					if err != nil {
						v.InboxError = StoreFailure(s.Name, err).Error
					} else if ok {
						iv := Item(s.Name, it)
						v.Inbox = &iv
					}
				}
				results[i].records = append(results[i].records, v)
			}
		})
	}
	wg.Wait()
	ans := adminapi.RecordsAnswer{Records: []adminapi.RecordView{}, Errors: []adminapi.StoreError{}}
	var read, all []string
	for i, res := range results {
		all = append(all, sources[i].Name)
		ans.Records = append(ans.Records, res.records...)
		if res.err != nil {
			ans.Errors = append(ans.Errors, StoreFailure(sources[i].Name, res.err))
		} else {
			read = append(read, sources[i].Name)
		}
	}
	switch {
	case len(ans.Records) > 0:
		return ans, nil
	case len(ans.Errors) == len(sources):
		return ans, AllFailed(ans.Errors)
	case len(ans.Errors) > 0:
		return ans, &Error{Status: http.StatusServiceUnavailable, Err: fmt.Errorf("no record of requestId %q%s in %s, but not every store could be read, and the record may be in one that could not (ask again): %s",
			requestID, FilterText(api, clientID), StoresText(read), FailuresText(ans.Errors))}
	}
	return ans, &Error{Status: http.StatusNotFound, Code: adminapi.CodeNoRecord,
		Err: fmt.Errorf("no record of requestId %q%s in %s: %s%s", requestID, FilterText(api, clientID), StoresText(all), noRecordReasons, antomHint(sources, api, clientID))}
}

// noRecordReasons is why a lookup that read every store found no record:
// what the 404 of FindRecords says after naming the stores, before the
// Antom note (antomHint) if there is one.
const noRecordReasons = "it never arrived, was refused before the store (signature or field checks; see the gateway's log), was released after the backend failed (DWS resends it), or its retention ended"

// antomHint is what a lookup that found nothing adds, as a sentence of its
// own after the reasons (what most readers need comes first), when it
// looked under an Antom API (api, or one served for clientID or by any
// source): an Antom notification is recorded under its composed key (its
// key fields' values joined by ":"), not under one of its ids alone. The
// stores read records by whole keys only (a prefix lookup would scan every
// Redis key), so it says where the key is found instead of finding it. It
// shows the key's form for one API (the first by name) and does not list
// the others: a config serving every Antom API would make the line
// unreadable, and docs/antom.md lists each API's key.
func antomHint(sources []Source, api, clientID string) string {
	first := ""
	consider := func(name string) {
		if a, ok := notification.Lookup(name); ok && a.Family() == notification.Antom && (first == "" || name < first) {
			first = name
		}
	}
	if api != "" {
		consider(api)
	}
	for _, s := range sources {
		for _, k := range s.Served {
			if api == "" && (clientID == "" || k.ClientID == clientID) {
				consider(k.API)
			}
		}
	}
	if first == "" {
		return ""
	}
	a, _ := notification.Lookup(first)
	return fmt.Sprintf(". An Antom notification is recorded under its composed key, not one of its ids (e.g. %s for %s): look it up by that key, from its log line's key field or its X-Dws-Idempotency-Key header",
		strings.Join(a.KeyFields(), ":"), a.Name())
}

// Stats counts the records of every source by outcome, per source and in
// total. It is an error (AllFailed's) when no source could be read.
func Stats(ctx context.Context, sources []Source) (adminapi.StatsAnswer, error) {
	ans := adminapi.StatsAnswer{Stores: []adminapi.StoreStats{}, Errors: []adminapi.StoreError{}}
	for _, s := range sources {
		st := adminapi.StoreStats{Storage: s.Name}
		err := s.Scan(ctx, func(rec idempotency.Record) bool {
			CountRecord(&st.OutcomeCounts, rec)
			return true
		})
		if err != nil {
			ans.Errors = append(ans.Errors, StoreFailure(s.Name, err))
			continue
		}
		ans.Stores = append(ans.Stores, st)
		MergeCounts(&ans.Total, st.OutcomeCounts)
	}
	if len(sources) > 0 && len(ans.Errors) == len(sources) {
		return ans, AllFailed(ans.Errors)
	}
	return ans, nil
}

// FollowUps lists the records of every source acknowledged although the
// backend refused them for a business reason (FollowUp, narrowed to api
// and clientID), the limit oldest of them, oldest first. A source's
// records count only if its whole scan worked. It is an error (AllFailed's)
// when no source could be read.
func FollowUps(ctx context.Context, sources []Source, limit int, api, clientID string, now time.Time) (adminapi.FollowUpAnswer, error) {
	oldest := NewOldest(limit)
	total := 0
	fails := []adminapi.StoreError{}
	for _, s := range sources {
		mine, n := NewOldest(limit), 0
		err := s.Scan(ctx, func(rec idempotency.Record) bool {
			if FollowUp(rec, api, clientID) {
				n++
				mine.Add(Record(s.Name, rec, now))
			}
			return true
		})
		if err != nil {
			fails = append(fails, StoreFailure(s.Name, err))
			continue
		}
		total += n
		oldest.AddAll(mine)
	}
	if len(sources) > 0 && len(fails) == len(sources) {
		return adminapi.FollowUpAnswer{}, AllFailed(fails)
	}
	return adminapi.FollowUpAnswer{Records: oldest.Sorted(), Total: total, Limit: limit, Truncated: total > limit, Errors: fails}, nil
}

// Queue counts the inbox items of every source by state (CountItem). It
// is an error (AllFailed's) when no source could be read.
func Queue(ctx context.Context, sources []Source) (adminapi.QueueAnswer, error) {
	ans := adminapi.QueueAnswer{Stores: []adminapi.QueueStoreView{}, Errors: []adminapi.StoreError{}}
	for _, s := range sources {
		v := adminapi.QueueStoreView{Storage: s.Name}
		err := s.ScanItems(ctx, func(it idempotency.Item) bool {
			CountItem(&v, it)
			return true
		})
		if err != nil {
			ans.Errors = append(ans.Errors, StoreFailure(s.Name, err))
			continue
		}
		ans.Stores = append(ans.Stores, v)
	}
	if len(sources) > 0 && len(ans.Errors) == len(sources) {
		return ans, AllFailed(ans.Errors)
	}
	return ans, nil
}

// DeadLetters lists the dead letters of every source, the limit oldest,
// oldest first (TrimDeadLetters). It is an error (AllFailed's) when no
// source could be read.
func DeadLetters(ctx context.Context, sources []Source, limit int) (adminapi.DeadLettersAnswer, error) {
	ans := adminapi.DeadLettersAnswer{Items: []adminapi.ItemView{}, Limit: limit, Errors: []adminapi.StoreError{}}
	for _, s := range sources {
		var mine []adminapi.ItemView
		err := s.ScanItems(ctx, func(it idempotency.Item) bool {
			if it.State == idempotency.ItemDead {
				mine = append(mine, Item(s.Name, it))
			}
			return true
		})
		if err != nil {
			ans.Errors = append(ans.Errors, StoreFailure(s.Name, err))
			continue
		}
		ans.Items = append(ans.Items, mine...)
	}
	if len(sources) > 0 && len(ans.Errors) == len(sources) {
		return ans, AllFailed(ans.Errors)
	}
	TrimDeadLetters(&ans)
	return ans, nil
}

// RedeliverQuery says which dead letters to put back in the queue: those
// of RequestID (narrowed to API and ClientID when given), or, with All,
// every one. Force redelivers a stale add or remove too (Overtakers.Stale).
type RedeliverQuery struct {
	RequestID, API, ClientID string
	All, Force               bool
}

// Redeliver puts the dead letters q names back in each source's queue.
// A stale add or remove is skipped unless q.Force; a dead letter whose payload
// expired is skipped. After each source, once any was redelivered,
// requeued(i) is called with the source's index (to wake its inbox). The
// error is an *Error: for a requestId, 409 when all it found was skipped
// (notRedelivered) or is not a dead letter, 404 when nothing was found
// (adminapi.CodeNoRecord); AllFailed's when no source could be read.
func Redeliver(ctx context.Context, sources []Source, q RedeliverQuery, requeued func(i int)) (adminapi.RedeliverAnswer, error) {
	ans := adminapi.RedeliverAnswer{Redelivered: []adminapi.ItemView{}, Skipped: []adminapi.SkippedItem{}, Errors: []adminapi.StoreError{}}
	var refusal error
	found := 0
	for i, s := range sources {
		skip := func(it idempotency.Item, reason, code string) {
			ans.Skipped = append(ans.Skipped, adminapi.SkippedItem{ItemView: Item(s.Name, it), Reason: reason, Code: code})
		}
		var dead []idempotency.Item
		var err error
		if q.All {
			err = s.ScanItems(ctx, func(it idempotency.Item) bool {
				if it.State == idempotency.ItemDead {
					dead = append(dead, it)
				}
				return true
			})
		} else {
			for _, key := range LookupKeys(s.Served, q.RequestID, q.API, q.ClientID) {
				it, ok, gerr := s.Item(ctx, key)
				if gerr != nil {
					err = gerr
					break
				}
				if ok {
					found++
					if it.State != idempotency.ItemDead {
						refusal = &Error{Status: http.StatusConflict, Err: fmt.Errorf("the notification %s %s of Client-Id %s is %s, not a dead letter", it.Key.API, it.Key.RequestID, it.Key.ClientID, it.State)}
						continue
					}
					dead = append(dead, it)
				}
			}
		}
		if err == nil && len(dead) > 0 && !q.Force {
			later := Overtakers{}
			if err = s.ScanItems(ctx, func(it idempotency.Item) bool { later.Note(it); return true }); err == nil {
				dead = slices.DeleteFunc(dead, func(it idempotency.Item) bool {
					reason, code := later.Stale(it)
					if reason == "" {
						return false
					}
					skip(it, reason, code)
					return true
				})
			}
		}
		for _, it := range dead {
			if err != nil {
				break
			}
			var over []string
			if !q.Force {
				over = OvertakingAPIs(it.Key.API)
			}
			switch rerr := s.Redeliver(ctx, it.Key, over...); {
			case rerr == nil:
				it.State = idempotency.ItemPending
				ans.Redelivered = append(ans.Redelivered, Item(s.Name, it))
			case errors.Is(rerr, idempotency.ErrOvertaken):
				// A later opposite item got leased or finished after the
				// scan above: the store refused it in the same step.
				reason, code := overtakenAfterScan(it)
				skip(it, reason, code)
			case errors.Is(rerr, idempotency.ErrPayloadExpired):
				skip(it, expiredReason, adminapi.CodePayloadExpired)
			case errors.Is(rerr, idempotency.ErrNotDeadLetter):
			default:
				err = rerr
			}
		}
		if err != nil {
			ans.Errors = append(ans.Errors, StoreFailure(s.Name, err))
		}
		if len(ans.Redelivered) > 0 {
			requeued(i)
		}
	}
	switch {
	case !q.All && len(ans.Redelivered) == 0 && len(ans.Skipped) > 0:
		return ans, notRedelivered(q.RequestID, ans.Skipped, len(sources) > 1)
	case !q.All && len(ans.Redelivered) == 0 && refusal != nil:
		return ans, refusal
	case !q.All && found == 0 && len(ans.Errors) == 0:
		names := make([]string, len(sources))
		for i, s := range sources {
			names[i] = s.Name
		}
		return ans, &Error{Status: http.StatusNotFound, Code: adminapi.CodeNoRecord,
			Err: fmt.Errorf("no queued notification of requestId %q%s in %s", q.RequestID, FilterText(q.API, q.ClientID), StoresText(names))}
	case len(ans.Errors) == len(sources):
		return ans, AllFailed(ans.Errors)
	}
	return ans, nil
}

// expiredReason is why a dead letter whose payload expired is skipped.
const expiredReason = "its payload expired with the dead letters' retention"

// maxListed bounds the dead letters a refusal lists.
const maxListed = 5

// notRedelivered is the 409 answer of a redelivery of requestID that left
// every dead letter it found dead: skipped, each with its code
// (adminapi.CodePayloadExpired, or a stale code of Overtakers.Stale). The
// message lists them (API, Client-Id, the store when there are several,
// the reason), at most maxListed. The code is the stale one when a single
// stale code is among them (stale beats expired), CodeNotRedelivered
// when there are several, CodePayloadExpired when every one expired. It
// ends with adminapi.RedeliverForceHint only when force would redeliver
// every one (each was skipped as stale).
func notRedelivered(requestID string, skipped []adminapi.SkippedItem, stores bool) *Error {
	code, forceable := "", true
	for _, sk := range skipped {
		c := sk.Code
		switch {
		case !adminapi.Stale(c):
			forceable = false
		case code == "" || code == c:
			code = c
		default:
			code = adminapi.CodeNotRedelivered
		}
	}
	if code == "" {
		code = adminapi.CodePayloadExpired
	}
	var b strings.Builder
	fmt.Fprintf(&b, "requestId %q was not redelivered: ", requestID)
	for i, s := range skipped {
		if i == maxListed {
			fmt.Fprintf(&b, "; and %d more", len(skipped)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "the %s of Client-Id %q", s.API, s.ClientID)
		if stores {
			fmt.Fprintf(&b, " in %s", s.Storage)
		}
		fmt.Fprintf(&b, " [%s]", s.Reason)
	}
	if forceable {
		b.WriteString(" " + adminapi.RedeliverForceHint)
	}
	return &Error{Status: http.StatusConflict, Code: code, Err: errors.New(b.String())}
}
