package caddymodule

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/idempotency"
)

// The queue, its dead letters and their redelivery through the CLI and
// the admin API; a dead addPaymentMethod whose customer's later
// removePaymentMethod was delivered is refused unless forced.
func TestQueueAdminAndRedeliver(t *testing.T) {
	b := newBackend(t)
	b.status(http.StatusServiceUnavailable)
	g := startGateway(t, b, receiptConfig("\t\t\tmax_age 400ms\n"))
	addKey := keyOf("addPaymentMethod", "dead-add")
	g.send(g.notice(addPath, addSample(t, "dead-add"))).expect(t, http.StatusOK, "S", "SUCCESS")

	phase(t, "dead-lettered at max_age", func(t *testing.T) {
		waitUntil(t, "the dead letter", func() bool { return itemState(t, g, addKey) == idempotency.ItemDead })
		out, err := runCLI(t, "queue", "--address", "localhost:2999", "--dead")
		if err != nil || !strings.Contains(out, "1 dead letters") || !strings.Contains(out, "addPaymentMethod dead-add") || !strings.Contains(out, "HTTP 503") {
			t.Fatalf("queue --dead: %v\n%s", err, out)
		}
	})
	phase(t, "a later remove of the customer is delivered", func(t *testing.T) {
		b.setRespond(nil)
		// The remove sample, for the add sample's customer.
		remove := bytes.Replace(removeSample(t, "later-remove"), []byte("216610000006358131449"), []byte("300005538591"), 1)
		g.send(g.notice(removePath, remove)).expect(t, http.StatusOK, "S", "SUCCESS")
		waitUntil(t, "the remove's delivery", func() bool {
			return itemState(t, g, keyOf("removePaymentMethod", "later-remove")) == idempotency.ItemDelivered
		})
		out, err := runCLI(t, "queue", "--address", "localhost:2999")
		if err != nil || !strings.Contains(out, "queued:    0") || !strings.Contains(out, "delivered 1, business_rejected 0, dead 1 (total 2)") {
			t.Fatalf("queue: %v\n%s", err, out)
		}
	})
	phase(t, "redelivering the stale add is refused", func(t *testing.T) {
		out, err := runCLI(t, "redeliver", "dead-add", "--address", "localhost:2999")
		if err == nil || !strings.Contains(err.Error(), "a later removePaymentMethod of the same customer was delivered") ||
			!strings.HasSuffix(err.Error(), "(--force redelivers anyway)") || strings.Contains(err.Error(), "force=1") {
			t.Fatalf("redeliver: %v\n%s; want the refusal, offering --force", err, out)
		}
		res, err := http.Post("http://localhost:2999"+adminapi.Base+"redeliver?request_id=dead-add", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var apiErr struct{ Error string }
		if err := json.NewDecoder(res.Body).Decode(&apiErr); err != nil || res.StatusCode != http.StatusConflict ||
			res.Header.Get(adminapi.ErrorCodeHeader) != adminapi.CodeLaterRemoveDelivered || !strings.HasSuffix(apiErr.Error, " "+adminapi.RedeliverForceHint) {
			t.Fatalf("HTTP %d %s %q, %v; want 409 %s offering force=1", res.StatusCode, res.Header.Get(adminapi.ErrorCodeHeader), apiErr.Error, err, adminapi.CodeLaterRemoveDelivered)
		}
		// --dead lists the stale add as skipped and fails: it stays dead,
		// and someone must decide.
		out, err = runCLI(t, "redeliver", "--dead", "--address", "localhost:2999")
		if err == nil || !strings.Contains(err.Error(), "1 dead letter skipped") || !strings.Contains(out, "redelivered 0") || !strings.Contains(out, "SKIPPED") {
			t.Fatalf("redeliver --dead: %v\n%s; want the stale add skipped and an error", err, out)
		}
		res, err = http.Post("http://localhost:2999"+adminapi.Base+"redeliver?dead=all", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var all adminapi.RedeliverAnswer
		if err := json.NewDecoder(res.Body).Decode(&all); err != nil || res.StatusCode != http.StatusOK || len(all.Skipped) != 1 || all.Skipped[0].Code != adminapi.CodeLaterRemoveDelivered {
			t.Fatalf("dead=all: HTTP %d, %+v, %v; want the stale add skipped with its code", res.StatusCode, all, err)
		}
		if s := itemState(t, g, addKey); s != idempotency.ItemDead {
			t.Fatalf("the stale add is %v, want dead", s)
		}
	})
	phase(t, "forced, it is delivered", func(t *testing.T) {
		res, err := http.Post("http://localhost:2999"+adminapi.Base+"redeliver?request_id=dead-add&force=1", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var ans adminapi.RedeliverAnswer
		if err := json.NewDecoder(res.Body).Decode(&ans); err != nil || res.StatusCode != http.StatusOK || len(ans.Redelivered) != 1 {
			t.Fatalf("HTTP %d, %+v, %v", res.StatusCode, ans, err)
		}
		waitUntil(t, "the redelivered add", func() bool { return itemState(t, g, addKey) == idempotency.ItemDelivered })
		if out, err := runCLI(t, "redeliver", "dead-add", "--address", "localhost:2999"); err == nil || !strings.Contains(err.Error(), "is delivered, not a dead letter") {
			t.Fatalf("redelivering a delivered item: %v\n%s", err, out)
		}
	})
}
