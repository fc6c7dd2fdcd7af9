package notification

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// sample returns the embedded sample of api as a string.
func sample(t testing.TB, api string) string {
	t.Helper()
	b, ok := Sample(api)
	if !ok {
		t.Fatalf("no sample for %s", api)
	}
	return string(b)
}

// digestPart is the key part a content digest of body gives.
func digestPart(t testing.TB, body string) string {
	fp := refFingerprint(t, []byte(body))
	return hex.EncodeToString(fp[:keyDigestBytes])
}

// Each Antom API's sample from the reference passes unchanged, in both
// modes, with the key docs/antom.md gives for it.
func TestAntomSamplesPass(t *testing.T) {
	reg, sub, dispute := sample(t, "notifyRegistrationStatus"), sample(t, "notifySubscription"), sample(t, "notifyDispute")
	want := map[string]string{
		"notifyPayment":            "2020010123456789XXXX:PAYMENT_RESULT:S",
		"notifyCapture":            "2022XXXXXXX:S",
		"notifyRefund":             "2021080419401080130018866020092XXXX:SUCCESS",
		"notifyDispute":            "202209212501310115730104****:DISPUTE_CREATED:" + digestPart(t, dispute),
		"notifyRegistrationStatus": "202009181105860200000600142****:" + digestPart(t, reg),
		// The three below are assembled from their pages' parameter tables
		// (sample.go): Antom's own example bodies could not be read.
		"notifyVaulting":            "vaultingRequestId_EXAMPLE_0001:S:SUCCESS",
		"notifySubscription":        "subscriptionRequestId_EXAMPLE_0001:CREATE:" + digestPart(t, sub),
		"notifySubscriptionPayment": "20260201EXAMPLEPAYMENTID0001:S",
	}
	names := Names(Antom)
	if len(names) != len(want) {
		t.Fatalf("Names(Antom) = %q; this test knows %d APIs", names, len(want))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			body := []byte(sample(t, name))
			if !json.Valid(body) {
				t.Fatal("the sample is not JSON")
			}
			for _, strict := range []bool{false, true} {
				res, err := mustAPI(t, name).Validate(body, Options{Strict: strict})
				if err != nil {
					t.Fatalf("strict %v: %v", strict, err)
				}
				if res.Key != want[name] {
					t.Errorf("strict %v: key %q, want %q", strict, res.Key, want[name])
				}
				if res.Fingerprint != refFingerprint(t, body) {
					t.Errorf("strict %v: fingerprint differs from the reference canonical form", strict)
				}
			}
		})
	}
}

func TestFamilies(t *testing.T) {
	for _, tc := range []struct {
		api    string
		family Family
	}{
		{"addPaymentMethod", DWS}, {"removePaymentMethod", DWS},
		{"notifyPayment", Antom}, {"notifyCapture", Antom}, {"notifyRefund", Antom},
		{"notifyDispute", Antom}, {"notifyRegistrationStatus", Antom},
		{"notifyVaulting", Antom}, {"notifySubscription", Antom}, {"notifySubscriptionPayment", Antom},
	} {
		if f := mustAPI(t, tc.api).Family(); f != tc.family {
			t.Errorf("%s: family %v, want %v", tc.api, f, tc.family)
		}
	}
	if DWS.MessageField() != ResultMsg || Antom.MessageField() != ResultMessage || Family(0).MessageField() != ResultMsg {
		t.Error("MessageField: DWS answers with resultMsg, Antom with resultMessage")
	}
	if DWS.String() != "dws" || Antom.String() != "antom" || Family(9).String() != "unknown" {
		t.Error("Family.String")
	}
	if got := strings.Join(Names(Antom), ","); got != "notifyCapture,notifyDispute,notifyPayment,notifyRefund,notifyRegistrationStatus,notifySubscription,notifySubscriptionPayment,notifyVaulting" {
		t.Errorf("Names(Antom) = %s", got)
	}
	if got := strings.Join(Names(DWS), ","); got != "addPaymentMethod,removePaymentMethod" {
		t.Errorf("Names(DWS) = %s", got)
	}
	if len(Names()) != 10 || len(Names(DWS, Antom)) != 10 {
		t.Errorf("Names() = %q", Names())
	}
	if a, ok := Lookup("notifyPayment"); !ok || a.Name() != "notifyPayment" {
		t.Error("Lookup(notifyPayment)")
	}
	if a, ok := Lookup("addPaymentMethod"); !ok || a.Family() != DWS {
		t.Error("Lookup(addPaymentMethod)")
	}
	if _, ok := Lookup("NotifyPayment"); ok {
		t.Error("Lookup matched ignoring case")
	}
}

func TestKeyFields(t *testing.T) {
	for api, want := range map[string]string{
		"addPaymentMethod":          "requestId",
		"notifyPayment":             "paymentId,notifyType,result.resultStatus,(content digest if notifyType is UPDATE_AMOUNT_RESULT or result.resultStatus is F)",
		"notifyCapture":             "captureId,result.resultStatus",
		"notifyRefund":              "refundId,refundStatus",
		"notifyDispute":             "disputeId,disputeNotificationType," + ContentDigest,
		"notifyRegistrationStatus":  "registrationRequestId," + ContentDigest,
		"notifyVaulting":            "vaultingRequestId,result.resultStatus,vaultingStatus",
		"notifySubscription":        "subscriptionRequestId,subscriptionNotificationType," + ContentDigest,
		"notifySubscriptionPayment": "paymentId,result.resultStatus,(content digest if result.resultStatus is F)",
	} {
		a := mustAPI(t, api)
		if got := strings.Join(a.KeyFields(), ","); got != want {
			t.Errorf("%s: KeyFields %s, want %s", api, got, want)
		}
		a.KeyFields()[0] = "changed"
		if a.KeyFields()[0] == "changed" {
			t.Errorf("%s: KeyFields shares its slice", api)
		}
	}
	// Which parts every valid body has: the required fields, and an
	// unconditional digest.
	for api, want := range map[string]string{
		"addPaymentMethod":         "requestId",
		"notifyPayment":            "paymentId,notifyType,result.resultStatus",
		"notifyRegistrationStatus": ContentDigest,
		"notifyVaulting":           "vaultingRequestId,result.resultStatus",
		"notifySubscription":       "subscriptionRequestId,subscriptionNotificationType," + ContentDigest,
	} {
		var got []string
		for _, p := range mustAPI(t, api).KeyParts() {
			if p.Required {
				got = append(got, p.String())
			}
		}
		if strings.Join(got, ",") != want {
			t.Errorf("%s: required key parts %q, want %s", api, got, want)
		}
	}
	want := []KeyCondition{{"notifyType", "UPDATE_AMOUNT_RESULT"}, {"result.resultStatus", "F"}}
	if p := mustAPI(t, "notifyPayment").KeyParts()[3]; !p.Digest || p.Required || !slices.Equal(p.If, want) {
		t.Errorf("notifyPayment's digest part: %+v", p)
	}
	a := mustAPI(t, "notifyPayment")
	a.KeyParts()[3].If[0].Value = "changed"
	if a.KeyParts()[3].If[0].Value == "changed" {
		t.Error("KeyParts shares its conditions")
	}
}

// keyOf validates body as api and returns its key.
func keyOf(t testing.TB, api, body string) string {
	t.Helper()
	res, err := mustAPI(t, api).Validate([]byte(body), Options{})
	if err != nil {
		t.Fatalf("%s: %v in %s", api, err, body)
	}
	return res.Key
}

// The keys: a PENDING and a RESULT of one payment are two notifications, a
// resend of either (in any key order, spacing or escaping) is one, and a
// notification's own failure is content that keys it apart from a success.
func TestAntomKeys(t *testing.T) {
	pay := sample(t, "notifyPayment")
	pending := replaceOnce(t, pay, `"PAYMENT_RESULT"`, `"PAYMENT_PENDING"`)
	failed := replaceOnce(t, pay, `"resultCode": "SUCCESS"`, `"resultCode": "USER_BALANCE_NOT_ENOUGH"`, `"resultStatus": "S"`, `"resultStatus": "F"`)
	resend := `{"paymentTime":"2020-01-01T12:01:01+08:30","paymentAmount":{"currency":"SGD","value":"4200"},` +
		`"result":{"resultMessage":"success","resultStatus":"\u0053","resultCode":"SUCCESS"},"paymentId":"2020010123456789XXXX",` +
		`"paymentRequestId":"paymentRequestId01","notifyType":"PAYMENT_RESULT","paymentCreateTime":"2020-01-01T12:01:00+08:30"}`
	result := keyOf(t, "notifyPayment", pay)
	if got := keyOf(t, "notifyPayment", pending); got != "2020010123456789XXXX:PAYMENT_PENDING:S" || got == result {
		t.Errorf("PENDING key %q, RESULT key %q", got, result)
	}
	if got := keyOf(t, "notifyPayment", failed); got != "2020010123456789XXXX:PAYMENT_RESULT:F:"+digestPart(t, failed) {
		t.Errorf("failed payment key %q", got)
	}
	if got := keyOf(t, "notifyPayment", resend); got != result {
		t.Errorf("resend in another form: key %q, want %q", got, result)
	}

	// A key part holding the separator or '%' is escaped, so parts cannot
	// run into each other: "a:b" + "c" differs from "a" + "b:c".
	for _, tc := range []struct{ paymentID, notify, want string }{
		{"a:b", "PAYMENT_RESULT", "a%3Ab:PAYMENT_RESULT:S"},
		{"a", "b:PAYMENT_RESULT", "a:b%3APAYMENT_RESULT:S"},
		{"100%", "PAYMENT_RESULT", "100%25:PAYMENT_RESULT:S"},
		{"%3A", "PAYMENT_RESULT", "%253A:PAYMENT_RESULT:S"},
		{`\u003a`, "PAYMENT_RESULT", "%3A:PAYMENT_RESULT:S"},
		{"é😀", "PAYMENT_RESULT", "é😀:PAYMENT_RESULT:S"},
	} {
		body := replaceOnce(t, pay, `"2020010123456789XXXX"`, `"`+tc.paymentID+`"`, `"PAYMENT_RESULT"`, `"`+tc.notify+`"`)
		if got := keyOf(t, "notifyPayment", body); got != tc.want {
			t.Errorf("paymentId %q, notifyType %q: key %q, want %q", tc.paymentID, tc.notify, got, tc.want)
		}
	}

	// A failed capture is forwarded as content; its key differs from the
	// success's. (The failure body is the one the Checkout Payment guide
	// prints, https://global.alipay.com/docs/ac/cashierpay/adcard.)
	capture := sample(t, "notifyCapture")
	capFailed := replaceOnce(t, capture, `"resultCode": "SUCCESS"`, `"resultCode": "PROCESS_FAIL"`, `"success."`, `"fail."`, `"resultStatus": "S"`, `"resultStatus": "F"`)
	if got := keyOf(t, "notifyCapture", capFailed); got != "2022XXXXXXX:F" {
		t.Errorf("failed capture key %q", got)
	}
	refundFailed := replaceOnce(t, sample(t, "notifyRefund"), `"SUCCESS",`+"\n  \"refundTime\"", `"FAIL",`+"\n  \"refundTime\"")
	if got := keyOf(t, "notifyRefund", refundFailed); got != "2021080419401080130018866020092XXXX:FAIL" {
		t.Errorf("failed refund key %q", got)
	}
	judged := replaceOnce(t, sample(t, "notifyDispute"), `"DISPUTE_CREATED"`, `"DISPUTE_JUDGED"`)
	if got := keyOf(t, "notifyDispute", judged); got != "202209212501310115730104****:DISPUTE_JUDGED:"+digestPart(t, judged) {
		t.Errorf("judged dispute key %q", got)
	}

	// A registration's key follows its content: a resend in another form
	// keeps it, a changed wallet status changes it, and without a
	// registrationRequestId the digest stands alone after an empty part.
	reg := sample(t, "notifyRegistrationStatus")
	regKey := keyOf(t, "notifyRegistrationStatus", reg)
	compact, err := json.Marshal(json.RawMessage(reg))
	if err != nil {
		t.Fatal(err)
	}
	if got := keyOf(t, "notifyRegistrationStatus", string(compact)); got != regKey {
		t.Errorf("compacted registration: key %q, want %q", got, regKey)
	}
	pending2 := replaceOnce(t, reg, `"APPROVED"`, `"PENDING"`)
	if got := keyOf(t, "notifyRegistrationStatus", pending2); got == regKey || !strings.HasPrefix(got, "202009181105860200000600142****:") {
		t.Errorf("changed registration: key %q, first %q", got, regKey)
	}
	noID := replaceOnce(t, reg, `"registrationRequestId": "202009181105860200000600142****",`, ``)
	if got := keyOf(t, "notifyRegistrationStatus", noID); got != ":"+digestPart(t, noID) {
		t.Errorf("registration without an id: key %q", got)
	}
}

// Two amount adjustments of one payment (updateAmount can be called up to
// ten times, https://docs.antom.com/ac/ams/updateAmount) are two
// notifications: an UPDATE_AMOUNT_RESULT key ends with a content digest,
// so the second adjustment is not refused as a conflict with the first,
// and a resend of either (re-serialised) keeps its key. The keys of
// PAYMENT_RESULT and PAYMENT_PENDING have no digest.
func TestAntomUpdateAmountKeys(t *testing.T) {
	pay := sample(t, "notifyPayment")
	update := func(value string) string {
		return replaceOnce(t, pay, `"PAYMENT_RESULT"`, `"UPDATE_AMOUNT_RESULT"`, `"value": "4200"`, `"value": "`+value+`"`)
	}
	first, second := update("4200"), update("5200")
	k1, k2 := keyOf(t, "notifyPayment", first), keyOf(t, "notifyPayment", second)
	for body, k := range map[string]string{first: k1, second: k2} {
		if want := "2020010123456789XXXX:UPDATE_AMOUNT_RESULT:S:" + digestPart(t, body); k != want {
			t.Errorf("adjustment key %q, want %q", k, want)
		}
	}
	if k1 == k2 {
		t.Fatalf("two adjustments share the key %q", k1)
	}
	for body, k := range map[string]string{first: k1, second: k2} {
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatal(err)
		}
		resent, err := json.Marshal(m) // members sorted, no spacing
		if err != nil {
			t.Fatal(err)
		}
		if string(resent) == body {
			t.Fatal("the resend is not re-serialised")
		}
		if got := keyOf(t, "notifyPayment", string(resent)); got != k {
			t.Errorf("resent adjustment: key %q, want %q", got, k)
		}
	}
	for _, tc := range []struct{ body, want string }{
		{pay, "2020010123456789XXXX:PAYMENT_RESULT:S"},
		{replaceOnce(t, pay, `"value": "4200"`, `"value": "5200"`), "2020010123456789XXXX:PAYMENT_RESULT:S"},
		{replaceOnce(t, pay, `"PAYMENT_RESULT"`, `"PAYMENT_PENDING"`), "2020010123456789XXXX:PAYMENT_PENDING:S"},
		// The condition is the exact value: any other notifyType,
		// lower case included, has no digest.
		{replaceOnce(t, pay, `"PAYMENT_RESULT"`, `"update_amount_result"`), "2020010123456789XXXX:update_amount_result:S"},
	} {
		if got := keyOf(t, "notifyPayment", tc.body); got != tc.want {
			t.Errorf("key %q, want %q", got, tc.want)
		}
	}
}

// The limitation docs/antom.md states ("What a digest cannot tell
// apart"): a subscription changed to X, to Y and back to X within the
// retention window sends a third body with the first's content, and so
// the first's key; nothing in the body tells them apart.
func TestAntomDigestCannotTellABackChangeApart(t *testing.T) {
	sub := sample(t, "notifySubscription")
	change := func(end string) string {
		return replaceOnce(t, sub, `"CREATE"`, `"CHANGE"`, `"2027-01-01T12:00:00+08:00"`, `"`+end+`"`)
	}
	x, y, backToX := change("2027-06-01T12:00:00+08:00"), change("2028-01-01T12:00:00+08:00"), change("2027-06-01T12:00:00+08:00")
	kx, ky, kBack := keyOf(t, "notifySubscription", x), keyOf(t, "notifySubscription", y), keyOf(t, "notifySubscription", backToX)
	if kx == ky || kBack != kx {
		t.Errorf("X %q, Y %q, back to X %q: the doc says the third has the first's key", kx, ky, kBack)
	}
}

// No key is longer than MaxKeyLength, even with every key part at its
// maximum length in four-byte characters or in escaped '%' signs.
func TestAntomKeyBound(t *testing.T) {
	long := func(s string, n int) string { return strings.Repeat(s, n) }
	for _, part := range []string{"😀", "%", ":"} {
		body := replaceOnce(t, sample(t, "notifyPayment"),
			`"2020010123456789XXXX"`, `"`+long(part, 64)+`"`,
			`"PAYMENT_RESULT"`, `"`+long(part, 32)+`"`)
		k := keyOf(t, "notifyPayment", body)
		if len(k) > MaxKeyLength || !strings.HasSuffix(k, ":S") {
			t.Errorf("%q parts: key of %d bytes", part, len(k))
		}
	}
}

// The keys of the vaulting and subscription notifications: two
// notifications the key tells apart get two keys, a resend (in another
// form) gets the same one, and a notification's own failure or
// termination is content keyed apart from the success.
func TestAntomVaultingAndSubscriptionKeys(t *testing.T) {
	vault := sample(t, "notifyVaulting")
	vaultKey := keyOf(t, "notifyVaulting", vault)
	compact := func(body string) string {
		b, err := json.Marshal(json.RawMessage(body))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for name, tc := range map[string]struct {
		body, want string
	}{
		"vaulting resend, compacted":   {compact(vault), vaultKey},
		"vaulting resend, reordered":   {`{"paymentMethodDetail":{"card":{"maskedCardNo":"************0000"},"paymentMethodType":"CARD"},"vaultingStatus":"SUCCESS","vaultingRequestId":"vaultingRequestId_EXAMPLE_0001","result":{"resultStatus":"S","resultCode":"SUCCESS"}}`, vaultKey},
		"vaulting processing":          {replaceOnce(t, vault, `"vaultingStatus": "SUCCESS"`, `"vaultingStatus": "PROCESSING"`), "vaultingRequestId_EXAMPLE_0001:S:PROCESSING"},
		"vaulting failed":              {replaceOnce(t, vault, `"resultStatus": "S"`, `"resultStatus": "F"`, `"vaultingStatus": "SUCCESS"`, `"vaultingStatus": "FAIL"`), "vaultingRequestId_EXAMPLE_0001:F:FAIL"},
		"another vaulting":             {replaceOnce(t, vault, `"vaultingRequestId_EXAMPLE_0001"`, `"vaultingRequestId_EXAMPLE_0002"`), "vaultingRequestId_EXAMPLE_0002:S:SUCCESS"},
		"vaulting id with a separator": {replaceOnce(t, vault, `"vaultingRequestId_EXAMPLE_0001"`, `"v:1%"`), "v%3A1%25:S:SUCCESS"},
	} {
		if got := keyOf(t, "notifyVaulting", tc.body); got != tc.want {
			t.Errorf("%s: key %q, want %q", name, got, tc.want)
		}
	}
	if vaultKey != "vaultingRequestId_EXAMPLE_0001:S:SUCCESS" {
		t.Errorf("vaulting key %q", vaultKey)
	}

	// A subscription's key: its request ID, the notification type and a
	// digest of the content. A resend in any form keeps it; a second
	// CHANGE with other content, a TERMINATE and a termination are each
	// another notification.
	sub := sample(t, "notifySubscription")
	subKey := keyOf(t, "notifySubscription", sub)
	if got := keyOf(t, "notifySubscription", compact(sub)); got != subKey {
		t.Errorf("compacted subscription: key %q, want %q", got, subKey)
	}
	escaped := replaceOnce(t, sub, `"ACTIVE"`, `"\u0041CTIVE"`)
	if got := keyOf(t, "notifySubscription", escaped); got != subKey {
		t.Errorf("escaped subscription: key %q, want %q", got, subKey)
	}
	change1 := replaceOnce(t, sub, `"CREATE"`, `"CHANGE"`, `"2027-01-01T12:00:00+08:00"`, `"2027-06-01T12:00:00+08:00"`)
	change2 := replaceOnce(t, sub, `"CREATE"`, `"CHANGE"`, `"2027-01-01T12:00:00+08:00"`, `"2028-01-01T12:00:00+08:00"`)
	terminated := replaceOnce(t, sub, `"ACTIVE"`, `"TERMINATED"`, `"CREATE"`, `"TERMINATE"`)
	keys := map[string]string{subKey: "the sample"}
	for name, body := range map[string]string{"first CHANGE": change1, "second CHANGE": change2, "TERMINATE": terminated} {
		k := keyOf(t, "notifySubscription", body)
		if prev, dup := keys[k]; dup {
			t.Errorf("%s has the key of %s: %q", name, prev, k)
		}
		keys[k] = name
		if !strings.HasPrefix(k, "subscriptionRequestId_EXAMPLE_0001:") || !strings.HasSuffix(k, ":"+digestPart(t, body)) {
			t.Errorf("%s: key %q", name, k)
		}
	}
	if got := keyOf(t, "notifySubscription", change1); !strings.HasPrefix(got, "subscriptionRequestId_EXAMPLE_0001:CHANGE:") {
		t.Errorf("CHANGE key %q", got)
	}

	// A period payment: paymentId and the result status.
	subPay := sample(t, "notifySubscriptionPayment")
	failedSubPay := replaceOnce(t, subPay, `"resultStatus": "S"`, `"resultStatus": "F"`)
	for name, tc := range map[string]struct {
		body, want string
	}{
		"period payment resend": {compact(subPay), "20260201EXAMPLEPAYMENTID0001:S"},
		"next period":           {replaceOnce(t, subPay, `"20260201EXAMPLEPAYMENTID0001"`, `"20260301EXAMPLEPAYMENTID0002"`, `"phaseNo": "2"`, `"phaseNo": "3"`), "20260301EXAMPLEPAYMENTID0002:S"},
		"period payment failed": {failedSubPay, "20260201EXAMPLEPAYMENTID0001:F:" + digestPart(t, failedSubPay)},
	} {
		if got := keyOf(t, "notifySubscriptionPayment", tc.body); got != tc.want {
			t.Errorf("%s: key %q, want %q", name, got, tc.want)
		}
	}
}

// Antom rules: every failure names the field and never quotes a value.
// The bodies are the samples with one change each; SECRET marks a value
// the message must not show.
func TestAntomRejects(t *testing.T) {
	pay, capture, refund := sample(t, "notifyPayment"), sample(t, "notifyCapture"), sample(t, "notifyRefund")
	dispute, reg := sample(t, "notifyDispute"), sample(t, "notifyRegistrationStatus")
	vault, sub, subPay := sample(t, "notifyVaulting"), sample(t, "notifySubscription"), sample(t, "notifySubscriptionPayment")
	long := func(n int) string { return strings.Repeat("S", n) }
	for _, tc := range []struct {
		name, api string
		body      string
		edits     []string // old, new pairs applied to body
		strict    bool
		want      string
	}{
		// notifyPayment: typing.
		{"amount value a number", "notifyPayment", pay, []string{`"value": "4200"`, `"value": 4200`}, false, "paymentAmount.value must be a JSON string"},
		{"amount value a float", "notifyPayment", pay, []string{`"value": "4200"`, `"value": 42.00`}, false, "paymentAmount.value must be a JSON string"},
		{"amount an array", "notifyPayment", pay, []string{`"paymentAmount": {`, `"paymentAmount": ["SECRET"], "x": {`}, false, "paymentAmount must be a JSON object"},
		{"resultStatus a boolean", "notifyPayment", pay, []string{`"resultStatus": "S"`, `"resultStatus": true`}, false, "result.resultStatus must be a JSON string"},
		{"result a string", "notifyPayment", pay, []string{`"result": {`, `"result": "SECRET", "x": {`}, false, "result must be a JSON object"},
		{"unknown member a number", "notifyPayment", pay, []string{`"paymentTime"`, `"extra": {"pspCustomerInfo": [{"userId": 7}]}, "paymentTime"`}, false, "extra.pspCustomerInfo[0].userId must be a JSON string"},
		{"paymentId an object", "notifyPayment", pay, []string{`"paymentId": "2020010123456789XXXX"`, `"paymentId": {"a": "SECRET"}`}, false, "paymentId must be a JSON string"},
		// notifyPayment: rules.
		{"notifyType missing", "notifyPayment", pay, []string{`"notifyType": "PAYMENT_RESULT",`, ``}, false, "notifyType is required"},
		{"notifyType null", "notifyPayment", pay, []string{`"PAYMENT_RESULT"`, `null`}, false, "notifyType is required"},
		{"notifyType 33", "notifyPayment", pay, []string{`"PAYMENT_RESULT"`, `"` + long(33) + `"`}, false, "notifyType must be at most 32 characters"},
		{"notifyType unknown, strict", "notifyPayment", pay, []string{`"PAYMENT_RESULT"`, `"SECRET_RESULT"`}, true, "notifyType must be one of PAYMENT_RESULT, PAYMENT_PENDING, UPDATE_AMOUNT_RESULT"},
		{"notifyType lower case, strict", "notifyPayment", pay, []string{`"PAYMENT_RESULT"`, `"payment_result"`}, true, "notifyType must be one of PAYMENT_RESULT, PAYMENT_PENDING, UPDATE_AMOUNT_RESULT"},
		{"result missing", "notifyPayment", pay, []string{`"result": {`, `"x": {`}, false, "result is required"},
		{"resultCode missing", "notifyPayment", pay, []string{`"resultCode": "SUCCESS",`, ``}, false, "result.resultCode is required"},
		{"resultCode 65", "notifyPayment", pay, []string{`"resultCode": "SUCCESS"`, `"resultCode": "` + long(65) + `"`}, false, "result.resultCode must be at most 64 characters"},
		{"resultStatus missing", "notifyPayment", pay, []string{`"resultStatus": "S",`, ``}, false, "result.resultStatus is required"},
		{"resultStatus empty", "notifyPayment", pay, []string{`"resultStatus": "S"`, `"resultStatus": ""`}, false, "result.resultStatus must not be empty"},
		{"resultStatus unknown", "notifyPayment", pay, []string{`"resultStatus": "S"`, `"resultStatus": "X"`}, false, "result.resultStatus must be one of S, F, U"},
		{"resultStatus lower case", "notifyPayment", pay, []string{`"resultStatus": "S"`, `"resultStatus": "s"`}, false, "result.resultStatus must be one of S, F, U"},
		{"resultStatus long", "notifyPayment", pay, []string{`"resultStatus": "S"`, `"resultStatus": "SS"`}, false, "result.resultStatus must be at most 1 characters"},
		{"resultMessage 257", "notifyPayment", pay, []string{`"resultMessage": "success"`, `"resultMessage": "` + long(257) + `"`}, false, "result.resultMessage must be at most 256 characters"},
		{"paymentRequestId missing", "notifyPayment", pay, []string{`"paymentRequestId": "paymentRequestId01",`, ``}, false, "paymentRequestId is required"},
		{"paymentRequestId 65", "notifyPayment", pay, []string{`"paymentRequestId01"`, `"` + long(65) + `"`}, false, "paymentRequestId must be at most 64 characters"},
		{"paymentId missing", "notifyPayment", pay, []string{`"paymentId": "2020010123456789XXXX",`, ``}, false, "paymentId is required"},
		{"paymentId empty", "notifyPayment", pay, []string{`"2020010123456789XXXX"`, `""`}, false, "paymentId must not be empty"},
		{"paymentId 65 four-byte", "notifyPayment", pay, []string{`"2020010123456789XXXX"`, `"` + strings.Repeat("😀", 65) + `"`}, false, "paymentId must be at most 64 characters"},
		{"paymentId escaped newline", "notifyPayment", pay, []string{`"2020010123456789XXXX"`, `"SECRET\n"`}, false, "paymentId must not contain control characters"},
		{"paymentId DEL", "notifyPayment", pay, []string{`"2020010123456789XXXX"`, "\"SECRET\x7f\""}, false, "paymentId must not contain control characters"},
		{"paymentId leading space", "notifyPayment", pay, []string{`"2020010123456789XXXX"`, `" SECRET"`}, false, "paymentId must not contain spaces or separators"},
		{"notifyType escaped tab", "notifyPayment", pay, []string{`"PAYMENT_RESULT"`, `"PAYMENT_RESULT\t"`}, false, "notifyType must not contain control characters"},
		{"paymentAmount missing", "notifyPayment", pay, []string{`"paymentAmount": {`, `"x": {`}, false, "paymentAmount is required"},
		{"currency missing", "notifyPayment", pay, []string{`"value": "4200",`, `"value": "4200"`, `"currency": "SGD"`, ``}, false, "paymentAmount.currency is required"},
		{"currency 4", "notifyPayment", pay, []string{`"SGD"`, `"SGDX"`}, false, "paymentAmount.currency must be at most 3 characters"},
		{"value empty", "notifyPayment", pay, []string{`"value": "4200"`, `"value": ""`}, false, "paymentAmount.value must not be empty"},
		{"value 17", "notifyPayment", pay, []string{`"value": "4200"`, `"value": "12345678901234567"`}, false, "paymentAmount.value must be at most 16 characters"},
		{"optional amount without value", "notifyPayment", pay, []string{`"paymentTime"`, `"grossSettlementAmount": {"currency": "SGD"}, "paymentTime"`}, false, "grossSettlementAmount.value is required"},
		{"paymentCreateTime missing, strict", "notifyPayment", pay, []string{`"paymentCreateTime": "2020-01-01T12:01:00+08:30",`, ``}, true, "paymentCreateTime is required"},
		{"settlementQuote a string", "notifyPayment", pay, []string{`"paymentTime"`, `"settlementQuote": "SECRET", "paymentTime"`}, false, "settlementQuote must be a JSON object"},
		{"duplicate paymentId", "notifyPayment", pay, []string{`"paymentTime"`, `"payment\u0049d": "SECRET", "paymentTime"`}, false, "paymentId is a duplicate key"},
		{"paymentId alias payment_id", "notifyPayment", pay, []string{`"paymentTime"`, `"payment_id": "SECRET", "paymentTime"`}, false, "payment_id is a duplicate key when letter case, '_' and '-' are ignored"},
		{"resultStatus alias in result", "notifyPayment", pay, []string{`"resultStatus": "S"`, `"resultStatus": "S", "result_status": "F"`}, false, "result.result_status is a duplicate key when letter case, '_' and '-' are ignored"},

		// notifyCapture.
		{"capture amount a number", "notifyCapture", capture, []string{`"value": "50000"`, `"value": 50000`}, false, "captureAmount.value must be a JSON string"},
		{"captureId missing", "notifyCapture", capture, []string{`"captureId": "2022XXXXXXX",`, ``}, false, "captureId is required"},
		{"captureRequestId 65", "notifyCapture", capture, []string{`"Merchant_Request_ID_XXXXXX"`, `"` + long(65) + `"`}, false, "captureRequestId must be at most 64 characters"},
		{"capture paymentId missing", "notifyCapture", capture, []string{`"paymentId": "2022XXXXXXX",`, ``}, false, "paymentId is required"},
		{"capture notifyType missing", "notifyCapture", capture, []string{`"notifyType": "CAPTURE_RESULT",`, ``}, false, "notifyType is required"},
		{"capture notifyType other, strict", "notifyCapture", capture, []string{`"CAPTURE_RESULT"`, `"PAYMENT_RESULT"`}, true, "notifyType must be CAPTURE_RESULT"},
		{"capture result missing", "notifyCapture", capture, []string{`"result": {`, `"x": {`}, false, "result is required"},
		{"captureTime an object", "notifyCapture", capture, []string{`"captureTime": "2022-11-10T00:34:52-08:00"`, `"captureTime": {}`}, false, "captureTime must be a JSON string"},

		// notifyRefund.
		{"refund amount value null", "notifyRefund", refund, []string{`"value": "10000"`, `"value": null`}, false, "refundAmount.value is required"},
		{"refund amount value true", "notifyRefund", refund, []string{`"value": "10000"`, `"value": true`}, false, "refundAmount.value must be a JSON string"},
		{"refundStatus missing", "notifyRefund", refund, []string{`"refundStatus": "SUCCESS",`, ``}, false, "refundStatus is required"},
		{"refundStatus unknown, strict", "notifyRefund", refund, []string{`"refundStatus": "SUCCESS"`, `"refundStatus": "PROCESSING"`}, true, "refundStatus must be one of SUCCESS, FAIL"},
		{"refundStatus 33", "notifyRefund", refund, []string{`"refundStatus": "SUCCESS"`, `"refundStatus": "` + long(33) + `"`}, false, "refundStatus must be at most 32 characters"},
		{"refundId missing", "notifyRefund", refund, []string{`"refundId": "2021080419401080130018866020092XXXX",`, ``}, false, "refundId is required"},
		{"refundRequestId empty", "notifyRefund", refund, []string{`"amsdemorefund_zhangyikai_zyk_20210804_165236_931"`, `""`}, false, "refundRequestId must not be empty"},
		{"refund metadata 2049", "notifyRefund", refund, []string{`"refundTime"`, `"metadata": "` + long(2049) + `", "refundTime"`}, false, "metadata must be at most 2048 characters"},
		{"refund notifyType other, strict", "notifyRefund", refund, []string{`"REFUND_RESULT"`, `"PAYMENT_RESULT"`}, true, "notifyType must be REFUND_RESULT"},

		// notifyDispute.
		{"dispute amount a number", "notifyDispute", dispute, []string{`"value": "1000"`, `"value": 1000`}, false, "disputeAmount.value must be a JSON string"},
		{"disputeId missing", "notifyDispute", dispute, []string{`"disputeId": "202209212501310115730104****",`, ``}, false, "disputeId is required"},
		{"dispute paymentRequestId missing", "notifyDispute", dispute, []string{`,
  "paymentRequestId": "requestId_12345****"`, ``}, false, "paymentRequestId is required"},
		{"disputeNotificationType missing", "notifyDispute", dispute, []string{`"disputeNotificationType": "DISPUTE_CREATED",`, ``}, false, "disputeNotificationType is required"},
		{"disputeNotificationType 31", "notifyDispute", dispute, []string{`"DISPUTE_CREATED"`, `"` + long(31) + `"`}, false, "disputeNotificationType must be at most 30 characters"},
		{"disputeNotificationType unknown, strict", "notifyDispute", dispute, []string{`"DISPUTE_CREATED"`, `"SECRET_TYPE"`}, true,
			"disputeNotificationType must be one of DISPUTE_CREATED, DISPUTE_JUDGED, DISPUTE_CANCELLED, DEFENSE_SUPPLIED, DEFENSE_DUE_ALERT, DISPUTE_ACCEPTED, RDR_RESOLVED"},
		{"disputeJudgedResult unknown, strict", "notifyDispute", dispute, []string{`"disputeSource"`, `"disputeJudgedResult": "SECRET", "disputeSource"`}, true,
			"disputeJudgedResult must be one of ACCEPT_BY_CUSTOMER, ACCEPT_BY_MERCHANT, VALIDATE_SUCCESS, VALIDATE_FAIL"},
		{"disputeReasonCode 65", "notifyDispute", dispute, []string{`"4853"`, `"` + long(65) + `"`}, false, "disputeReasonCode must be at most 64 characters"},
		{"disputeJudgedAmount without currency", "notifyDispute", dispute, []string{`"disputeSource"`, `"disputeJudgedAmount": {"value": "1"}, "disputeSource"`}, false, "disputeJudgedAmount.currency is required"},

		// notifyRegistrationStatus.
		{"registrationRequestId a number", "notifyRegistrationStatus", reg, []string{`"202009181105860200000600142****"`, `202009181105860200000600142`}, false, "registrationRequestId must be a JSON string"},
		{"registrationRequestId empty", "notifyRegistrationStatus", reg, []string{`"202009181105860200000600142****"`, `""`}, false, "registrationRequestId must not be empty"},
		{"registrationRequestId 65", "notifyRegistrationStatus", reg, []string{`"202009181105860200000600142****"`, `"` + long(65) + `"`}, false, "registrationRequestId must be at most 64 characters"},
		{"registrationRequestId control", "notifyRegistrationStatus", reg, []string{`"202009181105860200000600142****"`, `"SECRET\u0000"`}, false, "registrationRequestId must not contain control characters"},
		{"referenceStoreId 33", "notifyRegistrationStatus", reg, []string{`"34****"`, `"` + long(33) + `"`}, false, "referenceStoreId must be at most 32 characters"},
		{"registrationResult a string", "notifyRegistrationStatus", reg, []string{`"registrationResult": {
    "registrationStatus": "COMPLETED"
  }`, `"registrationResult": "SECRET"`}, false, "registrationResult must be a JSON object"},
		{"registrationStatus a number", "notifyRegistrationStatus", reg, []string{`"COMPLETED"`, `1`}, false, "registrationResult.registrationStatus must be a JSON string"},
		{"wallet name a number", "notifyRegistrationStatus", reg, []string{`"AlipayCN"`, `7`}, false, "pspRegistrationResultList[0].pspName must be a JSON string"},
		{"wallet status a boolean", "notifyRegistrationStatus", reg, []string{`"APPROVED"`, `false`}, false, "pspRegistrationResultList[0].registrationResult.registrationStatus must be a JSON string"},

		// notifyVaulting.
		{"vaulting resultStatus a number", "notifyVaulting", vault, []string{`"resultStatus": "S"`, `"resultStatus": 1`}, false, "result.resultStatus must be a JSON string"},
		{"vaulting card token a number", "notifyVaulting", vault, []string{`"EXAMPLE-CARD-TOKEN-NOT-A-REAL-TOKEN"`, `4111`}, false, "paymentMethodDetail.card.cardToken must be a JSON string"},
		{"vaultingRequestId a number", "notifyVaulting", vault, []string{`"vaultingRequestId_EXAMPLE_0001"`, `1001`}, false, "vaultingRequestId must be a JSON string"},
		{"vaultingRequestId missing", "notifyVaulting", vault, []string{`"vaultingRequestId": "vaultingRequestId_EXAMPLE_0001",`, ``}, false, "vaultingRequestId is required"},
		{"vaultingRequestId 65", "notifyVaulting", vault, []string{`"vaultingRequestId_EXAMPLE_0001"`, `"` + long(65) + `"`}, false, "vaultingRequestId must be at most 64 characters"},
		{"vaultingRequestId with a space", "notifyVaulting", vault, []string{`"vaultingRequestId_EXAMPLE_0001"`, `"SECRET 1"`}, false, "vaultingRequestId must not contain spaces or separators"},
		{"vaulting result missing", "notifyVaulting", vault, []string{`"result": {`, `"x": {`}, false, "result is required"},
		{"vaulting resultStatus missing", "notifyVaulting", vault, []string{`"resultStatus": "S",`, ``}, false, "result.resultStatus is required"},
		{"paymentMethodDetail missing, strict", "notifyVaulting", vault, []string{`"paymentMethodDetail": {`, `"x": {`}, true, "paymentMethodDetail is required"},
		{"paymentMethodDetail a string", "notifyVaulting", vault, []string{`"vaultingCreateTime"`, `"paymentMethodDetail": "SECRET", "vaultingCreateTime"`, `"paymentMethodDetail": {`, `"x": {`}, false, "paymentMethodDetail must be a JSON object"},
		{"vaultingStatus 11", "notifyVaulting", vault, []string{`"vaultingStatus": "SUCCESS"`, `"vaultingStatus": "` + long(11) + `"`}, false, "vaultingStatus must be at most 10 characters"},
		{"vaultingStatus unknown, strict", "notifyVaulting", vault, []string{`"vaultingStatus": "SUCCESS"`, `"vaultingStatus": "SECRET"`}, true, "vaultingStatus must be one of SUCCESS, FAIL, PROCESSING"},
		{"vaultingCreateTime missing, strict", "notifyVaulting", vault, []string{`,
  "vaultingCreateTime": "2026-01-01T12:01:00+08:00"`, ``}, true, "vaultingCreateTime is required"},

		// notifySubscription.
		{"subscriptionStatus a number", "notifySubscription", sub, []string{`"ACTIVE"`, `1`}, false, "subscriptionStatus must be a JSON string"},
		{"periodCount a boolean", "notifySubscription", sub, []string{`"periodCount": "1"`, `"periodCount": true`}, false, "periodRule.periodCount must be a JSON string or number"},
		{"periodType a number", "notifySubscription", sub, []string{`"periodType": "MONTH"`, `"periodType": 1`}, false, "periodRule.periodType must be a JSON string"},
		{"subscriptionRequestId missing", "notifySubscription", sub, []string{`"subscriptionRequestId": "subscriptionRequestId_EXAMPLE_0001",`, ``}, false, "subscriptionRequestId is required"},
		{"subscriptionRequestId 65", "notifySubscription", sub, []string{`"subscriptionRequestId_EXAMPLE_0001"`, `"` + long(65) + `"`}, false, "subscriptionRequestId must be at most 64 characters"},
		{"subscriptionRequestId control", "notifySubscription", sub, []string{`"subscriptionRequestId_EXAMPLE_0001"`, `"SECRET\r"`}, false, "subscriptionRequestId must not contain control characters"},
		{"subscriptionStatus missing", "notifySubscription", sub, []string{`"subscriptionStatus": "ACTIVE",`, ``}, false, "subscriptionStatus is required"},
		{"subscriptionStatus 33", "notifySubscription", sub, []string{`"ACTIVE"`, `"` + long(33) + `"`}, false, "subscriptionStatus must be at most 32 characters"},
		{"subscriptionStatus unknown, strict", "notifySubscription", sub, []string{`"ACTIVE"`, `"SECRET"`}, true, "subscriptionStatus must be one of ACTIVE, TERMINATED, CANCELLED"},
		{"subscriptionNotificationType missing", "notifySubscription", sub, []string{`"subscriptionNotificationType": "CREATE",`, ``}, false, "subscriptionNotificationType is required"},
		{"subscriptionNotificationType empty", "notifySubscription", sub, []string{`"CREATE"`, `""`}, false, "subscriptionNotificationType must not be empty"},
		{"subscriptionNotificationType unknown, strict", "notifySubscription", sub, []string{`"CREATE"`, `"SECRET"`}, true, "subscriptionNotificationType must be one of CREATE, CHANGE, CANCEL, TERMINATE, UPDATE"},
		{"subscriptionId 65", "notifySubscription", sub, []string{`"20260101EXAMPLESUBSCRIPTIONID0001"`, `"` + long(65) + `"`}, false, "subscriptionId must be at most 64 characters"},
		{"subscriptionId missing, strict", "notifySubscription", sub, []string{`"subscriptionId": "20260101EXAMPLESUBSCRIPTIONID0001",`, ``}, true, "subscriptionId is required"},
		{"subscriptionEndTime missing, strict", "notifySubscription", sub, []string{`"subscriptionEndTime": "2027-01-01T12:00:00+08:00",`, ``}, true, "subscriptionEndTime is required"},
		{"periodRule missing, strict", "notifySubscription", sub, []string{`,
  "periodRule": {
    "periodType": "MONTH",
    "periodCount": "1"
  }`, ``}, true, "periodRule is required"},
		{"periodRule a string", "notifySubscription", sub, []string{`"periodRule": {`, `"periodRule": "SECRET", "x": {`}, false, "periodRule must be a JSON object"},

		// notifySubscriptionPayment.
		{"period payment amount a number", "notifySubscriptionPayment", subPay, []string{`"value": "999"`, `"value": 999`}, false, "paymentAmount.value must be a JSON string"},
		{"phaseNo a boolean", "notifySubscriptionPayment", subPay, []string{`"phaseNo": "2"`, `"phaseNo": false`}, false, "phaseNo must be a JSON string or number"},
		{"phaseNo an object", "notifySubscriptionPayment", subPay, []string{`"phaseNo": "2"`, `"phaseNo": {"n": "SECRET"}`}, false, "phaseNo must be a JSON string or number"},
		// Its string rules hold when it is a string.
		{"phaseNo an empty string", "notifySubscriptionPayment", subPay, []string{`"phaseNo": "2"`, `"phaseNo": ""`}, false, "phaseNo must not be empty"},
		{"phaseNo a string of 65", "notifySubscriptionPayment", subPay, []string{`"phaseNo": "2"`, `"phaseNo": "` + long(65) + `"`}, false, "phaseNo must be at most 64 characters"},
		{"period availableRetries a string array", "notifySubscriptionPayment", subPay, []string{`"phaseNo": "2"`, `"phaseNo": "2", "retryInfo": {"availableRetries": ["SECRET"]}`}, false, "retryInfo.availableRetries must be a JSON string or number"},
		{"period retryInfo other member a number", "notifySubscriptionPayment", subPay, []string{`"phaseNo": "2"`, `"phaseNo": "2", "retryInfo": {"availableRetries": 2, "retryInterval": 60}`}, false, "retryInfo.retryInterval must be a JSON string"},

		// The booleans and numbers some fields allow (field.also): only
		// there, only in JSON's own grammar, and within bounds.
		{"defendable a number", "notifyDispute", dispute, []string{`"disputeSource"`, `"defendable": 1, "disputeSource"`}, false, "defendable must be a JSON string or boolean"},
		{"defendable an object", "notifyDispute", dispute, []string{`"disputeSource"`, `"defendable": {"a": "SECRET"}, "disputeSource"`}, false, "defendable must be a JSON string or boolean"},
		{"defendable an array", "notifyDispute", dispute, []string{`"disputeSource"`, `"defendable": [true], "disputeSource"`}, false, "defendable[0] must be a JSON string"},
		{"defendable True", "notifyDispute", dispute, []string{`"disputeSource"`, `"defendable": True, "disputeSource"`}, false, "body is not valid JSON at offset 308"},
		{"defendable truex", "notifyDispute", dispute, []string{`"disputeSource"`, `"defendable": truex, "disputeSource"`}, false, "body is not valid JSON at offset 312"},
		{"defendable beside disputeSource", "notifyDispute", dispute, []string{`"disputeSource": "Mastercard"`, `"disputeSource": false`}, false, "disputeSource must be a JSON string"},
		{"defendable nested elsewhere", "notifyDispute", dispute, []string{`"disputeSource"`, `"issuerComments": {"defendable": true}, "disputeSource"`}, false, "issuerComments.defendable must be a JSON string"},
		{"disputeAmount value still a string", "notifyDispute", dispute, []string{`"value": "1000"`, `"value": 1000`, `"disputeSource"`, `"defendable": true, "disputeSource"`}, false, "disputeAmount.value must be a JSON string"},
		{"quotePrice a boolean", "notifyPayment", pay, []string{`"paymentTime"`, `"settlementQuote": {"quotePrice": true}, "paymentTime"`}, false, "settlementQuote.quotePrice must be a JSON string or number"},
		{"quotePrice with a plus", "notifyPayment", pay, []string{`"paymentTime"`, `"settlementQuote": {"quotePrice": +1}, "paymentTime"`}, false, "body is not valid JSON at offset 380"},
		{"quotePrice with a leading zero", "notifyPayment", pay, []string{`"paymentTime"`, `"settlementQuote": {"quotePrice": 01}, "paymentTime"`}, false, "body is not valid JSON at offset 381"},
		{"quotePrice ending in a dot", "notifyPayment", pay, []string{`"paymentTime"`, `"settlementQuote": {"quotePrice": 1.}, "paymentTime"`}, false, "body is not valid JSON at offset 382"},
		{"quotePrice a bare exponent", "notifyPayment", pay, []string{`"paymentTime"`, `"settlementQuote": {"quotePrice": 1e}, "paymentTime"`}, false, "body is not valid JSON at offset 382"},
		{"quotePrice a minus", "notifyPayment", pay, []string{`"paymentTime"`, `"settlementQuote": {"quotePrice": -}, "paymentTime"`}, false, "body is not valid JSON at offset 381"},
		{"quotePrice NaN", "notifyPayment", pay, []string{`"paymentTime"`, `"settlementQuote": {"quotePrice": NaN}, "paymentTime"`}, false, "body is not valid JSON at offset 380"},
		{"quotePrice of 65 characters", "notifyPayment", pay, []string{`"paymentTime"`, `"settlementQuote": {"quotePrice": 1.` + strings.Repeat("0", 63) + `}, "paymentTime"`}, false, "settlementQuote.quotePrice must be a JSON number of at most 64 characters"},
		{"quotePrice with a huge exponent", "notifyPayment", pay, []string{`"paymentTime"`, `"settlementQuote": {"quotePrice": 1e0001000000}, "paymentTime"`}, false, "settlementQuote.quotePrice must be a JSON number with an exponent of at most 6 digits"},
		{"guaranteed a number", "notifyPayment", pay, []string{`"paymentTime"`, `"settlementQuote": {"guaranteed": 1}, "paymentTime"`}, false, "settlementQuote.guaranteed must be a JSON string or boolean"},
		{"settlementQuote other member a number", "notifyPayment", pay, []string{`"paymentTime"`, `"settlementQuote": {"quotePrice": 1.2, "quoteId": 7}, "paymentTime"`}, false, "settlementQuote.quoteId must be a JSON string"},
		{"quotePrice in an array", "notifyPayment", pay, []string{`"paymentTime"`, `"settlementQuote": {"quotes": [{"quotePrice": 1}]}, "paymentTime"`}, false, "settlementQuote.quotes[0].quotePrice must be a JSON string"},
		{"availableRetries a boolean", "notifyPayment", pay, []string{`"paymentTime"`, `"retryInfo": {"availableRetries": false}, "paymentTime"`}, false, "retryInfo.availableRetries must be a JSON string or number"},
		{"installmentNum a boolean", "notifyPayment", pay, []string{`"paymentTime"`, `"paymentResultInfo": {"creditPayPlan": {"installmentNum": true}}, "paymentTime"`}, false, "paymentResultInfo.creditPayPlan.installmentNum must be a JSON string or number"},
		{"creditPayPlan interval a number", "notifyPayment", pay, []string{`"paymentTime"`, `"paymentResultInfo": {"creditPayPlan": {"installmentNum": 3, "interval": 1}}, "paymentTime"`}, false, "paymentResultInfo.creditPayPlan.interval must be a JSON string"},
		{"installmentNum elsewhere", "notifyPayment", pay, []string{`"paymentTime"`, `"paymentResultInfo": {"installmentNum": 3}, "paymentTime"`}, false, "paymentResultInfo.installmentNum must be a JSON string"},
		{"period installmentNum a boolean", "notifySubscriptionPayment", subPay, []string{`"phaseNo": "2"`, `"phaseNo": "2", "paymentResultInfo": {"creditPayPlan": {"installmentNum": true}}`}, false, "paymentResultInfo.creditPayPlan.installmentNum must be a JSON string or number"},
		{"period quotePrice a boolean", "notifySubscriptionPayment", subPay, []string{`"phaseNo": "2"`, `"phaseNo": "2", "settlementQuote": {"quotePrice": true}`}, false, "settlementQuote.quotePrice must be a JSON string or number"},
		{"paymentQuote quotePrice a boolean", "notifyPayment", pay, []string{`"paymentTime"`, `"paymentQuote": {"quotePrice": true}, "paymentTime"`}, false, "paymentQuote.quotePrice must be a JSON string or number"},
		{"paymentQuote guaranteed a number", "notifyPayment", pay, []string{`"paymentTime"`, `"paymentQuote": {"guaranteed": 1}, "paymentTime"`}, false, "paymentQuote.guaranteed must be a JSON string or boolean"},
		{"paymentQuote other member a number", "notifyPayment", pay, []string{`"paymentTime"`, `"paymentQuote": {"quotePrice": 1.2, "quoteId": 7}, "paymentTime"`}, false, "paymentQuote.quoteId must be a JSON string"},
		{"period paymentQuote guaranteed a number", "notifySubscriptionPayment", subPay, []string{`"phaseNo": "2"`, `"phaseNo": "2", "paymentQuote": {"guaranteed": 0}`}, false, "paymentQuote.guaranteed must be a JSON string or boolean"},
		{"payment allowAccumulate a boolean", "notifyPayment", pay, []string{`"paymentTime"`, `"allowAccumulate": true, "paymentTime"`}, false, "allowAccumulate must be a JSON string"},
		// notifyCapture and notifyRefund carry no paymentQuote.
		{"capture paymentQuote a number", "notifyCapture", capture, []string{`"captureTime"`, `"paymentQuote": {"quotePrice": 1}, "captureTime"`}, false, "paymentQuote.quotePrice must be a JSON string"},
		{"refund paymentQuote a number", "notifyRefund", refund, []string{`"refundTime"`, `"paymentQuote": {"quotePrice": 1}, "refundTime"`}, false, "paymentQuote.quotePrice must be a JSON string"},
		{"allowAccumulate a number", "notifySubscription", sub, []string{`"periodRule"`, `"allowAccumulate": 1, "periodRule"`}, false, "allowAccumulate must be a JSON string or boolean"},
		{"allowAccumulate an object", "notifySubscription", sub, []string{`"periodRule"`, `"allowAccumulate": {"a": "SECRET"}, "periodRule"`}, false, "allowAccumulate must be a JSON string or boolean"},
		{"maxAccumulateAmount value a number", "notifySubscription", sub, []string{`"periodRule"`, `"allowAccumulate": true, "maxAccumulateAmount": {"currency": "USD", "value": 1000}, "periodRule"`}, false, "maxAccumulateAmount.value must be a JSON string"},
		{"is3DSAuthentication a number", "notifyVaulting", vault, []string{`"brand": "VISA",`, `"brand": "VISA", "is3DSAuthentication": 1,`}, false, "paymentMethodDetail.card.is3DSAuthentication must be a JSON string or boolean"},
		{"is3DSAuthentication outside the card", "notifyVaulting", vault, []string{`"paymentMethodType": "CARD",`, `"paymentMethodType": "CARD", "is3DSAuthentication": true,`}, false, "paymentMethodDetail.is3DSAuthentication must be a JSON string"},
		{"vaulting card other member a boolean", "notifyVaulting", vault, []string{`"brand": "VISA",`, `"brand": "VISA", "is3DSAuthentication": true, "funding": false,`}, false, "paymentMethodDetail.card.funding must be a JSON string"},
		// notifyCapture lists neither settlementQuote nor retryInfo.
		{"capture quotePrice a number", "notifyCapture", capture, []string{`"captureTime"`, `"settlementQuote": {"quotePrice": 1}, "captureTime"`}, false, "settlementQuote.quotePrice must be a JSON string"},
		{"capture availableRetries a number", "notifyCapture", capture, []string{`"captureTime"`, `"retryInfo": {"availableRetries": 1}, "captureTime"`}, false, "retryInfo.availableRetries must be a JSON string"},
		{"vaulting acquirerInfo a number", "notifyVaulting", vault, []string{`"vaultingCreateTime"`, `"acquirerInfo": 7, "vaultingCreateTime"`}, false, "acquirerInfo must be a JSON string"},
		{"vaulting acquirerInfo member a boolean", "notifyVaulting", vault, []string{`"vaultingCreateTime"`, `"acquirerInfo": {"x": true}, "vaultingCreateTime"`}, false, "acquirerInfo.x must be a JSON string"},
		{"period paymentId missing", "notifySubscriptionPayment", subPay, []string{`"paymentId": "20260201EXAMPLEPAYMENTID0001",`, ``}, false, "paymentId is required"},
		{"period paymentId tab", "notifySubscriptionPayment", subPay, []string{`"20260201EXAMPLEPAYMENTID0001"`, `"SECRET\t"`}, false, "paymentId must not contain control characters"},
		{"period result missing", "notifySubscriptionPayment", subPay, []string{`"result": {`, `"x": {`}, false, "result is required"},
		{"period resultStatus unknown", "notifySubscriptionPayment", subPay, []string{`"resultStatus": "S"`, `"resultStatus": "P"`}, false, "result.resultStatus must be one of S, F, U"},
		{"period paymentAmount missing", "notifySubscriptionPayment", subPay, []string{`"paymentAmount": {`, `"x": {`}, false, "paymentAmount is required"},
		{"period currency 4", "notifySubscriptionPayment", subPay, []string{`"USD"`, `"USDX"`}, false, "paymentAmount.currency must be at most 3 characters"},
		{"period paymentCreateTime missing", "notifySubscriptionPayment", subPay, []string{`"paymentCreateTime": "2026-02-01T12:00:00+08:00",`, ``}, false, "paymentCreateTime is required"},
		{"period subscriptionId 65", "notifySubscriptionPayment", subPay, []string{`"20260101EXAMPLESUBSCRIPTIONID0001"`, `"` + long(65) + `"`}, false, "subscriptionId must be at most 64 characters"},
		{"period subscriptionRequestId missing, strict", "notifySubscriptionPayment", subPay, []string{`"subscriptionRequestId": "subscriptionRequestId_EXAMPLE_0001",`, ``}, true, "subscriptionRequestId is required"},
		{"periodStartTime missing, strict", "notifySubscriptionPayment", subPay, []string{`"periodStartTime": "2026-02-01T12:00:00+08:00",`, ``}, true, "periodStartTime is required"},
		{"phaseNo missing, strict", "notifySubscriptionPayment", subPay, []string{`,
  "phaseNo": "2"`, ``}, true, "phaseNo is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := replaceOnce(t, tc.body, tc.edits...)
			_, err := mustAPI(t, tc.api).Validate([]byte(body), Options{Strict: tc.strict})
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want *FieldError %q", err, tc.want)
			}
			if fe.Error() != tc.want {
				t.Errorf("error %q, want %q", fe.Error(), tc.want)
			}
			if strings.Contains(fe.Error(), "SECRET") || utf8.RuneCountInString(fe.Error()) > MaxMessageLength {
				t.Errorf("message quotes a value or is too long: %q", fe.Error())
			}
			if tc.strict { // a strict-only rule: the default mode accepts the body
				if _, err := mustAPI(t, tc.api).Validate([]byte(body), Options{}); err != nil {
					t.Errorf("default mode: %v", err)
				}
			}
		})
	}
}

// Strict mode requires what only some editions require, but never what a
// failure legitimately lacks: a failed vaulting has no paymentMethodDetail
// (the vaulted method's details exist only once it succeeded), and a
// failed subscription creation has no subscriptionId (the One API edition,
// https://docs.antom.com/ac/oneapi/notify_sub). Refusing them would lose
// them after Antom's last resend. A success without them is still refused.
func TestAntomStrictKeepsFailures(t *testing.T) {
	vault, sub := sample(t, "notifyVaulting"), sample(t, "notifySubscription")
	noDetail := func(body string) string {
		return replaceOnce(t, body, `"paymentMethodDetail": {
    "paymentMethodType": "CARD",
    "card": {
      "brand": "VISA",
      "cardToken": "EXAMPLE-CARD-TOKEN-NOT-A-REAL-TOKEN",
      "maskedCardNo": "************0000"
    }
  },`, ``)
	}
	noSubID := func(body string) string {
		return replaceOnce(t, body, `"subscriptionId": "20260101EXAMPLESUBSCRIPTIONID0001",`, ``)
	}
	// The failed vaulting the reference describes: resultStatus F, no
	// vaultingStatus (the AMS edition lists none), no paymentMethodDetail.
	failedVault := noDetail(replaceOnce(t, vault, `"resultCode": "SUCCESS"`, `"resultCode": "VERIFICATION_FAIL"`, `"resultStatus": "S"`, `"resultStatus": "F"`, `"vaultingStatus": "SUCCESS",`, ``))
	failedSub := noSubID(replaceOnce(t, sub, `"ACTIVE"`, `"TERMINATED"`))
	// without returns body with its top-level members fields removed.
	without := func(body string, fields ...string) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatal(err)
		}
		for _, f := range fields {
			if _, ok := m[f]; !ok {
				t.Fatalf("the sample has no %s", f)
			}
			delete(m, f)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// A failed creation as bare as the reference allows: the period too
	// may be missing. A failed vaulting created no vault: no creation time.
	bareSub := func(body string) string {
		return without(body, "subscriptionStartTime", "subscriptionEndTime", "periodRule")
	}
	bareVault := func(body string) string { return without(body, "vaultingCreateTime") }
	for _, tc := range []struct {
		name, api, body, want string
	}{
		{"failed vaulting without paymentMethodDetail", "notifyVaulting", failedVault, ""},
		{"failed vaulting without vaultingCreateTime", "notifyVaulting", bareVault(failedVault), ""},
		{"successful vaulting without vaultingCreateTime", "notifyVaulting", bareVault(vault), "vaultingCreateTime is required"},
		{"failed vaulting, FAIL status, without paymentMethodDetail", "notifyVaulting", noDetail(replaceOnce(t, vault, `"resultStatus": "S"`, `"resultStatus": "F"`, `"vaultingStatus": "SUCCESS"`, `"vaultingStatus": "FAIL"`)), ""},
		{"failed subscription creation without subscriptionId", "notifySubscription", failedSub, ""},
		// CANCELLED, a status of the official Go SDK's, is content too.
		{"cancelled subscription", "notifySubscription", replaceOnce(t, sub, `"ACTIVE"`, `"CANCELLED"`, `"CREATE"`, `"CANCEL"`), ""},
		{"cancelled subscription without subscriptionId", "notifySubscription", noSubID(replaceOnce(t, sub, `"ACTIVE"`, `"CANCELLED"`, `"CREATE"`, `"CANCEL"`)), ""},
		{"failed subscription creation without its period", "notifySubscription", bareSub(failedSub), ""},
		{"active subscription without its period", "notifySubscription", bareSub(sub), "subscriptionStartTime is required"},
		{"successful vaulting without paymentMethodDetail", "notifyVaulting", noDetail(vault), "paymentMethodDetail is required"},
		{"active subscription without subscriptionId", "notifySubscription", noSubID(sub), "subscriptionId is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mustAPI(t, tc.api).Validate([]byte(tc.body), Options{Strict: true})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("strict: %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("strict: %v, want %s", err, tc.want)
			}
			if _, err := mustAPI(t, tc.api).Validate([]byte(tc.body), Options{}); err != nil {
				t.Errorf("default mode: %v", err)
			}
		})
	}
}

// What the Antom rules leave alone: values Antom may add to its growing
// enums, optional fields absent, unknown members of every kind, and a
// notification's own failure, which is content for the backend.
func TestAntomAccepts(t *testing.T) {
	pay, capture, dispute := sample(t, "notifyPayment"), sample(t, "notifyCapture"), sample(t, "notifyDispute")
	vault, subPay := sample(t, "notifyVaulting"), sample(t, "notifySubscriptionPayment")
	for _, tc := range []struct {
		name, api, body string
		edits           []string
		key             string
	}{
		{"payment pending", "notifyPayment", pay, []string{`"PAYMENT_RESULT"`, `"PAYMENT_PENDING"`, `"paymentTime": "2020-01-01T12:01:01+08:30"`, `"x": "y"`}, "2020010123456789XXXX:PAYMENT_PENDING:S"},
		{"payment failed", "notifyPayment", pay, []string{`"resultStatus": "S"`, `"resultStatus": "F"`, `"resultCode": "SUCCESS"`, `"resultCode": "USER_BALANCE_NOT_ENOUGH"`}, "2020010123456789XXXX:PAYMENT_RESULT:F:<digest>"},
		{"payment unknown", "notifyPayment", pay, []string{`"resultStatus": "S"`, `"resultStatus": "U"`}, "2020010123456789XXXX:PAYMENT_RESULT:U"},
		{"new notifyType", "notifyPayment", pay, []string{`"PAYMENT_RESULT"`, `"SOME_NEW_TYPE"`}, "2020010123456789XXXX:SOME_NEW_TYPE:S"},
		{"without paymentCreateTime", "notifyPayment", pay, []string{`"paymentCreateTime": "2020-01-01T12:01:00+08:30",`, ``}, "2020010123456789XXXX:PAYMENT_RESULT:S"},
		{"without resultMessage", "notifyPayment", pay, []string{`"resultStatus": "S",`, `"resultStatus": "S"`, `"resultMessage": "success"`, ``}, "2020010123456789XXXX:PAYMENT_RESULT:S"},
		{"unknown members of every kind", "notifyPayment", pay, []string{`"paymentTime"`, `"pspCustomerInfo": {"pspName": "ALIPAY_CN", "extra": [{"a": "b"}, [], ["c"]]}, "promotionResult": [], "metadata": null, "paymentTime"`}, "2020010123456789XXXX:PAYMENT_RESULT:S"},
		{"optional amounts present", "notifyPayment", pay, []string{`"paymentTime"`, `"grossSettlementAmount": {"currency": "USD", "value": "3100"}, "settlementQuote": {"price": "0.74"}, "paymentTime"`}, "2020010123456789XXXX:PAYMENT_RESULT:S"},
		{"capture failed", "notifyCapture", capture, []string{`"resultCode": "SUCCESS"`, `"resultCode": "PROCESS_FAIL"`, `"resultStatus": "S"`, `"resultStatus": "F"`}, "2022XXXXXXX:F"},
		{"new dispute type", "notifyDispute", dispute, []string{`"DISPUTE_CREATED"`, `"SOME_NEW_TYPE"`}, "202209212501310115730104****:SOME_NEW_TYPE:<digest>"},
		{"dispute accepted (SDK value)", "notifyDispute", dispute, []string{`"DISPUTE_CREATED"`, `"DISPUTE_ACCEPTED"`}, "202209212501310115730104****:DISPUTE_ACCEPTED:<digest>"},
		{"dispute with result and notifyType", "notifyDispute", dispute, []string{`"disputeSource"`, `"notifyType": "DISPUTE", "result": {"resultCode": "SUCCESS", "resultStatus": "S"}, "disputeSource"`}, "202209212501310115730104****:DISPUTE_CREATED:<digest>"},
		{"vaulting failed", "notifyVaulting", vault, []string{`"resultCode": "SUCCESS"`, `"resultCode": "VERIFICATION_FAIL"`, `"resultStatus": "S"`, `"resultStatus": "F"`, `"vaultingStatus": "SUCCESS"`, `"vaultingStatus": "FAIL"`}, "vaultingRequestId_EXAMPLE_0001:F:FAIL"},
		{"vaulting failed without vaultingStatus (AMS edition)", "notifyVaulting", vault, []string{`"resultStatus": "S"`, `"resultStatus": "F"`, `"vaultingStatus": "SUCCESS",`, ``}, "vaultingRequestId_EXAMPLE_0001:F:"},
		{"vaulting new status", "notifyVaulting", vault, []string{`"vaultingStatus": "SUCCESS"`, `"vaultingStatus": "NEW_STATUS"`}, "vaultingRequestId_EXAMPLE_0001:S:NEW_STATUS"},
		{"vaulting with unknown members", "notifyVaulting", vault, []string{`"vaultingCreateTime"`, `"metadata": "` + strings.Repeat("m", 4096) + `", "acquirerInfo": {"acquirerName": "X"}, "vaultingCreateTime"`}, "vaultingRequestId_EXAMPLE_0001:S:SUCCESS"},
		// The official Go SDK's CardPaymentMethodDetail has both
		// cardHolderName and cardholderName: a vaulted card may carry
		// both, in an object the catalog does not name.
		{"vaulting card with cardHolderName and cardholderName", "notifyVaulting", vault, []string{`"brand": "VISA",`, `"brand": "VISA", "cardHolderName": {"firstName": "A", "lastName": "B"}, "cardholderName": {"firstName": "A", "lastName": "B"},`}, "vaultingRequestId_EXAMPLE_0001:S:SUCCESS"},
		{"payment with unknown case variants", "notifyPayment", pay, []string{`"paymentTime"`, `"metadata": "a", "METADATA": "b", "paymentTime"`}, "2020010123456789XXXX:PAYMENT_RESULT:S"},
		{"vaulting without vaultingCreateTime", "notifyVaulting", vault, []string{`,
  "vaultingCreateTime": "2026-01-01T12:01:00+08:00"`, ``}, "vaultingRequestId_EXAMPLE_0001:S:SUCCESS"},
		{"period payment failed", "notifySubscriptionPayment", subPay, []string{`"resultCode": "SUCCESS"`, `"resultCode": "USER_BALANCE_NOT_ENOUGH"`, `"resultStatus": "S"`, `"resultStatus": "F"`, `"paymentTime": "2026-02-01T12:00:05+08:00",`, ``}, "20260201EXAMPLEPAYMENTID0001:F:<digest>"},
		{"period payment without the subscription fields", "notifySubscriptionPayment", subPay, []string{`,
  "subscriptionRequestId": "subscriptionRequestId_EXAMPLE_0001",
  "subscriptionId": "20260101EXAMPLESUBSCRIPTIONID0001",
  "periodStartTime": "2026-02-01T12:00:00+08:00",
  "periodEndTime": "2026-03-01T12:00:00+08:00",
  "phaseNo": "2"`, ``}, "20260201EXAMPLEPAYMENTID0001:S"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := replaceOnce(t, tc.body, tc.edits...)
			want := tc.key
			if w, ok := strings.CutSuffix(want, "<digest>"); ok { // the key ends with a content digest
				want = w + digestPart(t, body)
			}
			if got := keyOf(t, tc.api, body); got != want {
				t.Errorf("key %q, want %q", got, want)
			}
		})
	}
	// An empty registration notification is valid: the reference makes
	// every field optional; its key is the digest of {}.
	if got := keyOf(t, "notifyRegistrationStatus", `{}`); got != ":"+digestPart(t, `{}`) {
		t.Errorf("empty registration: key %q", got)
	}
}

// The key is the one allocation of a valid Antom body too.
func TestAntomValidateAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	for _, api := range Names(Antom) {
		body, _ := Sample(api)
		a := mustAPI(t, api)
		a.Validate(body, Options{}) // fill the pool
		if n := testing.AllocsPerRun(100, func() { a.Validate(body, Options{}) }); n > 1 {
			t.Errorf("Validate of the %s sample allocates %v times, want at most 1", api, n)
		}
	}
}

// docs/antom.md lists every Antom API of the catalog with the key the
// catalog composes for it.
func TestAntomDocListsTheCatalog(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "antom.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for line := range strings.Lines(string(doc)) {
		if name, rest, ok := strings.Cut(strings.TrimPrefix(line, "| `"), "` | "); ok && strings.HasPrefix(rest, "https://") {
			rows[name] = rest
		}
	}
	for _, name := range Names(Antom) {
		// The key as the table writes it: `a:b:<content digest>`, and a
		// conditional digest after the key, `a:b` (`:<content digest>`
		// when `b` is V).
		var parts []string
		cond := ""
		for _, p := range mustAPI(t, name).KeyParts() {
			switch {
			case p.Digest && len(p.If) > 0:
				var when []string
				for _, c := range p.If {
					when = append(when, "`"+c.Path+"` is "+c.Value)
				}
				cond = " (`:<content digest>` when " + strings.Join(when, " or ") + ")"
			case p.Digest:
				parts = append(parts, "<content digest>")
			default:
				parts = append(parts, p.Path)
			}
		}
		key := "`" + strings.Join(parts, ":") + "`" + cond
		row, ok := rows[name]
		if !ok {
			t.Errorf("docs/antom.md has no row for %s", name)
		} else if !strings.Contains(row, "| "+key+" |") {
			t.Errorf("docs/antom.md: the row of %s does not give its key %s", name, key)
		}
	}
	if len(rows) != len(Names(Antom)) {
		t.Errorf("docs/antom.md lists %d APIs, the catalog has %d", len(rows), len(Names(Antom)))
	}
}

// antomGuideDispute is testdata/antom-guide/notifyDispute-defendable.json:
// the Notification of Dispute of Antom's dispute guide,
// https://docs.antom.com/ac/cashierpay/dispute ("Receive Notification of
// Dispute"), in the edition that carries "defendable": true, a JSON
// boolean. It is not embedded: the embedded notifyDispute sample stays
// the reference page's.
func antomGuideDispute(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "antom-guide", "notifyDispute-defendable.json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A genuine notification carrying a boolean or a number where Antom
// really sends one (field.also) passes, in both modes, with the key it
// would have with a string there; the fingerprint tells the boolean from
// the string "true" and the number from the string.
func TestAntomNonStringScalars(t *testing.T) {
	guide := antomGuideDispute(t)
	if !strings.Contains(guide, `"defendable": true`) {
		t.Fatal("the guide's sample has no boolean defendable")
	}
	if !json.Valid([]byte(guide)) {
		t.Fatal("the guide's sample is not JSON")
	}
	a := mustAPI(t, "notifyDispute")
	allow := allowed(a)
	for _, strict := range []bool{false, true} {
		res, err := a.Validate([]byte(guide), Options{Strict: strict})
		if err != nil {
			t.Fatalf("strict %v: the dispute guide's sample: %v", strict, err)
		}
		v, err := decodeUseNumber([]byte(guide))
		if err != nil {
			t.Fatal(err)
		}
		c, ok := refCanonicalAt(nil, v, "", allow)
		if !ok || sha256.Sum256(c) != res.Fingerprint {
			t.Errorf("strict %v: fingerprint differs from the reference canonical form", strict)
		}
	}

	pay, refund, dispute := sample(t, "notifyPayment"), sample(t, "notifyRefund"), sample(t, "notifyDispute")
	sub, subPay, vault := sample(t, "notifySubscription"), sample(t, "notifySubscriptionPayment"), sample(t, "notifyVaulting")
	for _, tc := range []struct {
		name, api, body string
		edits           []string
	}{
		{"defendable false", "notifyDispute", dispute, []string{`"disputeSource"`, `"defendable": false, "disputeSource"`}},
		{"defendable a string", "notifyDispute", dispute, []string{`"disputeSource"`, `"defendable": "true", "disputeSource"`}},
		{"payment settlementQuote", "notifyPayment", pay, []string{`"paymentTime"`, `"settlementQuote": {"quotePrice": 0.7412, "guaranteed": true, "quoteCurrencyPair": "SGD/USD"}, "paymentTime"`}},
		{"payment settlementQuote as strings", "notifyPayment", pay, []string{`"paymentTime"`, `"settlementQuote": {"quotePrice": "0.7412", "guaranteed": "false"}, "paymentTime"`}},
		{"payment quotePrice with an exponent", "notifyPayment", pay, []string{`"paymentTime"`, `"settlementQuote": {"quotePrice": -7.412E-1}, "paymentTime"`}},
		{"payment retryInfo", "notifyPayment", pay, []string{`"paymentTime"`, `"retryInfo": {"availableRetries": 2}, "paymentTime"`}},
		// An installment payment: the SDK's CreditPayPlan has
		// InstallmentNum and FeePercentage int32.
		{"payment installment plan", "notifyPayment", pay, []string{`"paymentTime"`, `"paymentResultInfo": {"cardBrand": "VISA", "creditPayPlan": {"installmentNum": 3, "interval": "MONTH", "creditPayFeeType": "PERCENTAGE", "feePercentage": 100}}, "paymentTime"`}},
		{"payment installment plan as strings", "notifyPayment", pay, []string{`"paymentTime"`, `"paymentResultInfo": {"creditPayPlan": {"installmentNum": "3", "feePercentage": "0"}}, "paymentTime"`}},
		{"refund settlementQuote", "notifyRefund", refund, []string{`"refundTime"`, `"settlementQuote": {"quotePrice": 1.25, "guaranteed": false}, "refundTime"`}},
		{"subscription periodCount", "notifySubscription", sub, []string{`"periodCount": "1"`, `"periodCount": 1`}},
		{"period phaseNo", "notifySubscriptionPayment", subPay, []string{`"phaseNo": "2"`, `"phaseNo": 2`}},
		{"period retryInfo", "notifySubscriptionPayment", subPay, []string{`"phaseNo": "2"`, `"phaseNo": "2", "retryInfo": {"availableRetries": 0}`}},
		// A period's payment is the SDK's AlipayPayResultNotify too: its
		// settlementQuote and installment plan carry the same numbers.
		{"period settlementQuote", "notifySubscriptionPayment", subPay, []string{`"phaseNo": "2"`, `"phaseNo": "2", "settlementQuote": {"quotePrice": 0.7412, "guaranteed": true}`}},
		{"period installment plan", "notifySubscriptionPayment", subPay, []string{`"phaseNo": "2"`, `"phaseNo": "2", "paymentResultInfo": {"creditPayPlan": {"installmentNum": 3, "feePercentage": 100}}`}},
		// The Java SDK's AlipayPayResultNotify has a paymentQuote, a
		// Quote like settlementQuote; AlipaySubscriptionPayNotify
		// extends it.
		{"payment paymentQuote", "notifyPayment", pay, []string{`"paymentTime"`, `"paymentQuote": {"quoteId": "Q1", "quoteCurrencyPair": "SGD/USD", "quotePrice": 0.7412, "guaranteed": true}, "paymentTime"`}},
		{"payment paymentQuote as strings", "notifyPayment", pay, []string{`"paymentTime"`, `"paymentQuote": {"quotePrice": "0.7412", "guaranteed": "true"}, "paymentTime"`}},
		{"period paymentQuote", "notifySubscriptionPayment", subPay, []string{`"phaseNo": "2"`, `"phaseNo": "2", "paymentQuote": {"quotePrice": 1, "guaranteed": false}`}},
		// The Java SDK's AlipaySubscriptionNotify: Boolean allowAccumulate
		// beside an Amount maxAccumulateAmount.
		{"subscription allowAccumulate", "notifySubscription", sub, []string{`"periodRule"`, `"allowAccumulate": true, "maxAccumulateAmount": {"currency": "USD", "value": "1000"}, "periodRule"`}},
		{"subscription allowAccumulate false", "notifySubscription", sub, []string{`"periodRule"`, `"allowAccumulate": false, "periodRule"`}},
		// Both SDKs' CardPaymentMethodDetail: a boolean is3DSAuthentication.
		{"vaulting card is3DSAuthentication", "notifyVaulting", vault, []string{`"brand": "VISA",`, `"brand": "VISA", "is3DSAuthentication": true,`}},
		{"vaulting card is3DSAuthentication a string", "notifyVaulting", vault, []string{`"brand": "VISA",`, `"brand": "VISA", "is3DSAuthentication": "false",`}},
		{"vaulting acquirerInfo a string", "notifyVaulting", vault, []string{`"vaultingCreateTime"`, `"acquirerInfo": "{\"acquirerName\":\"X\"}", "vaultingCreateTime"`}},
		{"vaulting acquirerInfo an object", "notifyVaulting", vault, []string{`"vaultingCreateTime"`, `"acquirerInfo": {"acquirerName": "X"}, "vaultingCreateTime"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := replaceOnce(t, tc.body, tc.edits...)
			for _, strict := range []bool{false, true} {
				res, err := mustAPI(t, tc.api).Validate([]byte(body), Options{Strict: strict})
				if err != nil {
					t.Fatalf("strict %v: %v", strict, err)
				}
				base, err := mustAPI(t, tc.api).Validate([]byte(tc.body), Options{Strict: strict})
				if err != nil {
					t.Fatal(err)
				}
				// The key of a digest-free notification is the sample's;
				// one with a digest differs only in its digest.
				if strings.Count(res.Key, ":") != strings.Count(base.Key, ":") ||
					!strings.HasPrefix(res.Key, base.Key[:strings.LastIndexByte(base.Key, ':')+1]) {
					t.Errorf("strict %v: key %q, the sample's %q", strict, res.Key, base.Key)
				}
			}
		})
	}

	// The fingerprint: a boolean is not the string of its name, a number
	// is not its text as a string, and a number's value, not its
	// spelling, counts.
	fp := func(api, body string, edits ...string) [32]byte {
		t.Helper()
		res, err := mustAPI(t, api).Validate([]byte(replaceOnce(t, body, edits...)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return res.Fingerprint
	}
	at := func(v string) [32]byte {
		return fp("notifyDispute", dispute, `"disputeSource"`, `"defendable": `+v+`, "disputeSource"`)
	}
	if at(`true`) == at(`"true"`) || at(`false`) == at(`"false"`) || at(`true`) == at(`false`) {
		t.Error("a boolean defendable has the fingerprint of a string, or true of false")
	}
	price := func(v string) [32]byte {
		return fp("notifyPayment", pay, `"paymentTime"`, `"settlementQuote": {"quotePrice": `+v+`}, "paymentTime"`)
	}
	for _, same := range [][]string{
		{`4200`, `4.2e3`, `4200.0`, `42E2`, `42e+2`, `420000e-2`, `0.042E5`, `4200.000e00`},
		{`0`, `-0`, `0.0`, `0e5`, `-0.000E-7`},
		{`0.1`, `0.10`, `1e-1`, `10E-2`},
		{`-1.5`, `-15e-1`, `-0.15e1`},
	} {
		for _, v := range same[1:] {
			if price(v) != price(same[0]) {
				t.Errorf("quotePrice %s and %s have different fingerprints", v, same[0])
			}
		}
	}
	for _, pair := range [][2]string{
		{`4200`, `"4200"`}, {`4200`, `4201`}, {`1.5`, `-1.5`}, {`1`, `10`}, {`1`, `0.1`},
		{`12345678901234567890`, `12345678901234567891`}, // one float64, two values
		{`1e2`, `1e-2`}, {`0`, `"0"`},
	} {
		if price(pair[0]) == price(pair[1]) {
			t.Errorf("quotePrice %s and %s have one fingerprint", pair[0], pair[1])
		}
	}
}

// One dispute can get two different notifications of one type (a
// retrieval request and its escalation to a chargeback are both
// DISPUTE_CREATED; a compliance request judged VALIDATE_FAIL then
// VALIDATE_SUCCESS is two DISPUTE_JUDGED), and a failed subscription
// period payment can be retried under its paymentId with a changed
// retryInfo: each is another notification, with another key, while a
// resend (re-serialised) keeps its key. A successful period payment's key
// has no digest.
func TestAntomRepeatedEventKeys(t *testing.T) {
	resend := func(body string) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) == body {
			t.Fatal("the resend is not re-serialised")
		}
		return string(b)
	}
	dispute := sample(t, "notifyDispute")
	judged := func(result string) string {
		return replaceOnce(t, dispute, `"DISPUTE_CREATED"`, `"DISPUTE_JUDGED"`, `"disputeSource"`, `"disputeJudgedResult": "`+result+`", "disputeSource"`)
	}
	subPay := sample(t, "notifySubscriptionPayment")
	failed := func(retries string) string {
		return replaceOnce(t, subPay, `"resultCode": "SUCCESS"`, `"resultCode": "USER_BALANCE_NOT_ENOUGH"`, `"resultStatus": "S"`, `"resultStatus": "F"`,
			`"phaseNo": "2"`, `"phaseNo": "2", "retryInfo": {"availableRetries": "`+retries+`"}`)
	}
	// notifyPayment is the official SDK's AlipayPayResultNotify, which
	// carries subscriptionOrderId and retryInfo: a failed subscription
	// charge retried under one paymentId is notified F per failed try.
	pay := sample(t, "notifyPayment")
	payFailed := func(retries string) string {
		return replaceOnce(t, pay, `"resultCode": "SUCCESS"`, `"resultCode": "USER_BALANCE_NOT_ENOUGH"`, `"resultStatus": "S"`, `"resultStatus": "F"`,
			`"paymentTime"`, `"subscriptionOrderId": "s1", "retryInfo": {"availableRetries": "`+retries+`", "paymentAttempts": [{"attemptResponse": "INSUFFICIENT_BALANCE"}]}, "paymentTime"`)
	}
	escalated := replaceOnce(t, dispute, `"disputeSource"`, `"disputeType": "CHARGEBACK", "disputeSource"`)
	for _, tc := range []struct {
		name, api, first, second, prefix string
	}{
		{"two DISPUTE_JUDGED", "notifyDispute", judged("VALIDATE_FAIL"), judged("VALIDATE_SUCCESS"), "202209212501310115730104****:DISPUTE_JUDGED:"},
		{"a retrieval request and its chargeback", "notifyDispute", dispute, escalated, "202209212501310115730104****:DISPUTE_CREATED:"},
		{"two failed tries of a period payment", "notifySubscriptionPayment", failed("2"), failed("1"), "20260201EXAMPLEPAYMENTID0001:F:"},
		{"two failed tries of a subscription charge", "notifyPayment", payFailed("2"), payFailed("1"), "2020010123456789XXXX:PAYMENT_RESULT:F:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k1, k2 := keyOf(t, tc.api, tc.first), keyOf(t, tc.api, tc.second)
			if k1 == k2 {
				t.Fatalf("two notifications share the key %q", k1)
			}
			for body, k := range map[string]string{tc.first: k1, tc.second: k2} {
				if want := tc.prefix + digestPart(t, body); k != want {
					t.Errorf("key %q, want %q", k, want)
				}
				if got := keyOf(t, tc.api, resend(body)); got != k {
					t.Errorf("resend: key %q, want %q", got, k)
				}
			}
		})
	}
	// A successful period payment keeps paymentId:S, whatever else it
	// carries; the condition is the exact value F.
	ok := replaceOnce(t, subPay, `"phaseNo": "2"`, `"phaseNo": "2", "retryInfo": {"availableRetries": 0}`)
	for _, body := range []string{subPay, ok, resend(ok)} {
		if got := keyOf(t, "notifySubscriptionPayment", body); got != "20260201EXAMPLEPAYMENTID0001:S" {
			t.Errorf("successful period payment: key %q", got)
		}
	}
	if got := keyOf(t, "notifySubscriptionPayment", replaceOnce(t, subPay, `"resultStatus": "S"`, `"resultStatus": "U"`)); got != "20260201EXAMPLEPAYMENTID0001:U" {
		t.Errorf("unknown-status period payment: key %q", got)
	}
	// A notifyPayment S or U keeps paymentId:notifyType:status whatever
	// retryInfo it carries; the condition is the exact value F.
	retried := replaceOnce(t, pay, `"paymentTime"`, `"retryInfo": {"availableRetries": 0}, "paymentTime"`)
	for body, want := range map[string]string{
		pay:     "2020010123456789XXXX:PAYMENT_RESULT:S",
		retried: "2020010123456789XXXX:PAYMENT_RESULT:S",
		replaceOnce(t, retried, `"resultStatus": "S"`, `"resultStatus": "U"`): "2020010123456789XXXX:PAYMENT_RESULT:U",
		replaceOnce(t, pay, `"PAYMENT_RESULT"`, `"PAYMENT_PENDING"`):          "2020010123456789XXXX:PAYMENT_PENDING:S",
	} {
		if got := keyOf(t, "notifyPayment", body); got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
}

// The booleans and numbers some fields allow, and the alias pass that
// keys with '_' or '-' start, allocate nothing beyond the key.
func TestScalarsAndAliasesAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	pay := sample(t, "notifyPayment")
	for _, tc := range []struct{ api, body string }{
		{"notifyDispute", antomGuideDispute(t)},
		{"notifyPayment", replaceOnce(t, pay, `"paymentTime"`, `"settlementQuote": {"quotePrice": -7.4120E-1, "guaranteed": false}, "retryInfo": {"availableRetries": 3}, "x_y": "a", "xY": "b", "payment-date": "c", "paymentTime"`)},
		{"addPaymentMethod", obj(rid, cust, pmd, str("x_y", "a"), str("xY", "b"), `"extra":{"request_id":"a","requestId":"b"}`)},
	} {
		a := mustAPI(t, tc.api)
		body := []byte(tc.body)
		if _, err := a.Validate(body, Options{}); err != nil {
			t.Fatalf("%s: %v", tc.api, err)
		}
		if n := testing.AllocsPerRun(100, func() { a.Validate(body, Options{}) }); n > 1 {
			t.Errorf("Validate of a %s body allocates %v times, want at most 1", tc.api, n)
		}
	}
}
