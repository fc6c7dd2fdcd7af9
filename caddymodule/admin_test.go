package caddymodule

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// adminCall sends method path to the in-process Caddy's admin API and
// returns the status, headers and body.
func adminCall(t *testing.T, method, path string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+adminAddress+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, body
}

// adminJSON GETs path, expects status and decodes the JSON body into v.
func adminJSON(t *testing.T, path string, status int, v any) {
	t.Helper()
	got, h, body := adminCall(t, http.MethodGet, path)
	if got != status {
		t.Fatalf("GET %s: HTTP %d, want %d: %s", path, got, status, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

// adminError GETs path and returns the error message of a JSON error answer
// with the given status.
func adminError(t *testing.T, path string, status int) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	adminJSON(t, path, status, &e)
	if e.Error == "" {
		t.Fatalf("GET %s: error answer without a message", path)
	}
	return e.Error
}

func canonicalDir(t *testing.T, dir string) string {
	t.Helper()
	c, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAdminRecord(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{})
	storage := canonicalDir(t, g.storage)
	// One requestId, used by both APIs: two records.
	g.send(g.notice(addPath, addSample(t, "adm-1"))).expect(t, 200, "S", "SUCCESS")
	g.send(g.notice(removePath, removeSample(t, "adm-1"))).expect(t, 200, "S", "SUCCESS")

	var all RecordsAnswer
	adminJSON(t, "/dws_notify/record?request_id=adm-1", 200, &all)
	if len(all.Records) != 2 {
		t.Fatalf("records = %+v, want the add and the remove record", all.Records)
	}
	apis := map[string]bool{}
	for _, r := range all.Records {
		apis[r.API] = true
		if r.Storage != storage || r.ClientID != testClientID || r.RequestID != "adm-1" || r.State != "done" ||
			r.Outcome != "accepted" || r.ResultCode != "SUCCESS" || r.BackendStatus != 200 || r.LeaseExpired || !r.LeaseExpiry.IsZero() {
			t.Errorf("record %+v", r)
		}
		if r.ClaimedAt.IsZero() || r.CompletedAt.Before(r.ClaimedAt) || time.Since(r.CompletedAt) > time.Minute {
			t.Errorf("times: claimed %v completed %v", r.ClaimedAt, r.CompletedAt)
		}
		if d := r.ExpiresAt.Sub(r.CompletedAt); d < DefaultRetention-time.Second || d > DefaultRetention+time.Second {
			t.Errorf("expires %v after completion, want the default retention %v", d, DefaultRetention)
		}
	}
	if !apis["addPaymentMethod"] || !apis["removePaymentMethod"] {
		t.Errorf("apis = %v", apis)
	}

	for _, q := range []struct {
		query string
		n     int
	}{
		{"request_id=adm-1&api=addPaymentMethod", 1},
		{"request_id=adm-1&client_id=" + testClientID, 2},
		{"request_id=adm-1&client_id=" + testClientID + "&api=removePaymentMethod", 1},
	} {
		var ans RecordsAnswer
		adminJSON(t, "/dws_notify/record?"+q.query, 200, &ans)
		if len(ans.Records) != q.n {
			t.Errorf("%s: %d records, want %d", q.query, len(ans.Records), q.n)
		}
	}
	if msg := adminError(t, "/dws_notify/record?request_id=adm-1&client_id=someone-else", 404); !strings.Contains(msg, `no record of requestId "adm-1" (Client-Id someone-else) in the store at `+storage) {
		t.Errorf("404 message %q", msg)
	}
	if msg := adminError(t, "/dws_notify/record?request_id=never-sent", 404); !strings.Contains(msg, "never-sent") {
		t.Errorf("404 message %q", msg)
	}
	if msg := adminError(t, "/dws_notify/record", 400); msg != "request_id is required" {
		t.Errorf("400 message %q", msg)
	}
	if msg := adminError(t, "/dws_notify/record?request_id=adm-1&api=notifyPayment", 400); !strings.Contains(msg, `unknown api "notifyPayment"`) {
		t.Errorf("400 message %q", msg)
	}
	if msg := adminError(t, "/dws_notify/record?request_id="+strings.Repeat("x", idempotency.MaxKeyFieldLen+1), 400); !strings.Contains(msg, "longer than") {
		t.Errorf("400 message %q", msg)
	}

	// No card data, ever: the records hold none, and nothing of the body
	// is added on the way out.
	_, _, raw := adminCall(t, http.MethodGet, "/dws_notify/record?request_id=adm-1")
	for _, secret := range []string{"ALIPAYpwB", "523945", "3caa419cf22c", "Tung", "card", "fingerprint"} {
		if strings.Contains(string(raw), secret) {
			t.Fatalf("record answer contains %q: %s", secret, raw)
		}
	}
}

func TestAdminStatsAndFollowUp(t *testing.T) {
	b := newBackend(t)
	release := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	b.setRespond(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Dws-Request-Id")
		switch {
		case strings.HasPrefix(id, "rej-"):
			w.WriteHeader(http.StatusConflict)
		case strings.HasPrefix(id, "slow-"):
			<-release
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	g := startGateway(t, b, gatewayConfig{})
	storage := canonicalDir(t, g.storage)
	for _, id := range []string{"ok-1", "rej-1", "ok-2", "rej-2", "rej-3"} {
		g.send(g.notice(addPath, addSample(t, id))).expect(t, 200, "S", "SUCCESS")
	}
	g.send(g.notice(removePath, removeSample(t, "rej-4"))).expect(t, 200, "S", "SUCCESS")

	// One notification held by the backend: in flight.
	slow := make(chan answer, 1)
	go func() {
		req := g.notice(addPath, addSample(t, "slow-1")).request(t)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			slow <- answer{}
			return
		}
		res.Body.Close()
		slow <- answer{status: res.StatusCode}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(b.hits()) < 7 {
		if time.Now().After(deadline) {
			t.Fatal("the slow notification never reached the backend")
		}
		time.Sleep(5 * time.Millisecond)
	}

	var stats StatsAnswer
	adminJSON(t, "/dws_notify/stats", 200, &stats)
	want := OutcomeCounts{InFlight: 1, Accepted: 2, BusinessRejected: 4, Total: 7}
	if len(stats.Stores) != 1 || stats.Stores[0].Storage != storage || stats.Stores[0].OutcomeCounts != want || stats.Total != want {
		t.Fatalf("stats = %+v, want one store at %s with %+v", stats, storage, want)
	}
	if msg := adminError(t, "/dws_notify/stats?api=addPaymentMethod", 400); msg != "stats takes no parameters" {
		t.Errorf("stats with a parameter: %q", msg)
	}

	var rec RecordsAnswer
	adminJSON(t, "/dws_notify/record?request_id=slow-1", 200, &rec)
	if r := rec.Records[0]; r.State != "in_flight" || r.LeaseExpiry.IsZero() || r.LeaseExpired || r.Outcome != "" || !r.CompletedAt.IsZero() {
		t.Fatalf("in-flight record %+v", r)
	}
	out, err := runCLI(t, "inspect", "--request-id", "slow-1", "--address", adminAddress)
	if err != nil || !strings.Contains(out, "  state        in flight: being forwarded to the backend now (lease until ") {
		t.Fatalf("inspect of an in-flight record: %v\n%s", err, out)
	}

	var fu FollowUpAnswer
	adminJSON(t, "/dws_notify/follow_up", 200, &fu)
	if fu.Total != 4 || fu.Limit != DefaultFollowUpLimit || fu.Truncated || len(fu.Records) != 4 {
		t.Fatalf("follow_up = %+v", fu)
	}
	for i, id := range []string{"rej-1", "rej-2", "rej-3", "rej-4"} { // oldest first
		r := fu.Records[i]
		if r.RequestID != id || r.Outcome != "business_rejected" || r.BackendStatus != http.StatusConflict || r.ResultCode != "SUCCESS" || r.CompletedAt.IsZero() || r.Storage != storage {
			t.Errorf("follow_up record %d = %+v, want %s", i, r, id)
		}
	}
	adminJSON(t, "/dws_notify/follow_up?limit=2", 200, &fu)
	if fu.Total != 4 || fu.Limit != 2 || !fu.Truncated || len(fu.Records) != 2 || fu.Records[0].RequestID != "rej-1" || fu.Records[1].RequestID != "rej-2" {
		t.Fatalf("follow_up?limit=2 = %+v", fu)
	}
	adminJSON(t, "/dws_notify/follow_up?api=removePaymentMethod", 200, &fu)
	if fu.Total != 1 || len(fu.Records) != 1 || fu.Records[0].RequestID != "rej-4" {
		t.Fatalf("follow_up?api=removePaymentMethod = %+v", fu)
	}
	_, _, raw := adminCall(t, http.MethodGet, "/dws_notify/follow_up?client_id=someone-else")
	if !strings.Contains(string(raw), `"records": []`) || !strings.Contains(string(raw), `"total": 0`) {
		t.Fatalf("empty follow-up list: %s", raw)
	}
	for _, bad := range []string{"0", "-1", "1001", "ten"} {
		if msg := adminError(t, "/dws_notify/follow_up?limit="+bad, 400); !strings.Contains(msg, "limit must be a number from 1 to 1000") {
			t.Errorf("limit=%s: %q", bad, msg)
		}
	}

	close(release)
	if a := <-slow; a.status != 200 {
		t.Fatalf("slow notification answered HTTP %d", a.status)
	}
	adminJSON(t, "/dws_notify/stats", 200, &stats)
	if want := (OutcomeCounts{Accepted: 3, BusinessRejected: 4, Total: 7}); stats.Total != want {
		t.Fatalf("stats after the slow one completed = %+v, want %+v", stats.Total, want)
	}
}

func TestAdminIsReadOnlyJSON(t *testing.T) {
	startGateway(t, newBackend(t), gatewayConfig{})
	for _, path := range []string{"/dws_notify/record?request_id=x", "/dws_notify/stats", "/dws_notify/follow_up"} {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			status, h, body := adminCall(t, method, path)
			if status != http.StatusMethodNotAllowed || h.Get("Allow") != "GET" || h.Get("Content-Type") != "application/json" ||
				!strings.Contains(string(body), `"error":"method `+method+` not allowed`) {
				t.Errorf("%s %s: HTTP %d, Allow %q, %s", method, path, status, h.Get("Allow"), body)
			}
		}
	}
	if msg := adminError(t, "/dws_notify/records", 404); !strings.Contains(msg, "no dws_notify admin endpoint at /dws_notify/records") {
		t.Errorf("unknown endpoint: %q", msg)
	}
}

// Several storage directories mean several pooled stores: every one is
// searched, counted and listed.
func TestAdminSearchesEveryPooledStore(t *testing.T) {
	g := startGateway(t, newBackend(t), gatewayConfig{})
	g.send(g.notice(addPath, addSample(t, "multi-1"))).expect(t, 200, "S", "SUCCESS")

	second := canonicalDir(t, t.TempDir())
	s2, err := acquireStore(second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = releaseStore(second) })
	// As a handler on that directory would: its Client-Id and APIs are
	// where the admin API looks records up.
	served := []servedKey{{testClientID, "addPaymentMethod"}, {testClientID, "removePaymentMethod"}}
	s2.serve(served)
	t.Cleanup(func() { s2.unserve(served) })
	ctx := context.Background()
	key := keyOf("addPaymentMethod", "multi-1")
	claim, err := s2.Claim(ctx, key, idempotency.Fingerprint{1}, time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Complete(ctx, key, claim.Token, idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeBusinessRejected, BackendStatus: 422}, time.Hour); err != nil {
		t.Fatal(err)
	}

	// A claim whose lease ran out (its gateway stopped mid-forward).
	abandoned := keyOf("removePaymentMethod", "abandoned-1")
	if _, err := s2.Claim(ctx, abandoned, idempotency.Fingerprint{2}, 10*time.Millisecond, time.Hour); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	var ab RecordsAnswer
	adminJSON(t, "/dws_notify/record?request_id=abandoned-1", 200, &ab)
	if len(ab.Records) != 1 || ab.Records[0].State != "in_flight" || !ab.Records[0].LeaseExpired || ab.Records[0].Storage != second {
		t.Fatalf("abandoned claim: %+v", ab.Records)
	}
	out, err := runCLI(t, "inspect", "--request-id", "abandoned-1", "--address", adminAddress)
	if err != nil || !strings.Contains(out, "  state        in flight, lease expired at ") || !strings.Contains(out, "DWS's next resend will be forwarded") {
		t.Fatalf("inspect of an abandoned claim: %v\n%s", err, out)
	}

	first := canonicalDir(t, g.storage)
	for _, query := range []string{"request_id=multi-1", "request_id=multi-1&client_id=" + testClientID} {
		var ans RecordsAnswer
		adminJSON(t, "/dws_notify/record?"+query, 200, &ans)
		got := map[string]string{}
		for _, r := range ans.Records {
			got[r.Storage] = r.Outcome
		}
		if len(ans.Records) != 2 || got[first] != "accepted" || got[second] != "business_rejected" {
			t.Fatalf("%s: records %+v, want one in %s and one in %s", query, ans.Records, first, second)
		}
	}
	var stats StatsAnswer
	adminJSON(t, "/dws_notify/stats", 200, &stats)
	if len(stats.Stores) != 2 || stats.Total != (OutcomeCounts{InFlight: 1, Accepted: 1, BusinessRejected: 1, Total: 3}) {
		t.Fatalf("stats = %+v", stats)
	}
	var fu FollowUpAnswer
	adminJSON(t, "/dws_notify/follow_up", 200, &fu)
	if fu.Total != 1 || fu.Records[0].Storage != second || fu.Records[0].BackendStatus != 422 {
		t.Fatalf("follow_up = %+v", fu)
	}
	out, err = runCLI(t, "inspect", "--request-id", "multi-1", "--address", adminAddress)
	if err != nil || strings.Count(out, "requestId multi-1\n") != 2 || !strings.Contains(out, "business_rejected: the backend refused it for a business reason (HTTP 422)") {
		t.Fatalf("inspect of a requestId in two stores: %v\n%s", err, out)
	}
}

// A store closed while it is still pooled (a reload dropping its directory,
// or a shutdown, racing the request) is listed in the answer's errors
// while the other stores still answer; only when no store can be read is
// the answer a 503. Never a panic.
func TestAdminClosedStoreIsListedAndAllClosedIs503(t *testing.T) {
	g := startGateway(t, newBackend(t), gatewayConfig{})
	g.send(g.notice(addPath, addSample(t, "part-1"))).expect(t, 200, "S", "SUCCESS")
	live := canonicalDir(t, g.storage)
	closed := func() string {
		dir := canonicalDir(t, t.TempDir())
		s, err := acquireStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = releaseStore(dir) })
		s.serve([]servedKey{{testClientID, "addPaymentMethod"}})
		if err := s.Store.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dir := closed()
	closedMsg := "the dws_notify store at " + dir + " was closed while it was being read"
	checkErrors := func(path string, errs []StoreError) {
		t.Helper()
		if len(errs) != 1 || errs[0].Storage != dir || errs[0].Status != http.StatusServiceUnavailable || !strings.HasPrefix(errs[0].Error, closedMsg) {
			t.Errorf("%s: errors = %+v, want the closed store at %s", path, errs, dir)
		}
	}

	var stats StatsAnswer
	adminJSON(t, "/dws_notify/stats", 200, &stats)
	checkErrors("stats", stats.Errors)
	if len(stats.Stores) != 1 || stats.Stores[0].Storage != live || stats.Total != (OutcomeCounts{Accepted: 1, Total: 1}) {
		t.Errorf("stats = %+v, want the live store only", stats)
	}
	var fu FollowUpAnswer
	adminJSON(t, "/dws_notify/follow_up", 200, &fu)
	checkErrors("follow_up", fu.Errors)
	for _, path := range []string{"/dws_notify/record?request_id=part-1", "/dws_notify/record?request_id=part-1&client_id=" + testClientID} {
		var rec RecordsAnswer
		adminJSON(t, path, 200, &rec)
		checkErrors(path, rec.Errors)
		if len(rec.Records) != 1 || rec.Records[0].Storage != live || rec.Records[0].RequestID != "part-1" {
			t.Errorf("%s: records = %+v", path, rec.Records)
		}
	}
	// Nothing found, but one store could not be read: not a 404.
	msg := adminError(t, "/dws_notify/record?request_id=x", http.StatusServiceUnavailable)
	if !strings.HasPrefix(msg, `no record of requestId "x" in the store at `+live+", but not every store could be read") || !strings.Contains(msg, closedMsg) {
		t.Errorf("record of x: %q", msg)
	}

	// inspect prints what it got, and says what it could not read: exit 0.
	out, err := runCLI(t, "inspect", "--request-id", "part-1", "--address", adminAddress)
	if err != nil || !strings.HasPrefix(out, "requestId part-1\n") || !strings.Contains(out, "  storage      "+live+"\n") ||
		!strings.HasSuffix(out, "\nNOT READ: "+closedMsg+" (a config reload or shutdown is in progress); try again (HTTP 503); records of requestId part-1 in storage "+dir+", if any, are not shown\n") {
		t.Fatalf("inspect with a closed store: %v\n%s", err, out)
	}
	out, err = runCLI(t, "inspect", "--request-id", "x", "--address", adminAddress)
	if err == nil || out != "" || !strings.Contains(err.Error(), "not every store could be read") || !strings.Contains(err.Error(), closedMsg) {
		t.Fatalf("inspect of x with a closed store: %v\n%s", err, out)
	}

	// No store left that can be read: 503 for every endpoint, the message
	// names each store.
	unloadConfig(t)
	for _, path := range []string{"/dws_notify/stats", "/dws_notify/follow_up", "/dws_notify/record?request_id=part-1", "/dws_notify/record?request_id=x&client_id=" + testClientID} {
		if msg := adminError(t, path, http.StatusServiceUnavailable); !strings.HasPrefix(msg, closedMsg) {
			t.Errorf("%s with only a closed store: %q", path, msg)
		}
	}
	_, err = runCLI(t, "inspect", "--request-id", "part-1", "--address", adminAddress)
	if err == nil || !strings.HasPrefix(err.Error(), closedMsg) {
		t.Fatalf("inspect with only a closed store: %v", err)
	}
	other := closed()
	for _, path := range []string{"/dws_notify/stats", "/dws_notify/follow_up", "/dws_notify/record?request_id=part-1"} {
		msg := adminError(t, path, http.StatusServiceUnavailable)
		if !strings.HasPrefix(msg, "none of the 2 dws_notify stores could be read: ") || !strings.Contains(msg, closedMsg) || !strings.Contains(msg, "the dws_notify store at "+other+" was closed") {
			t.Errorf("%s with two closed stores: %q", path, msg)
		}
	}
}

// A Caddy whose config has no dws_notify handler has no store to read.
func TestAdminWithoutAnyStore(t *testing.T) {
	caddytest.NewTester(t).InitServer(`{
	admin `+adminAddress+`
	http_port 9080
	https_port 9443
	skip_install_trust
}
`, "caddyfile")
	if msg := adminError(t, "/dws_notify/record?request_id=x", 404); msg != "no dws_notify store is open: the running config has no dws_notify handler" {
		t.Errorf("record: %q", msg)
	}
	var stats StatsAnswer
	adminJSON(t, "/dws_notify/stats", 200, &stats)
	if stats.Stores == nil || len(stats.Stores) != 0 || stats.Total != (OutcomeCounts{}) {
		t.Errorf("stats = %+v", stats)
	}
	_, err := runCLI(t, "inspect", "--request-id", "x", "--address", adminAddress)
	if err == nil || err.Error() != "no dws_notify store is open: the running config has no dws_notify handler" {
		t.Errorf("inspect: %v", err)
	}
}
