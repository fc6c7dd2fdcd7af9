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
	if antom, ok := notification.Lookup("notifyPayment"); ok && len(antom.KeyFields()) > 1 {
		if id, why := RefusedRequestID(antom, []byte(`{}`)); id != "" || why == "" {
			t.Errorf("a composed key: got %q, %q; want no id and why", id, why)
		}
	}
}
