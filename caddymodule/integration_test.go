package caddymodule

import (
	"bytes"
	"crypto/rsa"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/signature"
)

// These tests run a real in-process Caddy (caddytest, admin on
// localhost:2999, HTTP on 9080) in front of a real httptest backend, with
// real RSA keys and Badger in t.TempDir(). Every InitServer is a real config
// reload of the one Caddy process the package's tests share.

func TestForwardedAndAcknowledged(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{})

	body := addSample(t, "")
	n := g.notice(addPath, body)
	n.mutate = func(h http.Header) {
		h.Set("X-Dws-Verified", "forged")
		h.Set("X-Dws-Request-Id", "forged")
		h.Set("X-Dws-Anything", "forged")
	}
	a := g.send(n)
	a.expect(t, http.StatusOK, "S", "SUCCESS")
	if string(a.raw) != `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success"}}` {
		t.Errorf("envelope bytes = %s", a.raw)
	}
	if got := a.header.Get("Client-Id"); got != testClientID {
		t.Errorf("Client-Id echo = %q", got)
	}
	if a.header.Get("Signature") != "" {
		t.Error("answer is signed although no merchant_private_key is configured")
	}
	if _, err := time.Parse("2006-01-02T15:04:05-07:00", a.header.Get("Response-Time")); err != nil {
		t.Errorf("Response-Time %q: %v", a.header.Get("Response-Time"), err)
	}

	hits := b.hits()
	if len(hits) != 1 {
		t.Fatalf("backend got %d requests, want 1", len(hits))
	}
	got := hits[0]
	if !bytes.Equal(got.body, body) {
		t.Errorf("backend body differs from the bytes DWS sent:\n%s\n%s", got.body, body)
	}
	if got.length != int64(len(body)) {
		t.Errorf("backend Content-Length = %d, want %d", got.length, len(body))
	}
	want := map[string]string{
		"X-Dws-Api":         "addPaymentMethod",
		"X-Dws-Client-Id":   testClientID,
		"X-Dws-Request-Id":  "20990501203220303032821078591",
		"X-Dws-Key-Version": "1",
		"X-Dws-Verified":    "true",
	}
	for k, v := range want {
		if vals := got.header.Values(k); len(vals) != 1 || vals[0] != v {
			t.Errorf("backend header %s = %q, want %q", k, vals, v)
		}
	}
	if v := got.header.Get("X-Dws-Anything"); v != "" {
		t.Errorf("incoming X-Dws-Anything reached the backend: %q", v)
	}
	if got.path != addPath {
		t.Errorf("backend path = %q", got.path)
	}
}

func TestRemoveSampleAndDuplicateReplay(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{})

	n := g.notice(removePath, removeSample(t, ""))
	g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
	// A DWS retry: re-signed with a fresh Request-Time, same body.
	n.time = ""
	g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
	if got := len(b.hits()); got != 1 {
		t.Fatalf("backend got %d requests, want exactly 1 (the duplicate must be replayed)", got)
	}
}

func TestBusinessRejectIsAcknowledgedAndReplayed(t *testing.T) {
	for _, code := range []int{400, 409, 422} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			b := newBackend(t)
			g := startGateway(t, b, gatewayConfig{})
			b.status(code)
			n := g.notice(addPath, addSample(t, "biz-"+strconv.Itoa(code)))
			a := g.send(n)
			a.expect(t, http.StatusOK, "S", "SUCCESS")
			if a.header.Get("Content-Length") != strconv.Itoa(len(a.raw)) {
				t.Errorf("Content-Length %q does not describe the envelope (%d bytes)", a.header.Get("Content-Length"), len(a.raw))
			}
			b.status(http.StatusOK)
			n.time = ""
			g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
			if got := len(b.hits()); got != 1 {
				t.Fatalf("backend got %d requests, want 1 (stored answer replayed)", got)
			}
			rec, found, err := storeFor(t, g).Get(t.Context(), keyOf("addPaymentMethod", "biz-"+strconv.Itoa(code)))
			if err != nil || !found {
				t.Fatalf("record: found=%v err=%v", found, err)
			}
			if rec.Answer.Outcome != "business_rejected" || rec.Answer.BackendStatus != code {
				t.Errorf("record answer = %+v, want business_rejected/%d", rec.Answer, code)
			}
		})
	}
}

func TestCustomBusinessRejectStatus(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{extra: "business_reject_status 418"})
	b.status(422) // no longer a business status: U
	g.send(g.notice(addPath, addSample(t, "c1"))).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	b.status(418)
	g.send(g.notice(addPath, addSample(t, "c2"))).expect(t, http.StatusOK, "S", "SUCCESS")
}

func TestBackendFailuresAnswerUAndRelease(t *testing.T) {
	t.Run("500", func(t *testing.T) {
		b := newBackend(t)
		g := startGateway(t, b, gatewayConfig{})
		b.status(http.StatusInternalServerError)
		n := g.notice(addPath, addSample(t, "fail-500"))
		g.send(n).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
		// The claim was released: DWS's retry goes through once the backend recovers.
		b.status(http.StatusOK)
		n.time = ""
		g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
		if got := len(b.hits()); got != 2 {
			t.Fatalf("backend got %d requests, want 2", got)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		b := newBackend(t)
		g := startGateway(t, b, gatewayConfig{})
		b.setRespond(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusOK)
		})
		n := g.notice(addPath, addSample(t, "slow"))
		start := time.Now()
		g.send(n).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
		if took := time.Since(start); took > 4*time.Second {
			t.Errorf("answer took %s; forward_timeout is 2s", took)
		}
		b.status(http.StatusOK)
		n.time = ""
		g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
	})
	t.Run("unreachable", func(t *testing.T) {
		g := startGateway(t, nil, gatewayConfig{upstream: "127.0.0.1:1"})
		g.send(g.notice(addPath, addSample(t, "down"))).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	})
	t.Run("no handler", func(t *testing.T) {
		g := startGateway(t, nil, gatewayConfig{upstream: "none"})
		g.send(g.notice(addPath, addSample(t, "nobody"))).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	})
	t.Run("backend writes nothing but headers of a 302", func(t *testing.T) {
		b := newBackend(t)
		g := startGateway(t, b, gatewayConfig{})
		b.status(http.StatusFound)
		g.send(g.notice(addPath, addSample(t, "redirect"))).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	})
}

func TestRepeatRequestInconsistent(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{})
	g.send(g.notice(addPath, addSample(t, "same-id"))).expect(t, http.StatusOK, "S", "SUCCESS")
	changed := bytes.Replace(addSample(t, "same-id"), []byte(`"300005538591"`), []byte(`"300005538592"`), 1)
	a := g.send(g.notice(addPath, changed))
	a.expect(t, http.StatusOK, "F", "REPEAT_REQ_INCONSISTENT")
	// Same content with other spacing is not a conflict.
	respaced := bytes.ReplaceAll(addSample(t, "same-id"), []byte("\n"), []byte("\n  "))
	g.send(g.notice(addPath, respaced)).expect(t, http.StatusOK, "S", "SUCCESS")
	if got := len(b.hits()); got != 1 {
		t.Fatalf("backend got %d requests, want 1", got)
	}
}

func TestSignatureFailures(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{})
	body := addSample(t, "sig")
	k := keys(t)

	cases := []struct {
		name string
		edit func(n *notice)
		code string
	}{
		{"missing Signature", func(n *notice) { n.mutate = func(h http.Header) { h.Del("Signature") } }, "INVALID_SIGNATURE"},
		{"missing Request-Time", func(n *notice) { n.mutate = func(h http.Header) { h.Del("Request-Time") } }, "INVALID_SIGNATURE"},
		{"malformed Request-Time", func(n *notice) { n.time = "yesterday" }, "INVALID_SIGNATURE"},
		{"stale Request-Time", func(n *notice) { n.time = strconv.FormatInt(time.Now().Add(-49*time.Hour).UnixMilli(), 10) }, "INVALID_SIGNATURE"},
		{"future Request-Time", func(n *notice) { n.time = time.Now().Add(49 * time.Hour).UTC().Format(time.RFC3339) }, "INVALID_SIGNATURE"},
		{"malformed header", func(n *notice) { n.mutate = func(h http.Header) { h.Set("Signature", "garbage") } }, "INVALID_SIGNATURE"},
		{"unsupported algorithm", func(n *notice) {
			n.mutate = func(h http.Header) { h.Set("Signature", strings.Replace(h.Get("Signature"), "RSA256", "ECC224", 1)) }
		}, "INVALID_SIGNATURE"},
		{"unknown keyVersion", func(n *notice) { n.keyVersion = 7 }, "INVALID_SIGNATURE"},
		{"wrong key", func(n *notice) { n.key = k.merchant }, "INVALID_SIGNATURE"},
		{"signature over a different URI", func(n *notice) {
			n.mutate = func(h http.Header) {
				sig, _ := signature.SignatureHeader(k.dws, 1, "/other", testClientID, h.Get("Request-Time"), body)
				h.Set("Signature", sig)
			}
		}, "INVALID_SIGNATURE"},
		{"form-decoded signature", func(n *notice) {
			n.mutate = func(h http.Header) {
				v := h.Get("Signature")
				v = strings.ReplaceAll(v, "%2B", " ")
				h.Set("Signature", v)
			}
		}, "INVALID_SIGNATURE"},
		{"unknown Client-Id", func(n *notice) { n.clientID = "2188999999999999" }, "ACCESS_DENIED"},
		{"missing Client-Id", func(n *notice) { n.mutate = func(h http.Header) { h.Del("Client-Id") } }, "ACCESS_DENIED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := g.notice(addPath, body)
			tc.edit(n)
			g.send(n).expect(t, http.StatusOK, "F", tc.code)
		})
	}
	t.Run("body tampered", func(t *testing.T) {
		n := g.notice(addPath, body)
		req := n.request(t)
		tampered := bytes.Replace(body, []byte("MASTERCARD"), []byte("VISA"), 1)
		req.Body = nopCloser(tampered)
		req.ContentLength = int64(len(tampered))
		g.do(req).expect(t, http.StatusOK, "F", "INVALID_SIGNATURE")
	})
	if got := len(b.hits()); got != 0 {
		t.Fatalf("backend got %d requests; signature failures must never reach it", got)
	}
	// Nothing was claimed: the genuine notification still goes through.
	g.send(g.notice(addPath, body)).expect(t, http.StatusOK, "S", "SUCCESS")
}

func TestKeyRotation(t *testing.T) {
	b := newBackend(t)
	k := keys(t)
	g := startGateway(t, b, gatewayConfig{extra: "dws_public_key " + bareBase64(t, &k.dwsNext.PublicKey) + " 2"})
	old := g.notice(addPath, addSample(t, "rot-1"))
	g.send(old).expect(t, http.StatusOK, "S", "SUCCESS")
	next := g.notice(addPath, addSample(t, "rot-2"))
	next.key, next.keyVersion = k.dwsNext, 2
	g.send(next).expect(t, http.StatusOK, "S", "SUCCESS")
	if v := b.hits()[1].header.Get("X-Dws-Key-Version"); v != "2" {
		t.Errorf("X-Dws-Key-Version = %q, want 2", v)
	}
	// Without keyVersion every configured key is tried, newest first: a
	// notification signed by either key goes through and the backend is
	// told which key verified it. (The old key's was refused before.)
	for i, tc := range []struct {
		key  *rsa.PrivateKey
		want string
	}{{k.dwsNext, "2"}, {k.dws, "1"}} {
		noVersion := g.notice(addPath, addSample(t, fmt.Sprintf("rot-%d", 3+i)))
		noVersion.key = tc.key
		noVersion.mutate = dropKeyVersion
		g.send(noVersion).expect(t, http.StatusOK, "S", "SUCCESS")
		if v := b.hits()[len(b.hits())-1].header.Get("X-Dws-Key-Version"); v != tc.want {
			t.Errorf("no keyVersion: X-Dws-Key-Version = %q, want %s", v, tc.want)
		}
	}
	// The Key-Version header names the key when the Signature does not.
	header := g.notice(addPath, addSample(t, "rot-5"))
	header.mutate = func(h http.Header) {
		dropKeyVersion(h)
		h.Set("Key-Version", "2")
	}
	g.send(header).expect(t, http.StatusOK, "F", "INVALID_SIGNATURE")
	header.mutate = func(h http.Header) {
		dropKeyVersion(h)
		h.Set("Key-Version", "1")
	}
	g.send(header).expect(t, http.StatusOK, "S", "SUCCESS")
	if got := len(b.hits()); got != 5 {
		t.Fatalf("backend got %d notifications, want 5", got)
	}
}

func TestParamIllegal(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{extra: "max_body_size 2KiB"})
	seedAdd := string(addSample(t, "p"))

	cases := []struct {
		name, body, message string
	}{
		{"not JSON", `requestId=1`, ""},
		{"invalid UTF-8", strings.Replace(seedAdd, "Tung", "T\xffng", 1), ""},
		{"duplicate key", strings.Replace(seedAdd, `"requestId": "p"`, `"requestId": "p", "requestId": "q"`, 1), "requestId"},
		{"too deep", `{"requestId":"x","a":` + strings.Repeat(`{"a":`, 40) + `"v"` + strings.Repeat("}", 40) + "}", ""},
		{"number", strings.Replace(seedAdd, `"expiryYear": "**"`, `"expiryYear": 27`, 1), "paymentMethodDetail.card.expiryYear must be a JSON string"},
		{"boolean in array", strings.Replace(seedAdd, `"requestId": "p"`, `"requestId": "p", "tags": ["a", true]`, 1), "tags[1]"},
		{"missing requestId", strings.Replace(seedAdd, `"requestId": "p",`, ``, 1), "requestId"},
		{"empty requestId", strings.Replace(seedAdd, `"requestId": "p"`, `"requestId": ""`, 1), "requestId"},
		{"requestId too long", strings.Replace(seedAdd, `"requestId": "p"`, `"requestId": "`+strings.Repeat("9", 65)+`"`, 1), "requestId"},
		{"both reference ids", strings.Replace(seedAdd, `"requestId": "p"`, `"requestId": "p", "referenceUserId": "u1"`, 1), "referenceUserId"},
		{"bad detail type", strings.Replace(seedAdd, `"paymentMethodDetailType": "CARD"`, `"paymentMethodDetailType": "WALLET"`, 1), "paymentMethodDetailType"},
		{"bad operateSource", strings.Replace(seedAdd, `"requestId": "p"`, `"requestId": "p", "operateSource": "USER"`, 1), "operateSource"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := g.send(g.notice(addPath, []byte(tc.body)))
			a.expect(t, http.StatusOK, "F", "PARAM_ILLEGAL")
			if !strings.Contains(a.result.ResultMsg, tc.message) {
				t.Errorf("message %q does not name %q", a.result.ResultMsg, tc.message)
			}
		})
	}
	t.Run("Encrypt header", func(t *testing.T) {
		n := g.notice(addPath, addSample(t, "enc"))
		n.mutate = func(h http.Header) { h.Set("Encrypt", "algorithm=AES256,keyVersion=0,symmetricKey=x") }
		g.send(n).expect(t, http.StatusOK, "F", "PARAM_ILLEGAL")
	})
	t.Run("413", func(t *testing.T) {
		big := strings.Replace(seedAdd, `"requestId": "p"`, `"requestId": "p", "pad": "`+strings.Repeat("x", 3000)+`"`, 1)
		g.send(g.notice(addPath, []byte(big))).expect(t, http.StatusRequestEntityTooLarge, "F", "PARAM_ILLEGAL")
	})
	t.Run("405", func(t *testing.T) {
		n := g.notice(addPath, nil)
		n.method = http.MethodGet
		a := g.send(n)
		a.expect(t, http.StatusMethodNotAllowed, "F", "PARAM_ILLEGAL")
		if a.header.Get("Allow") != "POST" {
			t.Errorf("Allow = %q", a.header.Get("Allow"))
		}
	})
	t.Run("404", func(t *testing.T) {
		g.send(g.notice("/dws/notify/other", addSample(t, "nf"))).expect(t, http.StatusNotFound, "F", "PARAM_ILLEGAL")
	})
	t.Run("strict off accepts a missing operateSource", func(t *testing.T) {
		g.send(g.notice(addPath, addSample(t, "lenient"))).expect(t, http.StatusOK, "S", "SUCCESS")
	})
	if got := len(b.hits()); got != 1 {
		t.Fatalf("backend got %d requests, want only the one valid notification", got)
	}
}

func TestStrictRequiresOperateSource(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{extra: "strict"})
	a := g.send(g.notice(addPath, addSample(t, "strict")))
	a.expect(t, http.StatusOK, "F", "PARAM_ILLEGAL")
	if !strings.Contains(a.result.ResultMsg, "operateSource") {
		t.Errorf("message %q does not name operateSource", a.result.ResultMsg)
	}
	g.send(g.notice(removePath, removeSample(t, ""))).expect(t, http.StatusOK, "S", "SUCCESS")
}

func TestSignedAnswerVerifies(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{sign: true, extra: "result_message_field resultMessage"})
	n := g.notice(addPath, addSample(t, "signed"))
	n.query = "merchant=7&x=a+b"
	a := g.send(n)
	a.expect(t, http.StatusOK, "S", "SUCCESS")
	if string(a.raw) != `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}` {
		t.Errorf("envelope = %s", a.raw)
	}
	ring := signature.NewKeyRing()
	if err := ring.Add(testClientID, 2, &g.keys.merchant.PublicKey); err != nil {
		t.Fatal(err)
	}
	v, err := ring.Verify(testClientID, n.uri(), a.header.Get("Response-Time"), a.raw, a.header.Get("Signature"))
	if err != nil || v != 2 {
		t.Fatalf("answer signature does not verify with the merchant public key: version %d, %v (Signature %q)", v, err, a.header.Get("Signature"))
	}
	// Failures of verified notifications are signed too.
	b.status(http.StatusInternalServerError)
	failed := g.notice(addPath, addSample(t, "signed-3"))
	ua := g.send(failed)
	ua.expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	if _, err := ring.Verify(testClientID, failed.uri(), ua.header.Get("Response-Time"), ua.raw, ua.header.Get("Signature")); err != nil {
		t.Errorf("failure answer signature: %v", err)
	}
	// An answer to a request that did not verify is not signed.
	bad := g.notice(addPath, addSample(t, "signed-2"))
	bad.keyVersion = 9
	fa := g.send(bad)
	fa.expect(t, http.StatusOK, "F", "INVALID_SIGNATURE")
	if sig := fa.header.Get("Signature"); sig != "" {
		t.Errorf("INVALID_SIGNATURE answer is signed: %q", sig)
	}
}

// A rewrite ahead of dws_notify changes the path the backend sees, but the
// signature is verified over the request target DWS called, and api paths
// are matched against it too.
func TestOriginalURIIsVerifiedAfterRewrite(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{before: "rewrite * /internal{uri}"})
	n := g.notice(addPath, addSample(t, "rw"))
	n.query = "a=1&b=%2B"
	g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
	hits := b.hits()
	if len(hits) != 1 || hits[0].path != "/internal"+addPath {
		t.Fatalf("backend hits = %+v, want one at the rewritten path", hits)
	}

	g = startGateway(t, b, gatewayConfig{before: "uri strip_prefix /gw"})
	stripped := g.notice("/gw"+addPath, addSample(t, "rw-2"))
	g.send(stripped).expect(t, http.StatusNotFound, "F", "PARAM_ILLEGAL")
	if len(b.hits()) != 1 {
		t.Fatal("a notification at an unconfigured original path reached the backend")
	}
}

func TestConcurrentDuplicatesForwardedOnce(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{})
	b.setRespond(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	})
	n := g.notice(addPath, addSample(t, "dup"))
	const copies = 20
	var wg sync.WaitGroup
	answers := make([]answer, copies)
	reqs := make([]*http.Request, copies)
	for i := range reqs {
		n.time = ""
		reqs[i] = n.request(t)
	}
	for i := range copies {
		wg.Go(func() { answers[i] = g.do(reqs[i]) })
	}
	wg.Wait()
	for i, a := range answers {
		if a.result.ResultStatus != "S" {
			t.Errorf("copy %d answered %s/%s; with the first copy finishing in 300ms every duplicate should replay S", i, a.result.ResultStatus, a.result.ResultCode)
		}
	}
	if got := len(b.hits()); got != 1 {
		t.Fatalf("backend got %d requests, want exactly 1", got)
	}
}

func TestReloadKeepsDedupe(t *testing.T) {
	b := newBackend(t)
	storage := t.TempDir()
	g := startGateway(t, b, gatewayConfig{storage: storage})
	n := g.notice(addPath, addSample(t, "reload"))
	g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")

	// A second config on the same storage directory: Caddy provisions it
	// while the first still holds the database.
	g = startGateway(t, b, gatewayConfig{storage: storage, extra: "retention 200h"})
	n.time = ""
	g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
	if got := len(b.hits()); got != 1 {
		t.Fatalf("backend got %d requests after reload, want 1 (dedupe state lost)", got)
	}
	if refs, ok := storePool.References(storage); !ok || refs != 1 {
		t.Errorf("store references after reload = %d (%v), want 1", refs, ok)
	}
}

func TestStoreFailureAnswersU(t *testing.T) {
	b := newBackend(t)
	storage := t.TempDir()
	faulty := installFaultyStore(t, storage)
	g := startGateway(t, b, gatewayConfig{storage: storage})

	faulty.failClaim.Store(true)
	g.send(g.notice(addPath, addSample(t, "st-1"))).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	if got := len(b.hits()); got != 0 {
		t.Fatalf("forwarded %d notifications without a claim", got)
	}
	faulty.failClaim.Store(false)
	faulty.failComplete.Store(true)
	n := g.notice(addPath, addSample(t, "st-2"))
	g.send(n).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	faulty.failComplete.Store(false)
	// The store is back: the gateway serves again.
	g.send(g.notice(addPath, addSample(t, "st-3"))).expect(t, http.StatusOK, "S", "SUCCESS")
	if got := len(b.hits()); got != 2 {
		t.Fatalf("backend got %d requests, want 2 (st-2, whose completion failed, and st-3)", got)
	}
}
