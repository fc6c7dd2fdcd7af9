package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
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

	var all adminapi.RecordsAnswer
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
		if d := r.ExpiresAt.Sub(r.CompletedAt); d < config.DefaultRetention-time.Second || d > config.DefaultRetention+time.Second {
			t.Errorf("expires %v after completion, want the default retention %v", d, config.DefaultRetention)
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
		var ans adminapi.RecordsAnswer
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
	// A missing record is told apart by its code, not its text.
	for path, want := range map[string]string{
		"/dws_notify/record?request_id=never-sent": adminapi.CodeNoRecord,
		"/dws_notify/record":                       "",
		"/dws_notify/nothing-here":                 "",
	} {
		if _, h, _ := adminCall(t, http.MethodGet, path); h.Get(adminapi.ErrorCodeHeader) != want {
			t.Errorf("GET %s: %s %q, want %q", path, adminapi.ErrorCodeHeader, h.Get(adminapi.ErrorCodeHeader), want)
		}
	}
	if msg := adminError(t, "/dws_notify/record?request_id=adm-1&api=notifyAuthorization", 400); !strings.Contains(msg, `unknown api "notifyAuthorization" (known: addPaymentMethod, notifyCapture, notifyDispute, notifyPayment, notifyRefund, notifyRegistrationStatus, notifySubscription, notifySubscriptionPayment, notifyVaulting, removePaymentMethod)`) {
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

	var stats adminapi.StatsAnswer
	adminJSON(t, "/dws_notify/stats", 200, &stats)
	want := adminapi.OutcomeCounts{InFlight: 1, Accepted: 2, BusinessRejected: 4, Total: 7}
	if len(stats.Stores) != 1 || stats.Stores[0].Storage != storage || stats.Stores[0].OutcomeCounts != want || stats.Total != want {
		t.Fatalf("stats = %+v, want one store at %s with %+v", stats, storage, want)
	}
	if msg := adminError(t, "/dws_notify/stats?api=addPaymentMethod", 400); msg != "stats takes no parameters" {
		t.Errorf("stats with a parameter: %q", msg)
	}

	var rec adminapi.RecordsAnswer
	adminJSON(t, "/dws_notify/record?request_id=slow-1", 200, &rec)
	if r := rec.Records[0]; r.State != "in_flight" || r.LeaseExpiry.IsZero() || r.LeaseExpired || r.Outcome != "" || !r.CompletedAt.IsZero() {
		t.Fatalf("in-flight record %+v", r)
	}
	out, err := runCLI(t, "inspect", "--request-id", "slow-1", "--address", adminAddress)
	if err != nil || !strings.Contains(out, "  state        in flight: being forwarded to the backend now (lease until ") {
		t.Fatalf("inspect of an in-flight record: %v\n%s", err, out)
	}

	var fu adminapi.FollowUpAnswer
	adminJSON(t, "/dws_notify/follow_up", 200, &fu)
	if fu.Total != 4 || fu.Limit != adminapi.DefaultFollowUpLimit || fu.Truncated || len(fu.Records) != 4 {
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
	if want := (adminapi.OutcomeCounts{Accepted: 3, BusinessRejected: 4, Total: 7}); stats.Total != want {
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
	var ab adminapi.RecordsAnswer
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
		var ans adminapi.RecordsAnswer
		adminJSON(t, "/dws_notify/record?"+query, 200, &ans)
		got := map[string]string{}
		for _, r := range ans.Records {
			got[r.Storage] = r.Outcome
		}
		if len(ans.Records) != 2 || got[first] != "accepted" || got[second] != "business_rejected" {
			t.Fatalf("%s: records %+v, want one in %s and one in %s", query, ans.Records, first, second)
		}
	}
	var stats adminapi.StatsAnswer
	adminJSON(t, "/dws_notify/stats", 200, &stats)
	if len(stats.Stores) != 2 || stats.Total != (adminapi.OutcomeCounts{InFlight: 1, Accepted: 1, BusinessRejected: 1, Total: 3}) {
		t.Fatalf("stats = %+v", stats)
	}
	var fu adminapi.FollowUpAnswer
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
	checkErrors := func(path string, errs []adminapi.StoreError) {
		t.Helper()
		if len(errs) != 1 || errs[0].Storage != dir || errs[0].Status != http.StatusServiceUnavailable || !strings.HasPrefix(errs[0].Error, closedMsg) {
			t.Errorf("%s: errors = %+v, want the closed store at %s", path, errs, dir)
		}
	}

	var stats adminapi.StatsAnswer
	adminJSON(t, "/dws_notify/stats", 200, &stats)
	checkErrors("stats", stats.Errors)
	if len(stats.Stores) != 1 || stats.Stores[0].Storage != live || stats.Total != (adminapi.OutcomeCounts{Accepted: 1, Total: 1}) {
		t.Errorf("stats = %+v, want the live store only", stats)
	}
	var fu adminapi.FollowUpAnswer
	adminJSON(t, "/dws_notify/follow_up", 200, &fu)
	checkErrors("follow_up", fu.Errors)
	for _, path := range []string{"/dws_notify/record?request_id=part-1", "/dws_notify/record?request_id=part-1&client_id=" + testClientID} {
		var rec adminapi.RecordsAnswer
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
	var stats adminapi.StatsAnswer
	adminJSON(t, "/dws_notify/stats", 200, &stats)
	if stats.Stores == nil || len(stats.Stores) != 0 || stats.Total != (adminapi.OutcomeCounts{}) {
		t.Errorf("stats = %+v", stats)
	}
	_, err := runCLI(t, "inspect", "--request-id", "x", "--address", adminAddress)
	if err == nil || err.Error() != "no dws_notify store is open: the running config has no dws_notify handler" {
		t.Errorf("inspect: %v", err)
	}
}

// scanProbe wraps a real store: it counts Scan calls and the scans running,
// and sleeps pause before handing each record to the scan's callback (a
// store with many records, in miniature).
type scanProbe struct {
	idempotency.Store
	scans, running atomic.Int64
	pause          atomic.Int64 // nanoseconds per record
}

func (p *scanProbe) Scan(ctx context.Context, fn func(idempotency.Record) bool) error {
	p.scans.Add(1)
	p.running.Add(1)
	defer p.running.Add(-1)
	return p.Store.Scan(ctx, func(rec idempotency.Record) bool {
		time.Sleep(time.Duration(p.pause.Load()))
		return fn(rec)
	})
}

// installScanProbe has the pool open dir behind a scanProbe (installStore).
func installScanProbe(t *testing.T, dir string) (*scanProbe, func()) {
	t.Helper()
	p := &scanProbe{}
	handOver := installStore(t, dir, func(st idempotency.Store) idempotency.Store {
		p.Store = st
		return p
	})
	return p, handOver
}

// fillStore writes n done records into s.
func fillStore(t *testing.T, s *sharedStore, n int) {
	t.Helper()
	for i := range n {
		key := keyOf("addPaymentMethod", fmt.Sprintf("fill-%d", i))
		c, err := s.Claim(t.Context(), key, idempotency.Fingerprint{1}, time.Minute, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(t.Context(), key, c.Token, idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
}

// /record reads the keys the handlers serve and never scans; the handlers
// of a reloaded config register their keys once, counted.
func TestAdminRecordDoesNotScan(t *testing.T) {
	dir := t.TempDir()
	p, _ := installScanProbe(t, dir)
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{storage: dir})
	g.send(g.notice(addPath, addSample(t, "noscan-1"))).expect(t, 200, "S", "SUCCESS")
	g.send(g.notice(removePath, removeSample(t, "noscan-1"))).expect(t, 200, "S", "SUCCESS")
	check := func() {
		t.Helper()
		for _, q := range []struct {
			query string
			n     int
		}{
			{"request_id=noscan-1", 2},
			{"request_id=noscan-1&api=removePaymentMethod", 1},
			{"request_id=noscan-1&client_id=" + testClientID, 2},
		} {
			var ans adminapi.RecordsAnswer
			adminJSON(t, "/dws_notify/record?"+q.query, 200, &ans)
			if len(ans.Records) != q.n || len(ans.Errors) != 0 {
				t.Errorf("%s: %+v, want %d records", q.query, ans, q.n)
			}
		}
		adminError(t, "/dws_notify/record?request_id=never-sent", 404)
		if n := p.scans.Load(); n != 0 {
			t.Fatalf("/record scanned the store %d times", n)
		}
	}
	check()
	want := map[servedKey]int{{testClientID, "addPaymentMethod"}: 1, {testClientID, "removePaymentMethod"}: 1}
	s := storeFor(t, g)
	served := func() map[servedKey]int {
		s.servedMu.Lock()
		defer s.servedMu.Unlock()
		return maps.Clone(s.served)
	}
	if got := served(); !maps.Equal(got, want) {
		t.Fatalf("served keys %v, want %v", got, want)
	}
	// A reload on the same storage: the new handler registers, the old one
	// gives its keys back.
	g = startGateway(t, b, gatewayConfig{storage: dir, extra: "retention 200h"})
	if storeFor(t, g) != s {
		t.Fatal("the reload opened another store")
	}
	if got := served(); !maps.Equal(got, want) {
		t.Fatalf("served keys after a reload %v, want %v", got, want)
	}
	check()
	// The probe does count scans.
	var stats adminapi.StatsAnswer
	adminJSON(t, "/dws_notify/stats", 200, &stats)
	if n := p.scans.Load(); n != 1 || stats.Total.Total != 2 {
		t.Fatalf("stats: %d scans, %+v", n, stats)
	}
	unloadConfig(t)
	if got := served(); len(got) != 0 {
		t.Fatalf("served keys after the config was unloaded: %v", got)
	}
}

// At most maxAdminScans stats or follow_up requests scan at once; more
// are answered 429 with Retry-After, and /record still answers.
func TestAdminScansAreBounded(t *testing.T) {
	dir := t.TempDir()
	p, _ := installScanProbe(t, dir)
	g := startGateway(t, newBackend(t), gatewayConfig{storage: dir})
	fillStore(t, storeFor(t, g), 20)
	p.pause.Store(int64(250 * time.Millisecond)) // 5s per scan
	statuses := make(chan int, maxAdminScans)
	for range maxAdminScans {
		go func() {
			res, err := http.Get("http://" + adminAddress + "/dws_notify/stats")
			if err != nil {
				statuses <- 0
				return
			}
			res.Body.Close()
			statuses <- res.StatusCode
		}()
	}
	waitUntil(t, "the scans to start", func() bool { return p.running.Load() == maxAdminScans })
	for _, path := range []string{"/dws_notify/stats", "/dws_notify/follow_up"} {
		status, h, body := adminCall(t, http.MethodGet, path)
		if status != http.StatusTooManyRequests || h.Get("Retry-After") != "5" ||
			!strings.Contains(string(body), "2 dws_notify stats or follow_up requests are already reading every record; ask again in a few seconds") {
			t.Errorf("%s while %d scans run: HTTP %d, Retry-After %q: %s", path, maxAdminScans, status, h.Get("Retry-After"), body)
		}
	}
	var rec adminapi.RecordsAnswer
	adminJSON(t, "/dws_notify/record?request_id=fill-3", 200, &rec)
	p.pause.Store(0)
	for range maxAdminScans {
		if s := <-statuses; s != http.StatusOK {
			t.Errorf("a running scan answered HTTP %d", s)
		}
	}
	if n := p.scans.Load(); n != maxAdminScans {
		t.Errorf("%d scans, want %d (the refused requests must not scan)", n, maxAdminScans)
	}
	var stats adminapi.StatsAnswer
	adminJSON(t, "/dws_notify/stats", 200, &stats)
	if stats.Total.Total != 20 {
		t.Errorf("stats after the scans = %+v", stats)
	}
}

// A reload that drops a store being scanned does not wait for the scan:
// the scan ends at once and its request answers 503.
func TestAdminReloadDuringAScanIsPrompt(t *testing.T) {
	dir := t.TempDir()
	p, handOver := installScanProbe(t, dir)
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{storage: dir})
	handOver() // the gateway holds the store alone: the reload closes it
	fillStore(t, storeFor(t, g), 100)
	p.pause.Store(int64(100 * time.Millisecond)) // 10s per scan
	type answered struct {
		status int
		body   string
	}
	done := make(chan answered, 1)
	go func() {
		res, err := http.Get("http://" + adminAddress + "/dws_notify/stats")
		if err != nil {
			done <- answered{body: err.Error()}
			return
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		done <- answered{res.StatusCode, string(body)}
	}()
	waitUntil(t, "the scan to start", func() bool { return p.running.Load() == 1 })
	start := time.Now()
	startGateway(t, b, gatewayConfig{}) // another storage directory: the old store is closed
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the reload took %v: it waited for the scan", took)
	}
	if _, ok := storePool.References(canonicalDir(t, dir)); ok {
		t.Fatal("the old store is still pooled")
	}
	select {
	case a := <-done:
		if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "was closed while it was being read") {
			t.Fatalf("the interrupted stats request: HTTP %d: %s", a.status, a.body)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the scan did not end with its store")
	}
	if n := p.running.Load(); n != 0 {
		t.Fatalf("%d scans still running", n)
	}
}

// One Badger site and one Redis site whose Redis is down: every endpoint
// answers from Badger and names the Redis store, without its password;
// inspect prints the Badger record and a NOT READ line, exit status 0.
func TestAdminRedisDownBadgerStillAnswers(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{Password: redisSecret})
	// go-redis logs a failed dial once per ClientLogEvery process-wide:
	// start the next test with a fresh limit, as if this one had not run.
	t.Cleanup(func() {
		redisLog := storeLog.Named("redis")
		redisstore.RouteClientLog(func() *zap.Logger { return redisLog })
	})
	const prefix = "partial:"
	const otherClient = "2188120000000077"
	b := newBackend(t)
	k := keys(t)
	storage := t.TempDir()
	site := func(clientID, api, store string) string {
		return `dws_notify {
			client_id ` + clientID + `
			dws_public_key {file.` + filepath.Join(k.dir, "dws_public.pem") + `}
			api addPaymentMethod ` + api + `
			` + store + `
		}
		reverse_proxy ` + b.addr()
	}
	tester := caddytest.NewTester(t)
	tester.InitServer(`{
	admin `+adminAddress+`
	http_port 9080
	https_port 9443
	grace_period 1ns
	skip_install_trust
}
http://localhost:9080 {
	handle /redis/* {
		`+site(otherClient, "/redis/add", redisStoreDirective(t, srv, prefix))+`
	}
	handle {
		`+site(testClientID, addPath, "storage "+storage)+`
	}
}
`, "caddyfile")
	t.Cleanup(func() { unloadConfig(t) })
	g := &gateway{t: t, tester: tester, storage: storage, keys: k}
	g.send(g.notice(addPath, addSample(t, "badger-1"))).expect(t, 200, "S", "SUCCESS")
	n := g.notice("/redis/add", addSample(t, "redis-1"))
	n.clientID = otherClient
	g.send(n).expect(t, 200, "S", "SUCCESS")
	badger, redisStore := canonicalDir(t, g.storage), redisName(srv, prefix)

	var rec adminapi.RecordsAnswer
	adminJSON(t, "/dws_notify/record?request_id=redis-1", 200, &rec)
	if len(rec.Records) != 1 || rec.Records[0].Storage != redisStore || rec.Records[0].ClientID != otherClient {
		t.Fatalf("record in Redis: %+v", rec)
	}

	srv.Kill()
	checkErrors := func(path string, errs []adminapi.StoreError) {
		t.Helper()
		if len(errs) != 1 || errs[0].Storage != redisStore || errs[0].Status != http.StatusServiceUnavailable ||
			!strings.HasPrefix(errs[0].Error, "the dws_notify store at "+redisStore+" ") {
			t.Errorf("%s: errors = %+v, want the Redis store", path, errs)
		}
	}
	var raw []string
	get := func(path string, v any) {
		t.Helper()
		adminJSON(t, path, 200, v)
		_, _, body := adminCall(t, http.MethodGet, path)
		raw = append(raw, string(body))
	}
	var stats adminapi.StatsAnswer
	get("/dws_notify/stats", &stats)
	checkErrors("stats", stats.Errors)
	if len(stats.Stores) != 1 || stats.Stores[0].Storage != badger || stats.Total != (adminapi.OutcomeCounts{Accepted: 1, Total: 1}) {
		t.Errorf("stats = %+v", stats)
	}
	var fu adminapi.FollowUpAnswer
	get("/dws_notify/follow_up", &fu)
	checkErrors("follow_up", fu.Errors)
	get("/dws_notify/record?request_id=badger-1", &rec)
	checkErrors("record", rec.Errors)
	if len(rec.Records) != 1 || rec.Records[0].Storage != badger {
		t.Errorf("record in Badger: %+v", rec.Records)
	}
	msg := adminError(t, "/dws_notify/record?request_id=redis-1", http.StatusServiceUnavailable)
	raw = append(raw, msg)
	if !strings.HasPrefix(msg, `no record of requestId "redis-1" in the store at `+badger+", but not every store could be read") ||
		!strings.Contains(msg, "the dws_notify store at "+redisStore) {
		t.Errorf("record only in Redis: %q", msg)
	}

	out, err := runCLI(t, "inspect", "--request-id", "badger-1", "--address", adminAddress)
	raw = append(raw, out)
	if err != nil || !strings.HasPrefix(out, "requestId badger-1\n") || !strings.Contains(out, "  storage      "+badger+"\n") ||
		!strings.Contains(out, "\nNOT READ: the dws_notify store at "+redisStore+" ") ||
		!strings.HasSuffix(out, " (HTTP 503); records of requestId badger-1 in storage "+redisStore+", if any, are not shown\n") {
		t.Fatalf("inspect with Redis down: %v\n%s", err, out)
	}
	out, err = runCLI(t, "inspect", "--request-id", "badger-1", "--address", adminAddress, "--json")
	raw = append(raw, out)
	var ans adminapi.RecordsAnswer
	if err != nil || json.Unmarshal([]byte(out), &ans) != nil || len(ans.Records) != 1 || len(ans.Errors) != 1 {
		t.Fatalf("inspect --json with Redis down: %v\n%s", err, out)
	}
	_, err = runCLI(t, "inspect", "--request-id", "redis-1", "--address", adminAddress)
	if err == nil || !strings.Contains(err.Error(), "not every store could be read") {
		t.Fatalf("inspect of a record in Redis with Redis down: %v", err)
	}
	raw = append(raw, err.Error())
	for _, r := range raw {
		if strings.Contains(r, redisSecret) {
			t.Fatalf("an answer shows the Redis password: %s", r)
		}
	}
}
