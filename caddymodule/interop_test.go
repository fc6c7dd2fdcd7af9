package caddymodule

import (
	"crypto/rsa"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/signature"
)

// Interoperability with Alipay's SDKs (issue 14): key choice without
// keyVersion, the Key-Version header, epoch precisions, resultMessage.

// verifications reads caddy_dws_notify_signature_verifications_total from
// the registry of the context a handler was provisioned in.
func verifications(t *testing.T, ctx caddy.Context, keyVersion, result string) float64 {
	t.Helper()
	return counterValue(t, ctx.GetMetricsRegistry(), "caddy_dws_notify_signature_verifications_total",
		map[string]string{"key_version": keyVersion, "result": result})
}

// recordingBackend is a next handler that keeps the headers it was given.
type recordingBackend struct {
	mu      sync.Mutex
	headers []http.Header
}

func (b *recordingBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	b.mu.Lock()
	b.headers = append(b.headers, r.Header.Clone())
	b.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	return nil
}

func (b *recordingBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.headers)
}

func (b *recordingBackend) last() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.headers[len(b.headers)-1]
}

var _ caddyhttp.Handler = (*recordingBackend)(nil)

// dropKeyVersion removes the keyVersion parameter from a Signature header.
func dropKeyVersion(h http.Header) {
	v := h.Get("Signature")
	parts := strings.Split(v, ",")
	kept := parts[:0]
	for _, p := range parts {
		if !strings.HasPrefix(p, "keyVersion=") {
			kept = append(kept, p)
		}
	}
	h.Set("Signature", strings.Join(kept, ","))
}

// TestKeyVersionChoiceThroughHandler: with DWS's old (1) and new (2) key
// configured, a notification that names no version is verified with each
// key, newest first, at most one RSA verification per key; the Key-Version
// header names the key when the Signature does not; the backend, the log
// line and the verification metric name the version that verified.
// Before SPEC §1.2's rule, "old key, no version anywhere" was refused
// INVALID_SIGNATURE (the highest version was the only one tried).
func TestKeyVersionChoiceThroughHandler(t *testing.T) {
	k := keys(t)
	var rsaOps atomic.Int64
	h := baseHandler(t)
	h.DWSPublicKey = []config.Key{
		{Key: bareBase64(t, &k.dws.PublicKey)},                          // version 1
		{Key: bareBase64(t, &k.dwsNext.PublicKey), KeyVersion: intp(2)}, // version 2
	}
	h.verify = func(key *rsa.PublicKey, digest, sig []byte) error {
		rsaOps.Add(1)
		return signature.VerifyRSA(key, digest, sig)
	}
	ctx := newContext(t)
	logs := provisioned(t, ctx, h)
	be := &recordingBackend{}

	cases := []struct {
		name       string
		key        *rsa.PrivateKey
		keyVersion int  // in the Signature
		drop       bool // remove keyVersion from the Signature
		kvHeader   []string
		code       string
		version    string // X-Dws-Key-Version and the metric's key_version
		rsa        int64
		reason     string // signature_failure in the log
	}{
		{"old key, keyVersion 1", k.dws, 1, false, nil, "SUCCESS", "1", 1, ""},
		{"new key, keyVersion 2", k.dwsNext, 2, false, nil, "SUCCESS", "2", 1, ""},
		{"old key, no version anywhere", k.dws, 1, true, nil, "SUCCESS", "1", 2, ""},
		{"new key, no version anywhere", k.dwsNext, 2, true, nil, "SUCCESS", "2", 1, ""},
		{"old key, Key-Version 1 only", k.dws, 1, true, []string{"1"}, "SUCCESS", "1", 1, ""},
		{"keyVersion wins over Key-Version", k.dws, 1, false, []string{"2"}, "SUCCESS", "1", 1, ""},
		{"forged, no version anywhere", k.merchant, 1, true, nil, "INVALID_SIGNATURE", "none", 2, "verification_failed"},
		{"forged, keyVersion 2", k.merchant, 2, false, nil, "INVALID_SIGNATURE", "2", 1, "verification_failed"},
		{"old key, Key-Version 2 only", k.dws, 1, true, []string{"2"}, "INVALID_SIGNATURE", "2", 1, "verification_failed"},
		{"Key-Version not configured", k.dws, 1, true, []string{"7"}, "INVALID_SIGNATURE", "none", 0, "unknown_key_version"},
		{"Key-Version not a number", k.dws, 1, true, []string{"v1"}, "INVALID_SIGNATURE", "none", 0, "malformed"},
		{"Key-Version twice", k.dws, 1, true, []string{"1", "1"}, "INVALID_SIGNATURE", "", 0, "malformed"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := unitNotice(t, addPath, addSample(t, fmt.Sprintf("kv-%d", i)))
			n.key, n.keyVersion = tc.key, tc.keyVersion
			n.mutate = func(hdr http.Header) {
				if tc.drop {
					dropKeyVersion(hdr)
				}
				for _, v := range tc.kvHeader {
					hdr.Add("Key-Version", v)
				}
			}
			result := "verified"
			if tc.code != "SUCCESS" {
				result = "failed"
			}
			var before float64
			if tc.version != "" {
				before = verifications(t, ctx, tc.version, result)
			}
			forwarded, opsBefore := be.count(), rsaOps.Load()
			logs.TakeAll()

			w, _ := serve(t, h, n, be)
			if !strings.Contains(w.Body.String(), `"resultCode":"`+tc.code+`"`) {
				t.Fatalf("answer %s, want %s", w.Body, tc.code)
			}
			if got := rsaOps.Load() - opsBefore; got != tc.rsa {
				t.Errorf("%d RSA verifications, want %d", got, tc.rsa)
			}
			if tc.version != "" {
				if got := verifications(t, ctx, tc.version, result) - before; got != 1 {
					t.Errorf("signature_verifications_total{key_version=%q,result=%q} grew by %v, want 1", tc.version, result, got)
				}
			}
			lines := logs.FilterMessage("dws notification").All()
			if len(lines) != 1 {
				t.Fatalf("%d log lines", len(lines))
			}
			fields := lines[0].ContextMap()
			if tc.code != "SUCCESS" {
				if be.count() != forwarded {
					t.Fatal("a refused notification reached the backend")
				}
				if fields["signature_failure"] != tc.reason {
					t.Errorf("signature_failure %v, want %s", fields["signature_failure"], tc.reason)
				}
				if _, ok := fields["key_version"]; ok {
					t.Errorf("a refused notification logged key_version %v", fields["key_version"])
				}
				return
			}
			if be.count() != forwarded+1 {
				t.Fatal("not forwarded")
			}
			if got := be.last().Get("X-Dws-Key-Version"); got != tc.version {
				t.Errorf("X-Dws-Key-Version %q, want %s", got, tc.version)
			}
			if got := fmt.Sprint(fields["key_version"]); got != tc.version {
				t.Errorf("logged key_version %s, want %s", got, tc.version)
			}
		})
	}
}

func intp(v int) *int { return &v }

// TestEpochPrecisionsThroughHandler: Request-Time in epoch seconds,
// milliseconds, microseconds and nanoseconds (Alipay's Go SDK up to
// v1.2.18) is accepted, signed verbatim, and checked for freshness;
// other digit counts are refused. Before SPEC §1.1's update the 16- and
// 19-digit forms were refused as bad_request_time.
func TestEpochPrecisionsThroughHandler(t *testing.T) {
	h := baseHandler(t)
	logs := provisioned(t, newContext(t), h)
	be := &recordingBackend{}
	now := time.Now()
	stale := now.Add(-config.DefaultRequestTimeTolerance - time.Hour)
	cases := []struct {
		name, time, code, reason string
	}{
		{"seconds", strconv.FormatInt(now.Unix(), 10), "SUCCESS", ""},
		{"milliseconds", strconv.FormatInt(now.UnixMilli(), 10), "SUCCESS", ""},
		{"microseconds", strconv.FormatInt(now.UnixMicro(), 10), "SUCCESS", ""},
		{"nanoseconds", strconv.FormatInt(now.UnixNano(), 10), "SUCCESS", ""},
		{"nanoseconds, stale", strconv.FormatInt(stale.UnixNano(), 10), "INVALID_SIGNATURE", "stale"},
		{"microseconds, stale", strconv.FormatInt(stale.UnixMicro(), 10), "INVALID_SIGNATURE", "stale"},
		{"17 digits", strconv.FormatInt(now.UnixMicro(), 10) + "0", "INVALID_SIGNATURE", "bad_request_time"},
		{"20 digits", strconv.FormatInt(now.UnixNano(), 10) + "0", "INVALID_SIGNATURE", "bad_request_time"},
		{"19 digits past int64", "9300000000000000000", "INVALID_SIGNATURE", "bad_request_time"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := unitNotice(t, addPath, addSample(t, fmt.Sprintf("epoch-%d", i)))
			n.time = tc.time
			logs.TakeAll()
			w, _ := serve(t, h, n, be)
			if !strings.Contains(w.Body.String(), `"resultCode":"`+tc.code+`"`) {
				t.Fatalf("Request-Time %s: answer %s, want %s", tc.time, w.Body, tc.code)
			}
			if tc.reason != "" {
				line := logs.FilterMessage("dws notification").All()[0].ContextMap()
				if line["signature_failure"] != tc.reason {
					t.Errorf("signature_failure %v, want %s", line["signature_failure"], tc.reason)
				}
			}
		})
	}
	if got := be.count(); got != 4 {
		t.Fatalf("backend got %d notifications, want the 4 fresh ones", got)
	}
}

// TestResultMessageFieldBoth: `result_message_field both` writes the
// message as resultMsg and again as resultMessage, on every answer, and a
// signed answer verifies over those bytes.
func TestResultMessageFieldBoth(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{sign: true, extra: "result_message_field both"})
	ring := signature.NewKeyRing()
	if err := ring.Add(testClientID, 2, &g.keys.merchant.PublicKey); err != nil {
		t.Fatal(err)
	}
	check := func(n *notice, a answer, want string) {
		t.Helper()
		if string(a.raw) != want {
			t.Errorf("envelope\n%s\nwant\n%s", a.raw, want)
		}
		if _, err := ring.Verify(testClientID, n.uri(), a.header.Get("Response-Time"), a.raw, a.header.Get("Signature")); err != nil {
			t.Errorf("answer signature: %v", err)
		}
	}
	n := g.notice(addPath, addSample(t, "both"))
	a := g.send(n)
	a.expect(t, http.StatusOK, "S", "SUCCESS")
	check(n, a, `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success","resultMessage":"success"}}`)
	// The replay of the stored answer too.
	check(n, g.send(n), `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success","resultMessage":"success"}}`)
	bad := g.notice(addPath, addSample(t, "both-2"))
	bad.key = g.keys.merchant
	// A refusal of an unverified request carries both members too, and is
	// never signed (signing is spent only on verified notifications).
	ba := g.send(bad)
	if want := `{"result":{"resultStatus":"F","resultCode":"INVALID_SIGNATURE","resultMsg":"signature verification failed","resultMessage":"signature verification failed"}}`; string(ba.raw) != want {
		t.Errorf("envelope\n%s\nwant\n%s", ba.raw, want)
	}
	if sig := ba.header.Get("Signature"); sig != "" {
		t.Errorf("the refusal of an unverified request is signed: %q", sig)
	}
	if len(b.hits()) != 1 {
		t.Fatalf("backend got %d notifications, want 1", len(b.hits()))
	}
}
