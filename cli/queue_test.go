package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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

// redeliver --dead fails, with --json as without, when it left a dead
// letter that --force would redeliver or could not read a store; a dead
// letter whose payload expired alone does not fail it.
func TestRedeliverDeadExitStatus(t *testing.T) {
	var ans adminapi.RedeliverAnswer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Query().Get("dead") != "all" {
			t.Errorf("asked %s %s", r.Method, r.URL)
		}
		_ = json.NewEncoder(w).Encode(ans)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	item := adminapi.ItemView{API: "addPaymentMethod", RequestID: "r1", ClientID: "C", State: "dead"}
	stale := adminapi.SkippedItem{ItemView: item, Reason: "a later removePaymentMethod of the same customer was delivered", Code: adminapi.CodeLaterRemoveDelivered}
	expired := adminapi.SkippedItem{ItemView: item, Reason: "its payload expired", Code: adminapi.CodePayloadExpired}
	unread := adminapi.StoreError{Storage: "/b", Error: "the store at /b is not reachable", Status: http.StatusServiceUnavailable}
	for _, tc := range []struct {
		name    string
		skipped []adminapi.SkippedItem
		errs    []adminapi.StoreError
		want    []string // in the error; none: no error
	}{
		{"a stale dead letter", []adminapi.SkippedItem{stale, expired}, nil, []string{"1 dead letter skipped", "--force"}},
		{"a store not read", nil, []adminapi.StoreError{unread}, []string{"1 store could not be read"}},
		{"only an expired payload", []adminapi.SkippedItem{expired}, nil, nil},
	} {
		ans = adminapi.RedeliverAnswer{Redelivered: []adminapi.ItemView{}, Skipped: tc.skipped, Errors: tc.errs}
		for _, args := range [][]string{{"redeliver", "--dead", "--address", addr}, {"redeliver", "--dead", "--json", "--address", addr}} {
			out, err := runCLI(t, args...)
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("%s %q: %v", tc.name, args, err)
			case tc.want != nil && err == nil:
				t.Errorf("%s %q: no error (output %q)", tc.name, args, out)
			}
			for _, w := range tc.want {
				if err != nil && !strings.Contains(err.Error(), w) {
					t.Errorf("%s %q: %v, want %q in it", tc.name, args, err, w)
				}
			}
			if args[2] == "--json" {
				var back adminapi.RedeliverAnswer
				if jerr := json.Unmarshal([]byte(out), &back); jerr != nil || len(back.Skipped) != len(tc.skipped) {
					t.Errorf("%s --json: output %q is not the answer (%v)", tc.name, out, jerr)
				}
			}
		}
	}
}

// A dead letter's line counts its tries in the right number.
func TestPrintItemCountsTries(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for n, want := range map[int]string{0: "after 0 tries", 1: "after 1 try,", 9: "after 9 tries"} {
		var b strings.Builder
		printItem(&b, adminapi.ItemView{API: "addPaymentMethod", RequestID: "r", ClientID: "c", State: "dead", Attempts: n, EnqueuedAt: now.Add(-time.Hour)}, now)
		if !strings.Contains(b.String(), want) {
			t.Errorf("%d attempts: %q lacks %q", n, b.String(), want)
		}
	}
}
