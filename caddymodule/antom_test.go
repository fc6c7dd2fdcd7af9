package caddymodule

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/notification"
)

// The Antom (AMS) notifications through the handler: the same signature,
// typing and dedupe as DWS's, with the family's message field, its own
// idempotency key and the key's header to the backend.

const (
	paymentPath = "/antom/notify/payment"
	refundPath  = "/antom/notify/refund"
)

// antomHandler is baseHandler serving notifyPayment and notifyRefund
// beside the two DWS APIs.
func antomHandler(t *testing.T) *Handler {
	h := baseHandler(t)
	h.API = append(h.API, config.API{Name: "notifyPayment", Path: paymentPath}, config.API{Name: "notifyRefund", Path: refundPath})
	return h
}

// antomSample returns the embedded sample of api with the string values
// of the members named in set replaced (the first member of each name,
// which in the samples is the one meant); a value that starts with "="
// is written as raw JSON instead of a string ("=4200" gives a number).
func antomSample(t testing.TB, api string, set map[string]string) []byte {
	t.Helper()
	b, ok := notification.Sample(api)
	if !ok {
		t.Fatalf("no sample for %s", api)
	}
	for member, v := range set {
		re := regexp.MustCompile(`"` + regexp.QuoteMeta(member) + `": "[^"]*"`)
		if re.Find(b) == nil {
			t.Fatalf("the %s sample has no string member %s", api, member)
		}
		repl := `"` + member + `": "` + v + `"`
		if len(v) > 0 && v[0] == '=' {
			repl = `"` + member + `": ` + v[1:]
		}
		done := false
		b = re.ReplaceAllFunc(b, func(m []byte) []byte {
			if done {
				return m
			}
			done = true
			return []byte(repl)
		})
	}
	return b
}

// payment is a notifyPayment for paymentID of notifyType with
// result.resultStatus status.
func payment(t testing.TB, paymentID, notifyType, status string) []byte {
	return antomSample(t, "notifyPayment", map[string]string{"paymentId": paymentID, "notifyType": notifyType, "resultStatus": status})
}

// Each answer spells its message as its API's family does, in one handler
// serving both families; result_message_field, when set, applies to every
// API.
func TestMessageFieldPerFamily(t *testing.T) {
	bad := antomSample(t, "notifyPayment", map[string]string{"paymentId": "mf-bad", "value": "=4200"})
	for _, c := range []struct {
		setting                       string
		addOK, payOK, payBad, noRoute string
	}{
		{"",
			`{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success"}}`,
			`{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}`,
			`{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL","resultMessage":"paymentAmount.value must be a JSON string"}}`,
			`{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL","resultMsg":"no notify API is served at this path"}}`},
		{"resultMsg",
			`{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success"}}`,
			`{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success"}}`,
			`{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL","resultMsg":"paymentAmount.value must be a JSON string"}}`,
			`{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL","resultMsg":"no notify API is served at this path"}}`},
		{"resultMessage",
			`{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}`,
			`{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}`,
			`{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL","resultMessage":"paymentAmount.value must be a JSON string"}}`,
			`{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL","resultMessage":"no notify API is served at this path"}}`},
	} {
		t.Run("result_message_field="+c.setting, func(t *testing.T) {
			h := antomHandler(t)
			h.ResultMessageField = c.setting
			provisioned(t, newContext(t), h)
			for _, x := range []struct {
				what string
				n    *notice
				want string
			}{
				{"addPaymentMethod", unitNotice(t, addPath, addSample(t, "mf-add-"+c.setting)), c.addOK},
				{"notifyPayment", unitNotice(t, paymentPath, payment(t, "mf-pay-"+c.setting, "PAYMENT_RESULT", "S")), c.payOK},
				{"notifyPayment with a number", unitNotice(t, paymentPath, bad), c.payBad},
				{"no API at the path", unitNotice(t, "/antom/notify/nothing", bad), c.noRoute},
			} {
				w, _ := serve(t, h, x.n, okBackend)
				if w.Code != http.StatusOK && x.what != "no API at the path" {
					t.Errorf("%s: HTTP %d", x.what, w.Code)
				}
				if got := w.Body.String(); got != x.want {
					t.Errorf("%s: answer\n%s\nwant\n%s", x.what, got, x.want)
				}
			}
		})
	}
	// A handler serving only Antom APIs answers a path it does not serve
	// with resultMessage too.
	h := baseHandler(t)
	h.API = []config.API{{Name: "notifyPayment", Path: paymentPath}}
	provisioned(t, newContext(t), h)
	w, _ := serve(t, h, unitNotice(t, "/antom/notify/nothing", bad), okBackend)
	if want := `{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL","resultMessage":"no notify API is served at this path"}}`; w.Body.String() != want {
		t.Errorf("Antom-only handler, unknown path: %s, want %s", w.Body.String(), want)
	}
}

// {http.dws_notify.key} is the idempotency key of every family;
// {http.dws_notify.request_id} stays DWS's and is not set for Antom,
// whose bodies have no requestId.
func TestKeyPlaceholder(t *testing.T) {
	h := antomHandler(t)
	provisioned(t, newContext(t), h)
	var seen string
	next := placeholderBackend("{http.dws_notify.api} {http.dws_notify.key} {http.dws_notify.request_id}", &seen)
	for _, c := range []struct {
		n    *notice
		want string
	}{
		{unitNotice(t, paymentPath, payment(t, "ph-pay", "PAYMENT_PENDING", "S")), "notifyPayment ph-pay:PAYMENT_PENDING:S -"},
		{unitNotice(t, refundPath, antomSample(t, "notifyRefund", map[string]string{"refundId": "ph:ref%1"})), "notifyRefund ph%3Aref%251:SUCCESS -"},
		{unitNotice(t, addPath, addSample(t, "ph-add")), "addPaymentMethod ph-add ph-add"},
	} {
		seen = ""
		w, repl := serve(t, h, c.n, next)
		if w.Code != http.StatusOK || seen != c.want {
			t.Errorf("HTTP %d, the next handler saw %q, want %q", w.Code, seen, c.want)
		}
		if got := repl.ReplaceAll("{http.dws_notify.api} {http.dws_notify.key} {http.dws_notify.request_id}", "-"); got != c.want {
			t.Errorf("after the answer: %q, want %q", got, c.want)
		}
	}
}

// An Antom notification through the handler, one step after another: the
// first copy forwarded with its key, a resend replayed, the same key with
// other content refused naming the key's fields, a payment that failed
// (result.resultStatus F: the notification's own result, not the
// gateway's verdict) forwarded like any other, and the log line's key.
func TestAntomThroughTheHandler(t *testing.T) {
	h := antomHandler(t)
	logs := provisioned(t, newContext(t), h)
	backend := &recordingBackend{}
	type step struct {
		name       string
		n          *notice
		answer     string
		forwarded  bool
		key        string // X-Dws-Idempotency-Key and the log line's key
		outcome    string
		logKey     string // "" = key
		unreadable string // key_unavailable
	}
	first := unitNotice(t, paymentPath, payment(t, "th-1", "PAYMENT_RESULT", "S"))
	// A failed payment's key ends with a content digest (a failed
	// subscription charge is retried under one paymentId).
	failed := unitNotice(t, paymentPath, antomSample(t, "notifyPayment",
		map[string]string{"paymentId": "th-1", "notifyType": "PAYMENT_RESULT", "resultStatus": "F", "resultCode": "PAYMENT_FAIL", "resultMessage": "payment failed"}))
	payAPI, _ := notification.Lookup("notifyPayment")
	failedRes, err := payAPI.Validate(failed.body, notification.Options{})
	if err != nil || !strings.HasPrefix(failedRes.Key, "th-1:PAYMENT_RESULT:F:") {
		t.Fatalf("the failed payment's key %q, %v", failedRes.Key, err)
	}
	long := strings.Repeat("L", 64)
	steps := []step{
		{name: "first copy", n: first, forwarded: true, key: "th-1:PAYMENT_RESULT:S", outcome: outcomeForwarded,
			answer: `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}`},
		{name: "resend", n: first, key: "th-1:PAYMENT_RESULT:S", outcome: outcomeReplayed,
			answer: `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}`},
		{name: "the same key, other content", n: unitNotice(t, paymentPath, antomSample(t, "notifyPayment",
			map[string]string{"paymentId": "th-1", "notifyType": "PAYMENT_RESULT", "resultStatus": "S", "value": "4300"})),
			key: "th-1:PAYMENT_RESULT:S", outcome: outcomeConflict,
			answer: `{"result":{"resultStatus":"F","resultCode":"REPEAT_REQ_INCONSISTENT","resultMessage":"the notification key (paymentId:notifyType:result.resultStatus:(content digest if notifyType is UPDATE_AMOUNT_RESULT or result.resultStatus is F)) was already used for a notification with different content"}}`},
		{name: "the payment failed: resultStatus F", n: failed,
			forwarded: true, key: failedRes.Key, outcome: outcomeForwarded,
			answer: `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}`},
		{name: "a refund that failed: refundStatus FAIL", n: unitNotice(t, refundPath, antomSample(t, "notifyRefund",
			map[string]string{"refundId": "th-r1", "refundStatus": "FAIL", "resultStatus": "F", "resultCode": "REFUND_FAIL"})),
			forwarded: true, key: "th-r1:FAIL", outcome: outcomeForwarded,
			answer: `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}`},
		{name: "field rules, no notifyType", n: unitNotice(t, paymentPath, antomSample(t, "notifyPayment", map[string]string{"paymentId": "th-3", "notifyType": "=null"})),
			key: "th-3::S", outcome: outcomeRejected, unreadable: "notifyType is null",
			answer: `{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL","resultMessage":"notifyType is required"}}`},
		{name: "a validated key longer than other sender text: logged whole", n: unitNotice(t, paymentPath, payment(t, long, "PAYMENT_PENDING", "S")),
			forwarded: true, key: long + ":PAYMENT_PENDING:S", outcome: outcomeForwarded,
			answer: `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}`},
		{name: "field rules: what can be read of the key is logged", n: unitNotice(t, paymentPath, antomSample(t, "notifyPayment", map[string]string{"paymentId": "th-2", "value": "=4200"})),
			key: "th-2:PAYMENT_RESULT:S", outcome: outcomeRejected,
			answer: `{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL","resultMessage":"paymentAmount.value must be a JSON string"}}`},
	}
	forwards := 0
	for _, s := range steps {
		from := logs.Len()
		w, _ := serve(t, h, s.n, backend)
		if w.Code != http.StatusOK || w.Body.String() != s.answer {
			t.Errorf("%s: HTTP %d %s, want %s", s.name, w.Code, w.Body.String(), s.answer)
		}
		if s.forwarded {
			forwards++
		}
		if backend.count() != forwards {
			t.Fatalf("%s: the backend got %d calls in all, want %d", s.name, backend.count(), forwards)
		}
		if s.forwarded {
			hdr := backend.last()
			if got := hdr.Values("X-Dws-Idempotency-Key"); len(got) != 1 || got[0] != s.key {
				t.Errorf("%s: X-Dws-Idempotency-Key %q, want %q", s.name, got, s.key)
			}
			if got := hdr.Values("X-Dws-Request-Id"); len(got) != 0 {
				t.Errorf("%s: an Antom call got X-Dws-Request-Id %q", s.name, got)
			}
		}
		m := logOf(t, logs, from).ContextMap()
		want := s.logKey
		if want == "" {
			want = s.key
		}
		if m["key"] != want || m["outcome"] != s.outcome {
			t.Errorf("%s: log key %q outcome %v, want %q %s", s.name, m["key"], m["outcome"], want, s.outcome)
		}
		for _, absent := range []string{"request_id", "request_id_unavailable"} {
			if v, ok := m[absent]; ok {
				t.Errorf("%s: an Antom log line has %s %q", s.name, absent, v)
			}
		}
		if u, ok := m["key_unavailable"]; (s.unreadable == "" && ok) || (s.unreadable != "" && u != s.unreadable) {
			t.Errorf("%s: key_unavailable %q, want %q", s.name, m["key_unavailable"], s.unreadable)
		}
	}
}

// caddy dws-notify send --sample for every Antom API through a gateway
// serving them all, --request-id making a new notification of each; then
// inspect (and the admin API under it) finds each record by its composed
// key.
func TestAntomSendAndInspectThroughTheGateway(t *testing.T) {
	b := newBackend(t)
	var routes strings.Builder
	for _, name := range notification.Names(notification.Antom) {
		routes.WriteString("api " + name + " /antom/notify/" + name + "\n\t\t")
	}
	startGateway(t, b, gatewayConfig{sign: true, extra: routes.String()})
	sent := map[string]string{}
	for i, name := range notification.Names(notification.Antom) {
		api, _ := notification.Lookup(name)
		id := "cli-" + name
		out, err := runCLI(t, "send", "--client-id", testClientID, "--key", keyFile(t, "dws_private.pem"), "--url", gatewayURL+"/antom/notify/"+name,
			"--sample", name, "--request-id", id, "--verify-key", keyFile(t, "merchant_public.pem"))
		if err != nil {
			t.Fatalf("send %s: %v\n%s", name, err, out)
		}
		for _, want := range []string{", " + api.KeyFields()[0] + " " + id + ")\n", "HTTP 200\n",
			`{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}` + "\n", "answer signature: verified"} {
			if !strings.Contains(out, want) {
				t.Errorf("send %s printed no %q:\n%s", name, want, out)
			}
		}
		hits := b.hits()
		if len(hits) != i+1 {
			t.Fatalf("send %s: the backend got %d calls in all, want %d", name, len(hits), i+1)
		}
		key := hits[i].header.Get("X-Dws-Idempotency-Key")
		res, err := api.Validate(hits[i].body, notification.Options{})
		if err != nil || key != res.Key || !strings.HasPrefix(key, id) || hits[i].header.Get("X-Dws-Api") != name {
			t.Fatalf("send %s: the backend got key %q for a body whose key is %q (%v)", name, key, res.Key, err)
		}
		sent[name] = key
	}
	for name, key := range sent {
		for _, args := range [][]string{{}, {"--api", name}, {"--api", name, "--client-id", testClientID}} {
			out, err := runCLI(t, append([]string{"inspect", "--request-id", key, "--address", adminAddress}, args...)...)
			if err != nil {
				t.Fatalf("inspect %s %v: %v\n%s", key, args, err, out)
			}
			for _, want := range []string{"key " + key + "\n", "  api          " + name + "\n", "  state        done\n", "  outcome      accepted: the backend took it (HTTP 200)\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("inspect %s %v printed no %q:\n%s", key, args, want, out)
				}
			}
		}
	}
	// The key of one API is no record of another.
	if out, err := runCLI(t, "inspect", "--request-id", sent["notifyPayment"], "--api", "notifyRefund", "--address", adminAddress); err == nil {
		t.Errorf("inspect found a notifyPayment key under notifyRefund:\n%s", out)
	}
}
