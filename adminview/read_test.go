package adminview

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/notification"
)

// memReader is a store in memory; err fails every read.
type memReader struct {
	records []idempotency.Record
	items   []idempotency.Item
	err     error
	// beforeRedeliver, when set, runs at the start of each Redeliver: the
	// queue moving on between a scan and the redelivery.
	beforeRedeliver func(m *memReader)
}

func (m *memReader) Get(_ context.Context, key idempotency.Key) (idempotency.Record, bool, error) {
	if m.err != nil {
		return idempotency.Record{}, false, m.err
	}
	for _, r := range m.records {
		if r.Key == key {
			return r, true, nil
		}
	}
	return idempotency.Record{}, false, nil
}

func (m *memReader) Scan(_ context.Context, fn func(idempotency.Record) bool) error {
	if m.err != nil {
		return m.err
	}
	for _, r := range m.records {
		if !fn(r) {
			break
		}
	}
	return nil
}

func (m *memReader) ScanItems(_ context.Context, fn func(idempotency.Item) bool) error {
	if m.err != nil {
		return m.err
	}
	for _, it := range m.items {
		if !fn(it) {
			break
		}
	}
	return nil
}

func TestFindRecords(t *testing.T) {
	ctx, now := context.Background(), time.Now()
	key := idempotency.Key{ClientID: "C", API: "addPaymentMethod", RequestID: "r1"}
	served := []Served{{ClientID: "C", API: "addPaymentMethod"}}
	found := Source{Name: "/a", Served: served, Store: &memReader{records: []idempotency.Record{{Key: key, State: idempotency.StateDone}}}}
	empty := Source{Name: "/b", Served: served, Store: &memReader{}}
	broken := Source{Name: "/c", Served: served, Store: &memReader{err: errors.New("disk on fire")}}

	ans, err := FindRecords(ctx, []Source{found, broken}, "r1", "", "", now)
	if err != nil || len(ans.Records) != 1 || ans.Records[0].Storage != "/a" || len(ans.Errors) != 1 {
		t.Errorf("found in one, the other broken: %+v, %v; want the record and the failure", ans, err)
	}
	var e *Error
	_, err = FindRecords(ctx, []Source{empty}, "r2", "", "", now)
	if !errors.As(err, &e) || e.Status != http.StatusNotFound || e.Code != adminapi.CodeNoRecord || !strings.Contains(err.Error(), "in the store at /b") {
		t.Errorf("not found: %#v", err)
	}
	_, err = FindRecords(ctx, []Source{empty, broken}, "r2", "", "C", now)
	if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || e.Code != "" || !strings.Contains(err.Error(), "(Client-Id C) in the store at /b, but not every store could be read") {
		t.Errorf("not found, a store broken: %#v", err)
	}
	_, err = FindRecords(ctx, []Source{broken}, "r2", "", "", now)
	if !errors.As(err, &e) || e.Status != http.StatusInternalServerError {
		t.Errorf("the only store broken: %#v", err)
	}
}

// TestFindRecordsNoRecordMessage: the 404 names the stores, then the
// reasons, then (only when an Antom API was looked under) the Antom note
// as a sentence of its own: the reasons are what a reader of a refused
// notification needs, and must not come after the long note.
func TestFindRecordsNoRecordMessage(t *testing.T) {
	// The note names the key's form through the first Antom API served
	// (by name), and where the operator finds a notification's key.
	const antomNote = `. An Antom notification is recorded under its composed key, not one of its ids (e.g. captureId:result.resultStatus for notifyCapture): look it up by that key, from its log line's key field or its X-Dws-Idempotency-Key header`
	ctx, now := context.Background(), time.Now()
	reasons := ": it never arrived, was refused before the store (signature or field checks; see the gateway's log), was released after the backend failed (DWS resends it), or its retention ended"
	dws := Source{Name: "/d", Served: []Served{{ClientID: "C", API: "addPaymentMethod"}}, Store: &memReader{}}
	antom := Source{Name: "/a", Served: []Served{{ClientID: "C", API: "addPaymentMethod"}, {ClientID: "C", API: "notifyPayment"}, {ClientID: "C", API: "notifyCapture"}}, Store: &memReader{}}

	_, err := FindRecords(ctx, []Source{dws}, "r1", "", "", now)
	if want := `no record of requestId "r1" in the store at /d` + reasons; err == nil || err.Error() != want {
		t.Errorf("DWS only:\n got %v\nwant %s", err, want)
	}
	_, err = FindRecords(ctx, []Source{antom}, "r1", "", "", now)
	want := `no record of requestId "r1" in the store at /a` + reasons +
		antomNote
	if err == nil || err.Error() != want {
		t.Errorf("Antom served:\n got %v\nwant %s", err, want)
	}
	// Every Antom API served (as Caddyfile.example does): the note does
	// not grow with them, so the line stays readable.
	every := Source{Name: "/a", Store: &memReader{}}
	for _, name := range notification.Names(notification.Antom) {
		every.Served = append(every.Served, Served{ClientID: "C", API: name})
	}
	_, err = FindRecords(ctx, []Source{every}, "r1", "", "", now)
	if want := `no record of requestId "r1" in the store at /a` + reasons + antomNote; err == nil || err.Error() != want {
		t.Errorf("every Antom API served:\n got %v\nwant %s", err, want)
	}
	if len(antomNote) > 240 {
		t.Errorf("the Antom note is %d bytes; keep it under 240", len(antomNote))
	}
	// Narrowed to a DWS API, the Antom note is not added.
	_, err = FindRecords(ctx, []Source{antom}, "r1", "addPaymentMethod", "", now)
	if want := `no record of requestId "r1" (api addPaymentMethod) in the store at /a` + reasons; err == nil || err.Error() != want {
		t.Errorf("narrowed to a DWS API:\n got %v\nwant %s", err, want)
	}
}

func TestScansOverSources(t *testing.T) {
	ctx, now := context.Background(), time.Now()
	rejected := func(id string, at time.Duration) idempotency.Record {
		return idempotency.Record{Key: idempotency.Key{ClientID: "C", API: "addPaymentMethod", RequestID: id}, State: idempotency.StateDone,
			CompletedAt: now.Add(at), Answer: idempotency.Answer{Outcome: idempotency.OutcomeBusinessRejected}}
	}
	a := Source{Name: "/a", Store: &memReader{
		records: []idempotency.Record{rejected("a3", -1*time.Minute), rejected("a1", -3*time.Minute), {State: idempotency.StateInFlight}},
		items:   []idempotency.Item{{State: idempotency.ItemDead, EnqueuedAt: now.Add(-time.Hour)}, {State: idempotency.ItemPending, EnqueuedAt: now}},
	}}
	b := Source{Name: "/b", Store: &memReader{records: []idempotency.Record{rejected("b2", -2*time.Minute)},
		items: []idempotency.Item{{State: idempotency.ItemDead, EnqueuedAt: now.Add(-2 * time.Hour)}}}}
	broken := Source{Name: "/c", Store: &memReader{err: context.Canceled}}

	stats, err := Stats(ctx, []Source{a, b, broken})
	if err != nil || stats.Total.Total != 4 || stats.Total.BusinessRejected != 3 || stats.Total.InFlight != 1 || len(stats.Stores) != 2 || len(stats.Errors) != 1 {
		t.Errorf("Stats: %+v, %v", stats, err)
	}
	fu, err := FollowUps(ctx, []Source{a, b}, 2, "", "", now)
	if err != nil || fu.Total != 3 || !fu.Truncated || len(fu.Records) != 2 || fu.Records[0].RequestID != "a1" || fu.Records[1].RequestID != "b2" {
		t.Errorf("FollowUps: %+v, %v; want a1 and b2 of 3", fu, err)
	}
	q, err := Queue(ctx, []Source{a, b})
	if err != nil || len(q.Stores) != 2 || q.Stores[0].Queued != 1 || q.Stores[1].States.Dead != 1 {
		t.Errorf("Queue: %+v, %v", q, err)
	}
	dl, err := DeadLetters(ctx, []Source{a, b}, 10)
	if err != nil || dl.Total != 2 || dl.Items[0].Storage != "/b" {
		t.Errorf("DeadLetters: %+v, %v; want both, /b's older one first", dl, err)
	}
	var e *Error
	for name, f := range map[string]func() error{
		"Stats":       func() error { _, err := Stats(ctx, []Source{broken}); return err },
		"FollowUps":   func() error { _, err := FollowUps(ctx, []Source{broken}, 1, "", "", now); return err },
		"Queue":       func() error { _, err := Queue(ctx, []Source{broken}); return err },
		"DeadLetters": func() error { _, err := DeadLetters(ctx, []Source{broken}, 1); return err },
	} {
		if err := f(); !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable {
			t.Errorf("%s with its only store cut short: %#v, want 503", name, err)
		}
	}
}

func (m *memReader) Item(_ context.Context, key idempotency.Key) (idempotency.Item, bool, error) {
	if m.err != nil {
		return idempotency.Item{}, false, m.err
	}
	for _, it := range m.items {
		if it.Key == key {
			return it, true, nil
		}
	}
	return idempotency.Item{}, false, nil
}

// Redeliver makes a dead letter pending, refusing it as a store does when
// a later item of its order key and of an API in overtakers Overtakes; a
// RedeliveredAt of time.Unix(1, 0) marks a payload that expired.
func (m *memReader) Redeliver(_ context.Context, key idempotency.Key, overtakers ...string) error {
	if m.beforeRedeliver != nil {
		m.beforeRedeliver(m)
	}
	for i := range m.items {
		if m.items[i].Key == key {
			if m.items[i].State != idempotency.ItemDead {
				return idempotency.ErrNotDeadLetter
			}
			for _, l := range m.items {
				if l.OrderKey == m.items[i].OrderKey && l.Seq > m.items[i].Seq && slices.Contains(overtakers, l.Key.API) && Overtakes(l.State) {
					return idempotency.ErrOvertaken
				}
			}
			if m.items[i].RedeliveredAt.Equal(time.Unix(1, 0)) { // marks an expired payload
				return idempotency.ErrPayloadExpired
			}
			m.items[i].State = idempotency.ItemPending
			return nil
		}
	}
	return idempotency.ErrNotDeadLetter
}

func TestRedeliver(t *testing.T) {
	ctx := context.Background()
	key := func(api, id string) idempotency.Key {
		return idempotency.Key{ClientID: "C", API: api, RequestID: id}
	}
	served := SortServed([]Served{{"C", "addPaymentMethod"}, {"C", "removePaymentMethod"}})
	newSource := func() Source {
		return Source{Name: "/a", Served: served, Store: &memReader{items: []idempotency.Item{
			{Key: key("addPaymentMethod", "stale"), OrderKey: "o1", Seq: 1, State: idempotency.ItemDead},
			{Key: key("removePaymentMethod", "rm"), OrderKey: "o1", Seq: 2, State: idempotency.ItemDelivered},
			{Key: key("addPaymentMethod", "fresh"), OrderKey: "o2", Seq: 3, State: idempotency.ItemDead},
			{Key: key("addPaymentMethod", "expired"), OrderKey: "o3", Seq: 4, State: idempotency.ItemDead, RedeliveredAt: time.Unix(1, 0)},
			{Key: key("addPaymentMethod", "pending"), OrderKey: "o4", Seq: 5, State: idempotency.ItemPending},
			{Key: key("removePaymentMethod", "stale-rm"), OrderKey: "o5", Seq: 6, State: idempotency.ItemDead},
			{Key: key("addPaymentMethod", "re-add"), OrderKey: "o5", Seq: 7, State: idempotency.ItemDelivered},
		}}}
	}
	var woken []int
	wake := func(i int) { woken = append(woken, i) }
	var e *Error

	ans, err := Redeliver(ctx, []Source{newSource()}, RedeliverQuery{All: true}, wake)
	if err != nil || len(ans.Redelivered) != 1 || ans.Redelivered[0].RequestID != "fresh" || ans.Redelivered[0].State != idempotency.ItemPending.String() ||
		len(ans.Skipped) != 3 || len(woken) != 1 {
		t.Errorf("dead=all: %+v, %v, woken %v; want fresh redelivered, the stale add, the stale remove and the expired one skipped, the inbox woken", ans, err, woken)
	}
	_, err = Redeliver(ctx, []Source{newSource()}, RedeliverQuery{RequestID: "stale-rm"}, wake)
	if !errors.As(err, &e) || e.Status != http.StatusConflict || e.Code != adminapi.CodeLaterAddDelivered ||
		err.Error() != `requestId "stale-rm" was not redelivered: the removePaymentMethod of Client-Id "C" [a later addPaymentMethod of the same customer was delivered: redelivered now, this could unbind a card the customer bound again] (force=1 redelivers anyway)` {
		t.Errorf("a stale remove: %#v, want 409 with its code and reason", err)
	}
	if ans, err := Redeliver(ctx, []Source{newSource()}, RedeliverQuery{RequestID: "stale-rm", Force: true}, wake); err != nil || len(ans.Redelivered) != 1 {
		t.Errorf("a stale remove with force: %+v, %v", ans, err)
	}
	_, err = Redeliver(ctx, []Source{newSource()}, RedeliverQuery{RequestID: "stale"}, wake)
	if !errors.As(err, &e) || e.Status != http.StatusConflict || e.Code != adminapi.CodeLaterRemoveDelivered ||
		!strings.Contains(err.Error(), "a later removePaymentMethod of the same customer was delivered") || !strings.HasSuffix(err.Error(), adminapi.RedeliverForceHint) {
		t.Errorf("a stale add: %#v, want 409 with its code and reason", err)
	}
	if ans, err := Redeliver(ctx, []Source{newSource()}, RedeliverQuery{RequestID: "stale", Force: true}, wake); err != nil || len(ans.Redelivered) != 1 {
		t.Errorf("a stale add with force: %+v, %v", ans, err)
	}
	// An expired payload: its own code, and no offer of force, which
	// cannot help. Before, it was a 409 with no code and an empty reason.
	_, err = Redeliver(ctx, []Source{newSource()}, RedeliverQuery{RequestID: "expired"}, wake)
	if !errors.As(err, &e) || e.Status != http.StatusConflict || e.Code != adminapi.CodePayloadExpired ||
		err.Error() != `requestId "expired" was not redelivered: the addPaymentMethod of Client-Id "C" [`+expiredReason+`]` {
		t.Errorf("an expired payload: %#v, want 409 %s, no force", err, adminapi.CodePayloadExpired)
	}
	_, err = Redeliver(ctx, []Source{newSource()}, RedeliverQuery{RequestID: "pending"}, wake)
	if !errors.As(err, &e) || e.Status != http.StatusConflict || e.Code != "" || !strings.Contains(err.Error(), "is pending, not a dead letter") {
		t.Errorf("not a dead letter: %#v", err)
	}
	_, err = Redeliver(ctx, []Source{newSource()}, RedeliverQuery{RequestID: "nosuch", API: "addPaymentMethod"}, wake)
	if !errors.As(err, &e) || e.Status != http.StatusNotFound || e.Code != adminapi.CodeNoRecord || !strings.Contains(err.Error(), "(api addPaymentMethod) in the store at /a") {
		t.Errorf("not found: %#v", err)
	}
	_, err = Redeliver(ctx, []Source{{Name: "/b", Served: served, Store: &memReader{err: errors.New("disk on fire")}}}, RedeliverQuery{All: true}, wake)
	if !errors.As(err, &e) || e.Status != http.StatusInternalServerError {
		t.Errorf("the only store broken: %#v", err)
	}
}

// TestRedeliverOvertakenAfterScan: the later opposite item was pending
// when Redeliver scanned the queue and got leased before the store's
// redelivery; the store refuses it (idempotency.ErrOvertaken) and the
// answer is the same 409 as a refusal found by the scan, with force still
// offered. Force does not ask the store to check.
func TestRedeliverOvertakenAfterScan(t *testing.T) {
	ctx := context.Background()
	served := SortServed([]Served{{"C", addAPI}, {"C", removeAPI}})
	for _, tc := range []struct{ deadAPI, laterAPI, code string }{
		{addAPI, removeAPI, adminapi.CodeLaterRemoveDelivered},
		{removeAPI, addAPI, adminapi.CodeLaterAddDelivered},
	} {
		src := func() (Source, *memReader) {
			m := &memReader{
				items: []idempotency.Item{
					{Key: idempotency.Key{ClientID: "C", API: tc.deadAPI, RequestID: "r"}, OrderKey: "o", Seq: 1, State: idempotency.ItemDead},
					{Key: idempotency.Key{ClientID: "C", API: tc.laterAPI, RequestID: "r2"}, OrderKey: "o", Seq: 2, State: idempotency.ItemPending},
				},
				beforeRedeliver: func(m *memReader) { m.items[1].State = idempotency.ItemLeased },
			}
			return Source{Name: "/a", Served: served, Store: m}, m
		}
		s, m := src()
		_, err := Redeliver(ctx, []Source{s}, RedeliverQuery{RequestID: "r"}, func(int) {})
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusConflict || e.Code != tc.code ||
			!strings.Contains(err.Error(), "a later "+tc.laterAPI+" of the same customer was or is being delivered") || !strings.HasSuffix(err.Error(), adminapi.RedeliverForceHint) {
			t.Errorf("%s overtaken after the scan: %v, want 409 %s", tc.deadAPI, err, tc.code)
		}
		if m.items[0].State != idempotency.ItemDead {
			t.Errorf("%s overtaken after the scan is %v, want still dead", tc.deadAPI, m.items[0].State)
		}
		s, m = src()
		if ans, err := Redeliver(ctx, []Source{s}, RedeliverQuery{All: true}, func(int) {}); err != nil || len(ans.Skipped) != 1 || ans.Skipped[0].Code != tc.code || len(ans.Redelivered) != 0 || m.items[0].State != idempotency.ItemDead {
			t.Errorf("dead=all, %s overtaken after the scan: %+v, %v; want it skipped with %s and still dead", tc.deadAPI, ans, err, tc.code)
		}
		s, m = src()
		if ans, err := Redeliver(ctx, []Source{s}, RedeliverQuery{RequestID: "r", Force: true}, func(int) {}); err != nil || len(ans.Redelivered) != 1 || m.items[0].State != idempotency.ItemPending {
			t.Errorf("%s with force: %+v, %v", tc.deadAPI, ans, err)
		}
	}
}

// TestRedeliverSeveral: a requestId with several dead letters (one per
// Client-Id and API) all left dead: the refusal lists each, its code
// follows a fixed rule and force is offered only when it would redeliver
// every one. Before, the 409 carried the last one's code and reason only,
// and offered force for a mix of stale and expired.
func TestRedeliverSeveral(t *testing.T) {
	ctx := context.Background()
	// dead returns the dead letter "r" of api and Client-Id c, made stale
	// by a delivered later opposite item, or with its payload expired.
	dead := func(c, api string, expired bool) []idempotency.Item {
		it := idempotency.Item{Key: idempotency.Key{ClientID: c, API: api, RequestID: "r"}, OrderKey: c, Seq: 1, State: idempotency.ItemDead}
		if expired {
			it.RedeliveredAt = time.Unix(1, 0)
			return []idempotency.Item{it}
		}
		later := addAPI
		if api == addAPI {
			later = removeAPI
		}
		return []idempotency.Item{it, {Key: idempotency.Key{ClientID: c, API: later, RequestID: "r2"}, OrderKey: c, Seq: 2, State: idempotency.ItemDelivered}}
	}
	source := func(name string, items ...[]idempotency.Item) Source {
		var all []idempotency.Item
		var served []Served
		for _, its := range items {
			all = append(all, its...)
			served = append(served, Served{its[0].Key.ClientID, addAPI}, Served{its[0].Key.ClientID, removeAPI})
		}
		return Source{Name: name, Served: SortServed(served), Store: &memReader{items: all}}
	}
	for _, tc := range []struct {
		name    string
		sources []Source
		code    string
		msg     string
	}{
		{"stale and expired", []Source{source("/a", dead("C", addAPI, false), dead("D", addAPI, true))}, adminapi.CodeLaterRemoveDelivered,
			`requestId "r" was not redelivered: the addPaymentMethod of Client-Id "C" [a later removePaymentMethod of the same customer was delivered: redelivered now, this would bind a card the customer removed]; the addPaymentMethod of Client-Id "D" [` + expiredReason + `]`},
		{"a stale add and a stale remove", []Source{source("/a", dead("C", addAPI, false), dead("D", removeAPI, false))}, adminapi.CodeNotRedelivered,
			`requestId "r" was not redelivered: the addPaymentMethod of Client-Id "C" [a later removePaymentMethod of the same customer was delivered: redelivered now, this would bind a card the customer removed]; the removePaymentMethod of Client-Id "D" [a later addPaymentMethod of the same customer was delivered: redelivered now, this could unbind a card the customer bound again] (force=1 redelivers anyway)`},
		{"two stores, expired", []Source{source("/a", dead("C", removeAPI, true)), source("/b", dead("D", addAPI, true))}, adminapi.CodePayloadExpired,
			`requestId "r" was not redelivered: the removePaymentMethod of Client-Id "C" in /a [` + expiredReason + `]; the addPaymentMethod of Client-Id "D" in /b [` + expiredReason + `]`},
		{"many", []Source{source("/a", dead("C1", addAPI, false), dead("C2", addAPI, false), dead("C3", addAPI, false), dead("C4", addAPI, false),
			dead("C5", addAPI, false), dead("C6", addAPI, false), dead("C7", addAPI, false))}, adminapi.CodeLaterRemoveDelivered, ""},
	} {
		ans, err := Redeliver(ctx, tc.sources, RedeliverQuery{RequestID: "r"}, func(int) {})
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusConflict || e.Code != tc.code || len(ans.Redelivered) != 0 {
			t.Errorf("%s: %+v, %#v; want 409 %s", tc.name, ans, err, tc.code)
			continue
		}
		if tc.msg != "" && err.Error() != tc.msg {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, err, tc.msg)
		}
		if tc.msg == "" && (strings.Count(err.Error(), "[a later removePaymentMethod") != maxListed || !strings.HasSuffix(err.Error(), `; and 2 more `+adminapi.RedeliverForceHint)) {
			t.Errorf("%s: %s; want %d listed, and 2 more", tc.name, err, maxListed)
		}
	}
}

// itemFailing is a store whose records read and whose inbox items fail.
type itemFailing struct {
	memReader
	err error
}

func (f *itemFailing) Item(context.Context, idempotency.Key) (idempotency.Item, bool, error) {
	return idempotency.Item{}, false, f.err
}

// A queued record whose inbox item cannot be read is still answered, with
// the item's error; the store's other keys are still read.
func TestFindRecordsItemFails(t *testing.T) {
	ctx, now := context.Background(), time.Now()
	queued := idempotency.Record{Key: idempotency.Key{ClientID: "C", API: "addPaymentMethod", RequestID: "r1"},
		State: idempotency.StateDone, Answer: idempotency.Answer{Outcome: idempotency.OutcomeQueued}}
	other := idempotency.Record{Key: idempotency.Key{ClientID: "C", API: "removePaymentMethod", RequestID: "r1"},
		State: idempotency.StateDone, Answer: idempotency.Answer{Outcome: idempotency.OutcomeQueued}}
	served := []Served{{ClientID: "C", API: "addPaymentMethod"}, {ClientID: "C", API: "removePaymentMethod"}}
	src := Source{Name: "/a", Served: served, Store: &itemFailing{memReader: memReader{records: []idempotency.Record{queued, other}}, err: errors.New("disk on fire")}}
	ans, err := FindRecords(ctx, []Source{src}, "r1", "", "", now)
	if err != nil {
		t.Fatalf("FindRecords: %v", err)
	}
	if len(ans.Records) != 2 || len(ans.Errors) != 0 {
		t.Fatalf("answer %+v; want both records and no store error", ans)
	}
	for _, r := range ans.Records {
		if r.Inbox != nil || r.InboxError != "reading the dws_notify store at /a: disk on fire" {
			t.Errorf("record %s: inbox %v, inbox_error %q; want the item's error", r.API, r.Inbox, r.InboxError)
		}
	}
}
