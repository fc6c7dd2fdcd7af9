package adminview

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/notification"
)

func TestLookupKeys(t *testing.T) {
	served := SortServed([]Served{
		{ClientID: "B", API: "removePaymentMethod"},
		{ClientID: "A", API: "removePaymentMethod"},
		{ClientID: "A", API: "addPaymentMethod"},
		{ClientID: "A", API: "addPaymentMethod"},
	})
	if want := []Served{{"A", "addPaymentMethod"}, {"A", "removePaymentMethod"}, {"B", "removePaymentMethod"}}; !slices.Equal(served, want) {
		t.Fatalf("SortServed = %v, want %v", served, want)
	}
	keyText := func(keys []idempotency.Key) string {
		var parts []string
		for _, k := range keys {
			if k.RequestID != "r1" {
				t.Fatalf("key %+v lost the requestId", k)
			}
			parts = append(parts, k.ClientID+"/"+k.API)
		}
		return strings.Join(parts, " ")
	}
	for _, tc := range []struct {
		api, clientID, want string
	}{
		{"", "", "A/addPaymentMethod A/removePaymentMethod B/removePaymentMethod"},
		{"addPaymentMethod", "", "A/addPaymentMethod B/addPaymentMethod"},
		{"addPaymentMethod", "C", "C/addPaymentMethod"},
	} {
		if got := keyText(LookupKeys(served, "r1", tc.api, tc.clientID)); got != tc.want {
			t.Errorf("LookupKeys(api %q, client %q) = %s, want %s", tc.api, tc.clientID, got, tc.want)
		}
	}
	// A Client-Id without api: every known API, served or not.
	if got := LookupKeys(served, "r1", "", "C"); len(got) != len(notification.Names()) {
		t.Errorf("LookupKeys for an unserved Client-Id gave %d keys, want one per API (%d)", len(got), len(notification.Names()))
	}
}

func TestCheckKeyAndParseLimit(t *testing.T) {
	long := strings.Repeat("x", idempotency.MaxKeyFieldLen+1)
	for _, tc := range []struct {
		requestID, api, clientID, want string
	}{
		{"r", "addPaymentMethod", "C", ""},
		{"r", "nosuch", "C", `unknown api "nosuch"`},
		{"r", "", long, "client_id is longer than"},
		{long, "", "C", "request_id is longer than"},
		{long, "nosuch", "C", "unknown api"},
	} {
		err := CheckKey(tc.requestID, tc.api, tc.clientID)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckKey(%.10q, %q, %.10q) = %v, want %q", tc.requestID, tc.api, tc.clientID, err, tc.want)
		}
	}
	for _, tc := range []struct {
		v    string
		want int
	}{{"", 7}, {"1", 1}, {"50", 50}, {"0", -1}, {"51", -1}, {"x", -1}} {
		n, err := ParseLimit(tc.v, 7, 50)
		if tc.want < 0 {
			if err == nil || !strings.Contains(err.Error(), "from 1 to 50") {
				t.Errorf("ParseLimit(%q) = %d, %v; want an error naming the range", tc.v, n, err)
			}
		} else if err != nil || n != tc.want {
			t.Errorf("ParseLimit(%q) = %d, %v; want %d", tc.v, n, err, tc.want)
		}
	}
}

func TestCountRecordAndMerge(t *testing.T) {
	var c adminapi.OutcomeCounts
	for _, rec := range []idempotency.Record{
		{State: idempotency.StateInFlight},
		{State: idempotency.StateDone, Answer: idempotency.Answer{Outcome: idempotency.OutcomeAccepted}},
		{State: idempotency.StateDone, Answer: idempotency.Answer{Outcome: idempotency.OutcomeBusinessRejected}},
		{State: idempotency.StateDone, Answer: idempotency.Answer{Outcome: idempotency.OutcomeQueued}},
		{State: idempotency.StateDone, Answer: idempotency.Answer{Outcome: "something else"}},
	} {
		CountRecord(&c, rec)
	}
	want := adminapi.OutcomeCounts{InFlight: 1, Accepted: 1, BusinessRejected: 1, Queued: 1, Other: 1, Total: 5}
	if c != want {
		t.Fatalf("CountRecord: %+v, want %+v", c, want)
	}
	MergeCounts(&c, want)
	if c.Total != 10 || c.InFlight != 2 || c.Other != 2 || c.Queued != 2 {
		t.Errorf("MergeCounts: %+v, want every count doubled", c)
	}
}

func TestOldestKeepsTheLimitOldest(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	view := func(sec int, id string) adminapi.RecordView {
		return adminapi.RecordView{RequestID: id, CompletedAt: base.Add(time.Duration(sec) * time.Second)}
	}
	if got := NewOldest(3).Sorted(); got == nil || len(got) != 0 {
		t.Fatalf("an empty Oldest gave %#v, want an empty, non-nil list (JSON [])", got)
	}
	a, b := NewOldest(3), NewOldest(3)
	for _, v := range []adminapi.RecordView{view(9, "a9"), view(2, "a2"), view(5, "a5b"), view(7, "a7")} {
		a.Add(v)
	}
	for _, v := range []adminapi.RecordView{view(5, "a5a"), view(1, "b1"), view(8, "b8")} {
		b.Add(v)
	}
	all := NewOldest(3)
	all.AddAll(a)
	all.AddAll(b)
	var ids []string
	for _, v := range all.Sorted() {
		ids = append(ids, v.RequestID)
	}
	// Equal completion times are ordered by key.
	if got, want := strings.Join(ids, " "), "b1 a2 a5a"; got != want {
		t.Errorf("kept %s, want %s", got, want)
	}
}

func TestRecordAndItemViews(t *testing.T) {
	east := time.FixedZone("east", 8*3600)
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, east)
	key := idempotency.Key{ClientID: "C", API: "addPaymentMethod", RequestID: "r"}
	inFlight := Record("/data", idempotency.Record{Key: key, State: idempotency.StateInFlight, ClaimedAt: now.Add(-time.Minute), LeaseExpiry: now}, now)
	if !inFlight.LeaseExpired || inFlight.LeaseExpiry.Location() != time.UTC || inFlight.ClaimedAt.Location() != time.UTC || inFlight.Storage != "/data" {
		t.Errorf("in-flight view %+v: want the lease expired at now, times in UTC, the storage named", inFlight)
	}
	if !inFlight.ExpiresAt.IsZero() || !inFlight.CompletedAt.IsZero() {
		t.Errorf("in-flight view %+v: zero times must stay zero", inFlight)
	}
	done := Record("/data", idempotency.Record{Key: key, State: idempotency.StateDone, CompletedAt: now,
		Answer: idempotency.Answer{Outcome: idempotency.OutcomeBusinessRejected, ResultCode: "SUCCESS", BackendStatus: 422}}, now)
	if done.Outcome != string(idempotency.OutcomeBusinessRejected) || done.BackendStatus != 422 || done.LeaseExpired || !done.CompletedAt.Equal(now) {
		t.Errorf("done view %+v", done)
	}
	var q adminapi.QueueStoreView
	for i, st := range []idempotency.ItemState{idempotency.ItemPending, idempotency.ItemLeased, idempotency.ItemDelivered, idempotency.ItemDead, idempotency.ItemBusinessRejected} {
		CountItem(&q, idempotency.Item{Key: key, State: st, EnqueuedAt: now.Add(time.Duration(-i) * time.Minute)})
	}
	if q.Queued != 2 || q.States.Total != 5 || q.States.Dead != 1 || !q.Oldest.Equal(now.Add(-time.Minute)) || q.Oldest.Location() != time.UTC {
		t.Errorf("CountItem: %+v; want 2 queued (pending, leased), the oldest queued one a minute old in UTC", q)
	}
	if v := Item("/data", idempotency.Item{Key: key, State: idempotency.ItemDead, Attempts: 4, EnqueuedAt: now}); v.State != idempotency.ItemDead.String() || v.Attempts != 4 || v.EnqueuedAt.Location() != time.UTC {
		t.Errorf("Item view %+v", v)
	}
	ans := adminapi.DeadLettersAnswer{Limit: 2, Items: []adminapi.ItemView{{RequestID: "3", EnqueuedAt: now}, {RequestID: "1", EnqueuedAt: now.Add(-2 * time.Hour)}, {RequestID: "2", EnqueuedAt: now.Add(-time.Hour)}}}
	TrimDeadLetters(&ans)
	if ans.Total != 3 || !ans.Truncated || len(ans.Items) != 2 || ans.Items[0].RequestID != "1" || ans.Items[1].RequestID != "2" {
		t.Errorf("TrimDeadLetters: %+v; want the 2 oldest of 3, truncated", ans)
	}
}

func TestFollowUpFilter(t *testing.T) {
	rec := idempotency.Record{Key: idempotency.Key{ClientID: "C", API: "addPaymentMethod", RequestID: "r"}, State: idempotency.StateDone,
		Answer: idempotency.Answer{Outcome: idempotency.OutcomeBusinessRejected}}
	if !FollowUp(rec, "", "") || !FollowUp(rec, "addPaymentMethod", "C") {
		t.Error("a business-rejected record is not on the follow-up list")
	}
	if FollowUp(rec, "removePaymentMethod", "") || FollowUp(rec, "", "D") {
		t.Error("the api or client_id filter did not narrow the list")
	}
	rec.Answer.Outcome = idempotency.OutcomeAccepted
	if FollowUp(rec, "", "") {
		t.Error("an accepted record is on the follow-up list")
	}
}

func TestOvertakersStale(t *testing.T) {
	o := Overtakers{}
	item := func(api, order string, seq uint64, state idempotency.ItemState) idempotency.Item {
		return idempotency.Item{Key: idempotency.Key{API: api}, OrderKey: order, Seq: seq, State: state}
	}
	const add, rm = "addPaymentMethod", "removePaymentMethod"
	for _, it := range []idempotency.Item{
		item(rm, "o", 5, idempotency.ItemDelivered),
		item(rm, "o", 9, idempotency.ItemDead),
		item(add, "o", 7, idempotency.ItemDelivered),
		item(add, "o", 20, idempotency.ItemPending),
		item("notifyPayment", "o", 30, idempotency.ItemDelivered),
		item(add, "leased", 3, idempotency.ItemLeased),
		item(rm, "rejected", 3, idempotency.ItemBusinessRejected),
	} {
		o.Note(it)
	}
	want := Overtakers{
		"o":        {{Seq: 7, State: idempotency.ItemDelivered}, {Seq: 5, State: idempotency.ItemDelivered}},
		"leased":   {{Seq: 3, State: idempotency.ItemLeased}, {}},
		"rejected": {{}, {Seq: 3, State: idempotency.ItemBusinessRejected}},
	}
	if !maps.Equal(o, want) {
		t.Fatalf("Overtakers = %v, want %v: the delivered, leased and business-rejected adds and removes, not the pending or dead ones", o, want)
	}
	staleAdd := "a later removePaymentMethod of the same customer was delivered: redelivered now, this would bind a card the customer removed"
	staleRemove := "a later addPaymentMethod of the same customer was delivered: redelivered now, this could unbind a card the customer bound again"
	for _, tc := range []struct {
		it     idempotency.Item
		reason string
		code   string
	}{
		{item(add, "o", 4, idempotency.ItemDead), staleAdd, adminapi.CodeLaterRemoveDelivered},
		{item(add, "o", 6, idempotency.ItemDead), "", ""},
		{item(add, "other", 1, idempotency.ItemDead), "", ""},
		// A remove overtaken by a delivered add of its customer: the card
		// may have been bound again.
		{item(rm, "o", 6, idempotency.ItemDead), staleRemove, adminapi.CodeLaterAddDelivered},
		{item(rm, "o", 8, idempotency.ItemDead), "", ""},
		{item("notifyPayment", "o", 1, idempotency.ItemDead), "", ""},
		// Overtaken by an add being delivered now, or a remove the backend
		// refused.
		{item(rm, "leased", 1, idempotency.ItemDead), "a later addPaymentMethod of the same customer is being delivered: redelivered now, this could unbind a card the customer bound again", adminapi.CodeLaterAddDelivered},
		{item(add, "rejected", 2, idempotency.ItemDead), "a later removePaymentMethod of the same customer was refused by the backend (business_rejected): redelivered now, this would bind a card the customer removed", adminapi.CodeLaterRemoveDelivered},
	} {
		reason, code := o.Stale(tc.it)
		if reason != tc.reason || code != tc.code {
			t.Errorf("%s seq %d of %s: stale (%q, %q), want (%q, %q)", tc.it.Key.API, tc.it.Seq, tc.it.OrderKey, reason, code, tc.reason, tc.code)
		}
	}
}

func TestStoreFailureAndAllFailed(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		want   string
	}{
		{fmt.Errorf("scan: %w", idempotency.ErrClosed), http.StatusServiceUnavailable, "was closed while it was being read"},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, http.StatusServiceUnavailable, "is not reachable"},
		{context.Canceled, http.StatusServiceUnavailable, "was cut short"},
		{errors.New("disk on fire"), http.StatusInternalServerError, "reading the dws_notify store at /d: disk on fire"},
	} {
		f := StoreFailure("/d", tc.err)
		if f.Status != tc.status || f.Storage != "/d" || !strings.Contains(f.Error, tc.want) {
			t.Errorf("StoreFailure(%v) = %+v, want %d and %q", tc.err, f, tc.status, tc.want)
		}
	}
	one := []adminapi.StoreError{{Storage: "/a", Error: "broken", Status: 500}}
	var e *Error
	if err := AllFailed(one); !errors.As(err, &e) || e.Status != 500 || err.Error() != "broken" {
		t.Errorf("AllFailed(one) = %#v", err)
	}
	two := append(one, adminapi.StoreError{Storage: "/b", Error: "busy", Status: 503})
	if err := AllFailed(two); !errors.As(err, &e) || e.Status != 503 || err.Error() != "none of the 2 dws_notify stores could be read: broken; busy" {
		t.Errorf("AllFailed(two) = %#v; want 503 when asking again may help", err)
	}
	if got := FilterText("addPaymentMethod", "C"); got != " (api addPaymentMethod, Client-Id C)" {
		t.Errorf("FilterText = %q", got)
	}
	if FilterText("", "") != "" || StoresText([]string{"/a"}) != "the store at /a" || StoresText([]string{"/a", "/b"}) != "2 stores" {
		t.Error("FilterText or StoresText")
	}
}
