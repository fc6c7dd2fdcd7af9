package dwshttp

import (
	"strings"
	"testing"

	"github.com/dwsnotify/dws_notify/notification"
)

func TestRefusedRequestID(t *testing.T) {
	api, _ := notification.Lookup("addPaymentMethod")
	for _, c := range []struct {
		body, id, why string
	}{
		{`{"requestId":"abc","x":1}`, "abc", ""},
		{`{"x":{"requestId":"nested"},"requestId":"top"}`, "top", ""},
		{`{"requestId":"first","requestId":"second"}`, "first", ""},
		{`{"requestId":"a\u0020b\n"}`, "a b\n", ""},
		{`{"requestId":123.5}`, "123.5", ""},
		{`{"requestId":"` + strings.Repeat("é", 40) + `"}`, strings.Repeat("é", 32) + "…", ""},
		{`{"requestId":null}`, "", "requestId is null"},
		{`{"requestId":[1]}`, "", "requestId is neither a JSON string nor a number"},
		{`{"requestId":false}`, "", "requestId is neither a JSON string nor a number"},
		{`{"other":"x"}`, "", "requestId is absent"},
		{`["requestId"]`, "", "the body is not a JSON object"},
		{`{"a":[1,2,}`, "", "the body is not valid JSON up to requestId"},
		{``, "", "the body is not valid JSON up to requestId"},
		{`{"requestId":"kept"`, "kept", ""}, // cut after the value: what was read is what DWS signed
	} {
		id, why := RefusedRequestID(api, []byte(c.body))
		if id != c.id || why != c.why {
			t.Errorf("%s: got %q, %q; want %q, %q", c.body, id, why, c.id, c.why)
		}
	}
}

// A refused Antom body's log line names what can be read of its composed
// key: the fields' values joined as the key joins them, an unreadable
// field an empty part (and said in why), the content digest left out.
func TestRefusedComposedKey(t *testing.T) {
	for _, c := range []struct {
		api, body, id, why string
	}{
		{"notifyPayment", `{"paymentId":"p1","notifyType":"PAYMENT_RESULT","result":{"resultStatus":"S"},"paymentAmount":{"value":4200}}`, "p1:PAYMENT_RESULT:S", ""},
		{"notifyPayment", `{"paymentId":"a:b%c","notifyType":"PAYMENT_PENDING","result":{"resultStatus":"F"}}`, "a%3Ab%25c:PAYMENT_PENDING:F", ""},
		{"notifyPayment", `{"paymentId":12345,"result":{"resultStatus":"S"}}`, "12345::S", "notifyType is absent"},
		{"notifyPayment", `{"paymentId":"p2","notifyType":null,"result":{}}`, "p2::", "notifyType is null; result.resultStatus is absent"},
		// A nested key field is named by its path, not its leaf.
		{"notifyPayment", `{"paymentId":"p3","notifyType":"PAYMENT_RESULT","result":{"resultStatus":null}}`, "p3:PAYMENT_RESULT:", "result.resultStatus is null"},
		{"notifyPayment", `{"paymentId":"p4","notifyType":"PAYMENT_RESULT","result":{"resultStatus":{"x":"S"}}}`, "p4:PAYMENT_RESULT:", "result.resultStatus is neither a JSON string nor a number"},
		{"notifyPayment", `{"paymentId":"p5","notifyType":"PAYMENT_RESULT","result":"S"}`, "p5:PAYMENT_RESULT:", "result is not a JSON object"},
		{"notifyCapture", `{"captureId":"c1","result":{"resultCode":"SUCCESS"}}`, "c1:", "result.resultStatus is absent"},
		{"notifyPayment", `{"paymentId":"` + strings.Repeat("x", 64) + `","notifyType":"PAYMENT_RESULT","result":{"resultStatus":"S"}}`, strings.Repeat("x", 64) + "…", ""},
		{"notifyPayment", `{}`, "", "paymentId is absent; notifyType is absent; result is absent"},
		{"notifyPayment", `[]`, "", "the body is not a JSON object"},
		{"notifyRefund", `{"refundId":"r1","refundStatus":"FAIL","refundAmount":{"value":1}}`, "r1:FAIL", ""},
		{"notifyRegistrationStatus", `{"registrationRequestId":"reg-1","x":1}`, "reg-1", ""},
		// An absent (or null) optional key field is an empty part, as
		// Validate builds the key, not something that "could not be
		// read": a failed vaulting has no vaultingStatus, and a
		// registration needs no registrationRequestId.
		{"notifyRegistrationStatus", `{"x":1}`, "", ""},
		{"notifyVaulting", `{"vaultingRequestId":"v1","result":{"resultStatus":"F","resultCode":7}}`, "v1:F:", ""},
		{"notifyVaulting", `{"vaultingRequestId":"v2","vaultingStatus":null,"result":{"resultStatus":"F","resultCode":7}}`, "v2:F:", ""},
		// An optional key field that is there but unusable is reported,
		// and a required one is reported absent.
		{"notifyVaulting", `{"vaultingRequestId":"v3","vaultingStatus":["FAIL"],"result":{"resultStatus":"F"}}`, "v3:F:", "vaultingStatus is neither a JSON string nor a number"},
		{"notifyVaulting", `{"vaultingStatus":"FAIL","result":{"resultStatus":"F"}}`, ":F:FAIL", "vaultingRequestId is absent"},
	} {
		api, _ := notification.Lookup(c.api)
		id, why := RefusedRequestID(api, []byte(c.body))
		if id != c.id || why != c.why {
			t.Errorf("%s %s: got %q, %q; want %q, %q", c.api, c.body, id, why, c.id, c.why)
		}
	}
}
