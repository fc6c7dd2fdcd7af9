package caddymodule

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/idempotency"
)

// inspectLines runs inspect for requestID and returns its output, failing
// the test on an error.
func inspectLines(t *testing.T, requestID string) string {
	t.Helper()
	out, err := runCLI(t, "inspect", "--request-id", requestID, "--address", "localhost:2999")
	if err != nil {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	return out
}

// wantLines fails unless out has every line part of want, and none of
// notWant.
func wantLines(t *testing.T, out string, want []string, notWant ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	for _, w := range notWant {
		if strings.Contains(out, w) {
			t.Errorf("output has %q:\n%s", w, out)
		}
	}
}

// A notification acknowledged on receipt, followed by inspect through its
// life: queued while the backend fails (the last try's status), dead at
// max_age (the reason), redelivered, then delivered (the status and when),
// with the admin record answer carrying the inbox item, and one INFO line
// for the delivery, without the body.
func TestInspectFollowsInboxItem(t *testing.T) {
	b := newBackend(t)
	b.status(http.StatusServiceUnavailable)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	cfg := receiptConfig("\t\t\tmax_age 600ms\n")
	cfg.globals = "log {\n\t\toutput file " + logFile + "\n\t\tformat json\n\t\tlevel INFO\n\t}"
	g := startGateway(t, b, cfg)
	key := keyOf("addPaymentMethod", "insp-1")
	body := addSample(t, "insp-1")
	g.send(g.notice(addPath, body)).expect(t, http.StatusOK, "S", "SUCCESS")
	notAFailure := "backend HTTP 0"

	phase(t, "queued while the backend fails", func(t *testing.T) {
		waitUntil(t, "a failed try", func() bool { return len(b.hits()) >= 1 })
		var out string
		waitUntil(t, "inspect showing the failed try", func() bool {
			out = inspectLines(t, "insp-1")
			return strings.Contains(out, "last try     HTTP 503")
		})
		wantLines(t, out, []string{
			"outcome      queued in the inbox at receipt (acknowledge on_receipt)",
			"answered     SUCCESS",
			"attempts     ",
			"queued at    ",
		}, notAFailure)
		if !strings.Contains(out, "inbox        queued: waiting for its next try, due ") && !strings.Contains(out, "inbox        leased: being delivered now") {
			t.Errorf("inbox line of a queued item:\n%s", out)
		}
	})
	phase(t, "dead at max_age", func(t *testing.T) {
		waitUntil(t, "the dead letter", func() bool { return itemState(t, g, key) == idempotency.ItemDead })
		out := inspectLines(t, "insp-1")
		wantLines(t, out, []string{
			"inbox        dead: no try succeeded within max_age; dead-lettered at ",
			"(redeliverable (caddy dws-notify redeliver))",
			"last try     HTTP 503 at ",
		}, notAFailure)
	})
	phase(t, "redelivered", func(t *testing.T) {
		b.status(http.StatusServiceUnavailable)
		if out, err := runCLI(t, "redeliver", "insp-1", "--address", "localhost:2999"); err != nil {
			t.Fatalf("redeliver: %v\n%s", err, out)
		}
		out := inspectLines(t, "insp-1")
		wantLines(t, out, []string{"(since its redelivery at "}, notAFailure, "dead:")
	})
	phase(t, "delivered", func(t *testing.T) {
		b.setRespond(nil)
		waitUntil(t, "the delivery", func() bool { return itemState(t, g, key) == idempotency.ItemDelivered })
		out := inspectLines(t, "insp-1")
		wantLines(t, out, []string{"inbox        delivered: the backend took it (HTTP 200) at ", "last try     HTTP 200 at "}, notAFailure)

		res, err := http.Get("http://localhost:2999" + adminapi.Base + "record?request_id=insp-1")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var ans adminapi.RecordsAnswer
		if err := json.NewDecoder(res.Body).Decode(&ans); err != nil || len(ans.Records) != 1 {
			t.Fatalf("record answer %+v, %v", ans, err)
		}
		rec := ans.Records[0]
		if rec.Outcome != "queued" || rec.Inbox == nil || rec.Inbox.State != "delivered" || rec.Inbox.LastStatus != 200 ||
			rec.Inbox.FinishedAt.IsZero() || rec.Inbox.RedeliveredAt.IsZero() || rec.Inbox.Attempts < 1 || rec.Inbox.HasPayload {
			t.Fatalf("record %+v, inbox %+v; want the delivered item", rec, rec.Inbox)
		}
	})
	phase(t, "one INFO line for the delivery", func(t *testing.T) {
		var raw []byte
		var delivered []map[string]any
		read := func() bool {
			var err error
			if raw, err = os.ReadFile(logFile); err != nil {
				t.Fatal(err)
			}
			delivered = delivered[:0]
			sc := bufio.NewScanner(bytes.NewReader(raw))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var l map[string]any
				if json.Unmarshal(sc.Bytes(), &l) == nil && l["msg"] == "inbox: notification delivered" {
					delivered = append(delivered, l)
				}
			}
			return len(delivered) > 0
		}
		// The line is written by the try's hook, after the item was
		// recorded delivered: wait for it, then for nothing more.
		waitUntil(t, "the delivery's log line", read)
		time.Sleep(200 * time.Millisecond)
		read()
		if len(delivered) != 1 {
			t.Fatalf("%d delivery lines, want 1:\n%s", len(delivered), raw)
		}
		l := delivered[0]
		if l["level"] != "info" || l["logger"] != "http.handlers.dws_notify.inbox" || l["api"] != "addPaymentMethod" || l["request_id"] != "insp-1" ||
			l["client_id"] != testClientID || l["backend_status"] != float64(200) || l["attempt"] == nil || l["queued_at"] == nil {
			t.Fatalf("delivery line %v", l)
		}
		if bytes.Contains(raw, []byte("ALIPAYpwBScbbHru3DE3CY5gvUVo4rNiaOibl1UmIR")) || bytes.Contains(raw, []byte("523945******1949")) {
			t.Fatalf("the log holds body content:\n%s", raw)
		}
	})
}

// inspect of an Antom notification by one of its ids finds nothing (the
// record's key is the composed one), and says so: where the composed key
// is found, and its fields. A config without Antom APIs does not say it.
func TestInspectAntomKeyHint(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{extra: "api notifyPayment " + paymentPath})
	g.send(g.notice(paymentPath, payment(t, "insp-pay-1", "PAYMENT_RESULT", "S"))).expect(t, http.StatusOK, "S", "SUCCESS")
	_, err := runCLI(t, "inspect", "--request-id", "insp-pay-1", "--address", "localhost:2999")
	if err == nil {
		t.Fatal("inspect by the paymentId alone found a record")
	}
	for _, want := range []string{`no record of requestId "insp-pay-1"`, "An Antom notification is recorded under its composed key, not one of its ids",
		"(e.g. paymentId:notifyType:result.resultStatus", "X-Dws-Idempotency-Key", "its log line's key field"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	// The reasons come first; the Antom note is a sentence after them.
	if !strings.Contains(err.Error(), "or its retention ended. An Antom notification is recorded") {
		t.Errorf("the Antom note is not a sentence after the reasons: %v", err)
	}
	out := inspectLines(t, "insp-pay-1:PAYMENT_RESULT:S")
	wantLines(t, out, []string{"key insp-pay-1:PAYMENT_RESULT:S", "outcome      accepted"})
	// Filtered to a DWS API, or on a config serving DWS only, no hint.
	if _, err := runCLI(t, "inspect", "--request-id", "insp-pay-1", "--api", "addPaymentMethod", "--address", "localhost:2999"); err == nil || strings.Contains(err.Error(), "Antom notifications") {
		t.Errorf("inspect --api addPaymentMethod: %v; want no record, without the Antom hint", err)
	}
	unloadConfig(t)
	startGateway(t, b, gatewayConfig{})
	if _, err := runCLI(t, "inspect", "--request-id", "insp-pay-1", "--address", "localhost:2999"); err == nil || strings.Contains(err.Error(), "Antom notifications") {
		t.Errorf("inspect on a DWS-only config: %v; want no record, without the Antom hint", err)
	}
}
