package e2e

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dwsnotify/dws_notify/notification"
)

// antomSample is the embedded sample of the Antom API (the one
// `caddy dws-notify send --sample <api>` sends) with the string members
// named in set replaced, the first member of each name; a value that
// starts with "=" is written as raw JSON ("=4200" is a number).
func antomSample(t *testing.T, api string, set map[string]string) []byte {
	t.Helper()
	b := readSample(t, "antom/"+api+".json")
	for member, v := range set {
		re := regexp.MustCompile(`"` + regexp.QuoteMeta(member) + `": "[^"]*"`)
		loc := re.FindIndex(b)
		if loc == nil {
			t.Fatalf("the %s sample has no string member %s", api, member)
		}
		repl := `"` + member + `": "` + v + `"`
		if strings.HasPrefix(v, "=") {
			repl = `"` + member + `": ` + v[1:]
		}
		b = append(append(append([]byte(nil), b[:loc[0]]...), repl...), b[loc[1]:]...)
	}
	return b
}

// TestAntomNotifications runs the built binary with the Caddyfile of
// docs/antom.md (a merchant receiving DWS and Antom notifications in one
// handler), its production paths replaced by the sandbox's: a
// notifyPayment PAYMENT_PENDING then PAYMENT_RESULT for one payment are
// each forwarded once with their X-Dws-Idempotency-Key and no
// X-Dws-Request-Id, a resend of each is replayed, an amount value sent as
// a JSON number is PARAM_ILLEGAL (under resultMessage, naming the field)
// and never forwarded, and a DWS notification to the same handler keeps
// its resultMsg and X-Dws-Request-Id. Then notifyVaulting,
// notifySubscription and notifySubscriptionPayment at their own paths:
// each forwarded once with its key and replayed when resent, a failed
// vaulting (with vaultingStatus FAIL, and as the reference describes it:
// resultStatus F, no vaultingStatus, no paymentMethodDetail), two amount
// adjustments of one payment and two CHANGEs of one subscription each
// another notification; the dispute guide's notification with a boolean
// defendable forwarded, two DISPUTE_JUDGED of one dispute and two failed
// tries of one period payment (phaseNo and availableRetries as numbers)
// each another notification; a number in a subscription where none is
// allowed PARAM_ILLEGAL naming its path.
func TestAntomNotifications(t *testing.T) {
	bin := caddyBin(t)
	root := repoRoot(t)
	doc := docCaddyfileFor(t, root, "TestAntomNotifications")
	sb := newSandbox(t)
	be := newBackend(t)
	key := newKeyPair(t, sb, "alipay")
	addrs := freeAddrs(t, 2)
	admin, site := addrs[0], "http://"+addrs[1]
	caddyfile := doc.Text
	for old, repl := range map[string]string{
		"notify.example.com":           site,
		"/etc/caddy/alipay_public.b64": key.B64Path,
		"reverse_proxy localhost:9000": "reverse_proxy " + be.HostPort(),
	} {
		if !strings.Contains(caddyfile, old) {
			t.Fatalf("%s: the Caddyfile no longer has %q, which this test replaces", doc, old)
		}
		caddyfile = strings.ReplaceAll(caddyfile, old, repl)
	}
	caddyfile = "{\n\tadmin " + admin + "\n\tpersist_config off\n}\n\n" + caddyfile
	proc := startCaddy(t, bin, sb, caddyfile, admin, site+"/")
	dws := newDWS(site, clientID, key.Private)
	const paymentURI = "/antom/notify/payment"
	const paymentID = "2026120611223344556677"
	const ok = `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}`

	post := func(t *testing.T, uri string, body []byte, want string) {
		t.Helper()
		a := dws.Post(t, uri, body, key.Private, 1, nil)
		if a.Status != http.StatusOK || string(a.Body) != want {
			t.Fatalf("POST %s: HTTP %d %s, want HTTP 200 %s", uri, a.Status, a.Body, want)
		}
	}
	delivered := func(t *testing.T, n int) []delivery {
		t.Helper()
		ds := be.Deliveries()
		if len(ds) != n {
			t.Fatalf("the backend got %d notifications, want %d", len(ds), n)
		}
		return ds
	}
	checkAntomCall := func(t *testing.T, d delivery, body []byte, wantKey string) {
		t.Helper()
		if string(d.Body) != string(body) || d.Key != wantKey || d.Verified != "true" || d.Path != paymentURI {
			t.Errorf("the backend got key %q, verified %q, path %s (body as sent: %v); want key %q", d.Key, d.Verified, d.Path, string(d.Body) == string(body), wantKey)
		}
		if got := d.Header.Values("X-Dws-Request-Id"); len(got) != 0 {
			t.Errorf("an Antom call got X-Dws-Request-Id %q", got)
		}
		if got := d.Header.Get("X-Dws-Api"); got != "notifyPayment" {
			t.Errorf("X-Dws-Api %q", got)
		}
	}

	pending := antomSample(t, "notifyPayment", map[string]string{"paymentId": paymentID, "notifyType": "PAYMENT_PENDING"})
	result := antomSample(t, "notifyPayment", map[string]string{"paymentId": paymentID, "notifyType": "PAYMENT_RESULT"})
	phase(t, "PAYMENT_PENDING is forwarded once with its key", func(t *testing.T) {
		post(t, paymentURI, pending, ok)
		checkAntomCall(t, delivered(t, 1)[0], pending, paymentID+":PAYMENT_PENDING:S")
	})
	phase(t, "PAYMENT_RESULT of the same payment is another notification", func(t *testing.T) {
		post(t, paymentURI, result, ok)
		checkAntomCall(t, delivered(t, 2)[1], result, paymentID+":PAYMENT_RESULT:S")
	})
	phase(t, "a resend of each is replayed, not forwarded", func(t *testing.T) {
		post(t, paymentURI, pending, ok)
		post(t, paymentURI, result, ok)
		delivered(t, 2)
	})
	phase(t, "an amount value sent as a JSON number is PARAM_ILLEGAL and not forwarded", func(t *testing.T) {
		number := antomSample(t, "notifyPayment", map[string]string{"paymentId": paymentID + "9", "value": "=4200"})
		post(t, paymentURI, number,
			`{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL","resultMessage":"paymentAmount.value must be a JSON string"}}`)
		delivered(t, 2)
	})
	phase(t, "a DWS notification to the same handler keeps its answer and headers", func(t *testing.T) {
		add := readSample(t, "add.json")
		post(t, addURI, add, successEnv)
		d := delivered(t, 3)[2]
		const id = "20990501203220303032821078591"
		if d.RequestID != id || d.Key != id || d.Header.Get("X-Dws-Api") != "addPaymentMethod" {
			t.Errorf("DWS call: X-Dws-Request-Id %q, X-Dws-Idempotency-Key %q, X-Dws-Api %q", d.RequestID, d.Key, d.Header.Get("X-Dws-Api"))
		}
	})
	phase(t, "the log lines carry the Antom key as key", func(t *testing.T) {
		out := proc.Output()
		// The refused body's line names what could be read of its key.
		for _, want := range []string{`"key":"` + paymentID + `:PAYMENT_PENDING:S"`, `"key":"` + paymentID + `:PAYMENT_RESULT:S"`, `"outcome":"replayed"`,
			`"key":"` + paymentID + `9:PAYMENT_RESULT:S"`} {
			if !strings.Contains(out, want) {
				t.Errorf("the gateway's output has no %s", want)
			}
		}
	})

	// The vaulting and subscription notifications, each at its own path:
	// forwarded once with its key, a resend replayed. wantKey is the key,
	// or for a digest-keyed API the key up to its digest (the whole key
	// must be the one the notification package composes for the body).
	sent := 3
	forwardOnce := func(t *testing.T, api, uri string, body []byte, wantKey string) {
		t.Helper()
		post(t, uri, body, ok)
		sent++
		d := delivered(t, sent)[sent-1]
		if string(d.Body) != string(body) || d.Path != uri || d.Verified != "true" || d.Header.Get("X-Dws-Api") != api {
			t.Errorf("%s: the backend got path %s, X-Dws-Api %q, verified %q (body as sent: %v)", api, d.Path, d.Header.Get("X-Dws-Api"), d.Verified, string(d.Body) == string(body))
		}
		a, _ := notification.Lookup(api)
		res, err := a.Validate(body, notification.Options{})
		digest := slices.ContainsFunc(a.KeyParts(), func(p notification.KeyPart) bool { return p.Digest })
		if err != nil || d.Key != res.Key || !strings.HasPrefix(d.Key, wantKey) || !digest && d.Key != wantKey {
			t.Errorf("%s: X-Dws-Idempotency-Key %q, want %q (composed %q, %v)", api, d.Key, wantKey, res.Key, err)
		}
		if got := d.Header.Values("X-Dws-Request-Id"); len(got) != 0 {
			t.Errorf("%s: an Antom call got X-Dws-Request-Id %q", api, got)
		}
		post(t, uri, body, ok) // the resend
		delivered(t, sent)
	}
	phase(t, "notifyVaulting is forwarded once, its resend replayed", func(t *testing.T) {
		vault := antomSample(t, "notifyVaulting", nil)
		forwardOnce(t, "notifyVaulting", "/antom/notify/vaulting", vault, "vaultingRequestId_EXAMPLE_0001:S:SUCCESS")
	})
	phase(t, "a failed vaulting is content, forwarded under its own key", func(t *testing.T) {
		failed := antomSample(t, "notifyVaulting", map[string]string{"resultCode": "VERIFICATION_FAIL", "resultStatus": "F", "vaultingStatus": "FAIL"})
		forwardOnce(t, "notifyVaulting", "/antom/notify/vaulting", failed, "vaultingRequestId_EXAMPLE_0001:F:FAIL")
	})
	phase(t, "a failed vaulting as the reference describes it is forwarded once, its resend replayed", func(t *testing.T) {
		// resultStatus F, and neither vaultingStatus (the AMS edition
		// lists none) nor paymentMethodDetail (what a failure lacks).
		var m map[string]any
		if err := json.Unmarshal(antomSample(t, "notifyVaulting", map[string]string{
			"vaultingRequestId": "vaultingRequestId_EXAMPLE_0002", "resultCode": "VERIFICATION_FAIL", "resultStatus": "F"}), &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "vaultingStatus")
		delete(m, "paymentMethodDetail")
		failed, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		forwardOnce(t, "notifyVaulting", "/antom/notify/vaulting", failed, "vaultingRequestId_EXAMPLE_0002:F:")
	})
	// twoNotifications forwards two bodies of api that its key must tell
	// apart (each once, each resend replayed) and checks their keys differ.
	twoNotifications := func(t *testing.T, api, path, keyPrefix string, bodies ...[]byte) {
		t.Helper()
		for _, body := range bodies {
			forwardOnce(t, api, path, body, keyPrefix)
		}
		ds := be.Deliveries()
		if a, b := ds[len(ds)-2].Key, ds[len(ds)-1].Key; a == b {
			t.Errorf("both %s notifications got the key %q", api, a)
		}
	}
	phase(t, "two amount adjustments of one payment are two notifications", func(t *testing.T) {
		update := func(value string) []byte {
			return antomSample(t, "notifyPayment", map[string]string{"paymentId": "2020010123456789UPDT", "notifyType": "UPDATE_AMOUNT_RESULT", "value": value})
		}
		twoNotifications(t, "notifyPayment", "/antom/notify/payment", "2020010123456789UPDT:UPDATE_AMOUNT_RESULT:S:", update("4200"), update("5200"))
	})
	phase(t, "notifySubscription is forwarded once, its resend replayed", func(t *testing.T) {
		sub := antomSample(t, "notifySubscription", nil)
		forwardOnce(t, "notifySubscription", "/antom/notify/subscription", sub, "subscriptionRequestId_EXAMPLE_0001:CREATE:")
	})
	phase(t, "two CHANGEs of one subscription are two notifications", func(t *testing.T) {
		change := func(end string) []byte {
			return antomSample(t, "notifySubscription", map[string]string{"subscriptionNotificationType": "CHANGE", "subscriptionEndTime": end})
		}
		twoNotifications(t, "notifySubscription", "/antom/notify/subscription", "subscriptionRequestId_EXAMPLE_0001:CHANGE:", change("2027-06-01T12:00:00+08:00"), change("2028-01-01T12:00:00+08:00"))
	})
	phase(t, "notifySubscriptionPayment is forwarded once, its resend replayed", func(t *testing.T) {
		subPay := antomSample(t, "notifySubscriptionPayment", nil)
		forwardOnce(t, "notifySubscriptionPayment", "/antom/notify/subscription-payment", subPay, "20260201EXAMPLEPAYMENTID0001:S")
	})
	phase(t, "the dispute guide's notification with a boolean defendable is forwarded once", func(t *testing.T) {
		guide := readSample(t, "antom-guide/notifyDispute-defendable.json")
		forwardOnce(t, "notifyDispute", "/antom/notify/dispute", guide, "202209212501310115730104****:DISPUTE_CREATED:")
	})
	phase(t, "two DISPUTE_JUDGED of one dispute are two notifications", func(t *testing.T) {
		judged := func(result string) []byte {
			b := antomSample(t, "notifyDispute", map[string]string{"disputeNotificationType": "DISPUTE_JUDGED"})
			return []byte(strings.Replace(string(b), `"disputeSource"`, `"disputeJudgedResult": "`+result+`", "disputeSource"`, 1))
		}
		twoNotifications(t, "notifyDispute", "/antom/notify/dispute", "202209212501310115730104****:DISPUTE_JUDGED:", judged("VALIDATE_FAIL"), judged("VALIDATE_SUCCESS"))
	})
	phase(t, "two failed tries of a period payment are two notifications", func(t *testing.T) {
		failed := func(retries string) []byte {
			b := antomSample(t, "notifySubscriptionPayment", map[string]string{"paymentId": "20260201EXAMPLEPAYMENTID0009", "resultStatus": "F", "phaseNo": "=2"})
			return []byte(strings.Replace(string(b), `"phaseNo": 2`, `"phaseNo": 2, "retryInfo": {"availableRetries": `+retries+`}`, 1))
		}
		twoNotifications(t, "notifySubscriptionPayment", "/antom/notify/subscription-payment", "20260201EXAMPLEPAYMENTID0009:F:", failed("2"), failed("1"))
	})
	phase(t, "a number in a subscription is PARAM_ILLEGAL naming its path, not forwarded", func(t *testing.T) {
		// periodCount may be a number (the official SDK's PeriodCount
		// int32); periodType may not.
		number := antomSample(t, "notifySubscription", map[string]string{"subscriptionRequestId": "subscriptionRequestId_EXAMPLE_0009", "periodType": "=1"})
		post(t, "/antom/notify/subscription", number,
			`{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL","resultMessage":"periodRule.periodType must be a JSON string"}}`)
		delivered(t, sent)
	})
}
