package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dwsnotify/dws_notify/adminapi"
)

// TestRedeliverRefusalSaysForce: a refused redelivery that force would
// overcome tells the user of --force, not of the API's force=1; one it
// would not (an expired payload, or a mix of stale and expired) offers
// neither. Either way the command fails. Before, the CLI showed the API's
// "(force=1 redelivers it anyway)".
func TestRedeliverRefusalSaysForce(t *testing.T) {
	var code, msg string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != adminapi.Base+"redeliver" || r.URL.Query().Get("request_id") != "r1" {
			t.Errorf("asked %s %s", r.Method, r.URL)
		}
		w.Header().Set(adminapi.ErrorCodeHeader, code)
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	const stale = `requestId "r1" was not redelivered: the removePaymentMethod of Client-Id "C" [a later addPaymentMethod of the same customer was delivered: redelivered now, this could unbind a card the customer bound again]`
	const expired = `requestId "r1" was not redelivered: the addPaymentMethod of Client-Id "C" [its payload expired with the dead letters' retention]`
	for _, tc := range []struct {
		code, msg, want string
	}{
		{adminapi.CodeLaterAddDelivered, stale + " " + adminapi.RedeliverForceHint, stale + " (--force redelivers anyway)"},
		{adminapi.CodeNotRedelivered, stale + " " + adminapi.RedeliverForceHint, stale + " (--force redelivers anyway)"},
		{adminapi.CodeLaterAddDelivered, stale + "; " + expired[len(`requestId "r1" was not redelivered: `):], stale + "; " + expired[len(`requestId "r1" was not redelivered: `):]},
		{adminapi.CodePayloadExpired, expired, expired},
	} {
		code, msg = tc.code, tc.msg
		out, err := runCLI(t, "redeliver", "r1", "--address", addr)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: err = %v (output %q)\nwant %s", tc.code, err, out, tc.want)
		}
	}
}
