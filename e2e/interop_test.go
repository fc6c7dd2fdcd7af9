package e2e

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Interoperability with Alipay's SDKs (issue 14), through the built binary.

// sdkSignature is the Signature header value Alipay's SDKs send: RSA-SHA256
// over "POST <uri>\n<Client-Id>.<Request-Time>.<body>", standard Base64,
// then url.QueryEscape; withVersion false leaves keyVersion out. It shares
// no code with the gateway.
func sdkSignature(t testing.TB, key *rsa.PrivateKey, keyVersion int, withVersion bool, uri, requestTime string, body []byte) string {
	t.Helper()
	d := sha256.Sum256([]byte("POST " + uri + "\n" + clientID + "." + requestTime + "." + string(body)))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	value := url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	if !withVersion {
		return "algorithm=RSA256,signature=" + value
	}
	return "algorithm=RSA256,keyVersion=" + strconv.Itoa(keyVersion) + ",signature=" + value
}

// sdkHeaders are the headers of one notification as an SDK sends it.
func sdkHeaders(requestTime, sig, keyVersion string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=UTF-8")
	h.Set("Client-Id", clientID)
	h.Set("Request-Time", requestTime)
	h.Set("Signature", sig)
	if keyVersion != "" {
		h.Set("Key-Version", keyVersion)
	}
	return h
}

// scrapeCounter reads one series of a counter from the admin API's
// /metrics; 0 when the series does not exist yet.
func scrapeCounter(t testing.TB, adminAddr, name string, labels map[string]string) float64 {
	t.Helper()
	var kv []string
	for k, v := range labels {
		kv = append(kv, k, v)
	}
	v, _ := value(scrape(t, adminAddr), name, kv...)
	return v
}

// loggedKeyVersions returns the key_version of the gateway's log line for
// each requestId that has one.
func loggedKeyVersions(output string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(output, "\n") {
		if !strings.Contains(line, `"dws notification"`) {
			continue
		}
		var l struct {
			Msg        string `json:"msg"`
			RequestID  string `json:"request_id"`
			KeyVersion *int   `json:"key_version"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "dws notification" && l.KeyVersion != nil {
			out[l.RequestID] = strconv.Itoa(*l.KeyVersion)
		}
	}
	return out
}

// TestSDKInterop runs a gateway with DWS's old key (version 1, made by the
// binary's `dws-notify keygen` and used in its bare Base64 forms, the SDKs'
// ones) and new key (version 2) and `result_message_field both`, and sends
// notifications signed the SDKs' way: with and without keyVersion, with
// and without the Key-Version header, forged, and with Request-Times in
// every epoch precision. Then it replays the openssl-made known-answer
// cases of signature/testdata/openssl/sdk/ through a second gateway.
func TestSDKInterop(t *testing.T) {
	bin := caddyBin(t)
	sb := newSandbox(t)
	be := newBackend(t)

	// keygen through the binary; the "SDK" takes the private .b64 as the
	// SDKs do (Base64, then PKCS#8), the gateway the public .b64.
	if out, err := runCaddy(t, bin, sb, "dws-notify", "keygen", "--out", "keys", "--name", "dws_v1"); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	b64, err := os.ReadFile(filepath.Join(sb.Dir, "keys", "dws_v1_private.b64"))
	if err != nil {
		t.Fatal(err)
	}
	der, err := base64.StdEncoding.DecodeString(string(b64))
	if err != nil {
		t.Fatalf("private .b64 is not bare Base64: %v", err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatalf("private .b64 is not PKCS#8: %v", err)
	}
	oldKey := parsed.(*rsa.PrivateKey)

	cfg := newGatewayConfig(t, sb, be.HostPort())
	cfg.KeyV1 = &keyPair{Private: oldKey, B64Path: filepath.Join(sb.Dir, "keys", "dws_v1_public.b64")}
	cfg.Extra = "result_message_field both"
	site := "http://" + cfg.SiteAddr
	proc := startCaddy(t, bin, sb, cfg.Caddyfile(), cfg.AdminAddr, site+"/")
	dws := newDWS(site, clientID, nil)
	forger := newKeyPair(t, sb, "forger")
	const both = `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success","resultMessage":"success"}}`
	verifications := func(keyVersion, result string) float64 {
		return scrapeCounter(t, cfg.AdminAddr, "caddy_dws_notify_signature_verifications_total", map[string]string{"key_version": keyVersion, "result": result})
	}

	t.Run("key choice", func(t *testing.T) {
		cases := []struct {
			name        string
			key         *rsa.PrivateKey
			version     int
			withVersion bool
			kvHeader    string
			want        string // X-Dws-Key-Version, or "" for INVALID_SIGNATURE
		}{
			{"old key, keyVersion and Key-Version (the SDKs' form)", oldKey, 1, true, "1", "1"},
			{"old key, no version anywhere (the rotation outage)", oldKey, 1, false, "", "1"},
			{"old key, Key-Version only", oldKey, 1, false, "1", "1"},
			{"new key, no version anywhere", cfg.KeyV2.Private, 2, false, "", "2"},
			{"new key, Key-Version only", cfg.KeyV2.Private, 2, false, "2", "2"},
			{"forged, no version anywhere", forger.Private, 1, false, "", ""},
			{"old key, Key-Version 2 only", oldKey, 1, false, "2", ""},
		}
		before := map[string]float64{"1": verifications("1", "verified"), "2": verifications("2", "verified"),
			"none": verifications("none", "failed"), "2f": verifications("2", "failed")}
		forwarded := len(be.Deliveries())
		ids := map[string]string{}
		for i, tc := range cases {
			n := addNotif(t, fmt.Sprintf("sdk-choice-%d", i))
			rt := strconv.FormatInt(time.Now().UnixMilli(), 10)
			h := sdkHeaders(rt, sdkSignature(t, tc.key, tc.version, tc.withVersion, addURI, rt, n.Body), tc.kvHeader)
			a := dws.Do(t, http.MethodPost, addURI, n.Body, h)
			if tc.want == "" {
				if a.Result.ResultCode != "INVALID_SIGNATURE" || a.Result.ResultMsg != a.Result.ResultMessage {
					t.Errorf("%s: %q, want INVALID_SIGNATURE in both message fields", tc.name, a.Body)
				}
				if len(be.Deliveries()) != forwarded {
					t.Fatalf("%s: reached the backend", tc.name)
				}
				continue
			}
			if a.Status != http.StatusOK || string(a.Body) != both {
				t.Errorf("%s: HTTP %d %q, want %s", tc.name, a.Status, a.Body, both)
				continue
			}
			reqs := be.Deliveries()
			if len(reqs) != forwarded+1 {
				t.Fatalf("%s: backend has %d requests, want %d", tc.name, len(reqs), forwarded+1)
			}
			forwarded++
			if got := reqs[len(reqs)-1].Header.Get("X-Dws-Key-Version"); got != tc.want {
				t.Errorf("%s: X-Dws-Key-Version %q, want %s", tc.name, got, tc.want)
			}
			ids[n.ID] = tc.want
		}
		// The log line names the key that verified.
		waitFor(t, 5*time.Second, "the log lines", func() bool { return len(loggedKeyVersions(proc.Output())) >= len(ids) })
		logged := loggedKeyVersions(proc.Output())
		for id, want := range ids {
			if logged[id] != want {
				t.Errorf("log line of %s: key_version %q, want %s", id, logged[id], want)
			}
		}
		// And so does the verification metric, on the admin API.
		for _, c := range []struct {
			version, result, key string
			grew                 float64
		}{{"1", "verified", "1", 3}, {"2", "verified", "2", 2}, {"none", "failed", "none", 1}, {"2", "failed", "2f", 1}} {
			if got := verifications(c.version, c.result) - before[c.key]; got != c.grew {
				t.Errorf("signature_verifications_total{key_version=%q,result=%q} grew by %v, want %v", c.version, c.result, got, c.grew)
			}
		}
	})

	t.Run("epoch precisions", func(t *testing.T) {
		now := time.Now()
		forwarded := len(be.Deliveries())
		for i, c := range []struct {
			name, time string
			ok         bool
		}{
			{"seconds", strconv.FormatInt(now.Unix(), 10), true},
			{"milliseconds", strconv.FormatInt(now.UnixMilli(), 10), true},
			{"microseconds", strconv.FormatInt(now.UnixMicro(), 10), true},
			{"nanoseconds (Go SDK up to v1.2.18)", strconv.FormatInt(now.UnixNano(), 10), true},
			{"nanoseconds, 49h ago", strconv.FormatInt(now.Add(-49*time.Hour).UnixNano(), 10), false},
			{"17 digits", strconv.FormatInt(now.UnixMicro(), 10) + "0", false},
		} {
			n := addNotif(t, fmt.Sprintf("sdk-epoch-%d", i))
			h := sdkHeaders(c.time, sdkSignature(t, oldKey, 1, true, addURI, c.time, n.Body), "1")
			a := dws.Do(t, http.MethodPost, addURI, n.Body, h)
			switch {
			case c.ok && string(a.Body) != both:
				t.Errorf("%s (%s): %q, want S", c.name, c.time, a.Body)
			case !c.ok && a.Result.ResultCode != "INVALID_SIGNATURE":
				t.Errorf("%s (%s): %q, want INVALID_SIGNATURE", c.name, c.time, a.Body)
			case c.ok:
				forwarded++
			}
			if got := len(be.Deliveries()); got != forwarded {
				t.Fatalf("%s: backend has %d requests, want %d", c.name, got, forwarded)
			}
		}
	})

	t.Run("openssl known-answer cases", func(t *testing.T) {
		// A second gateway holding the fixture's two keys; the cases are
		// dated 2023, so without the freshness check.
		fixtures := filepath.Join("..", "signature", "testdata", "openssl")
		abs, err := filepath.Abs(fixtures)
		if err != nil {
			t.Fatal(err)
		}
		sb2 := newSandbox(t)
		be2 := newBackend(t)
		cfg2 := newGatewayConfig(t, sb2, be2.HostPort())
		cfg2.KeyV1 = &keyPair{B64Path: filepath.Join(abs, "pub.b64")}
		cfg2.KeyV2 = &keyPair{PEMPath: filepath.Join(abs, "pub2.pem")}
		cfg2.Extra = "request_time_tolerance off"
		site2 := "http://" + cfg2.SiteAddr
		startCaddy(t, bin, sb2, cfg2.Caddyfile(), cfg2.AdminAddr, site2+"/")
		sender := newDWS(site2, clientID, nil)

		cases, err := os.ReadDir(filepath.Join(fixtures, "sdk"))
		if err != nil {
			t.Fatal(err)
		}
		if len(cases) < 5 {
			t.Fatalf("%d known-answer cases", len(cases))
		}
		for i, c := range cases {
			read := func(f string) string {
				b, err := os.ReadFile(filepath.Join(fixtures, "sdk", c.Name(), f))
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			kvh, err := os.ReadFile(filepath.Join(fixtures, "sdk", c.Name(), "key_version_header"))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			if read("client_id") != clientID {
				t.Fatalf("%s: client_id %s", c.Name(), read("client_id"))
			}
			uri, body := read("uri"), []byte(read("body"))
			a := sender.Do(t, http.MethodPost, uri, body, sdkHeaders(read("time"), read("header"), string(kvh)))
			if string(a.Body) != successEnv {
				t.Errorf("%s: %q, want %s", c.Name(), a.Body, successEnv)
				continue
			}
			reqs := be2.Deliveries()
			if len(reqs) != i+1 {
				t.Fatalf("%s: backend has %d requests, want %d", c.Name(), len(reqs), i+1)
			}
			got := reqs[i]
			if got.RequestURI != uri || !bytes.Equal(got.Body, body) {
				t.Errorf("%s: backend got %s with %d bytes, want %s with the fixture's %d", c.Name(), got.RequestURI, len(got.Body), uri, len(body))
			}
			if v := got.Header.Get("X-Dws-Key-Version"); v != read("signed_by") {
				t.Errorf("%s: X-Dws-Key-Version %q, want %s", c.Name(), v, read("signed_by"))
			}
		}
	})

	if err := proc.Stop(); err != nil {
		t.Errorf("stopping caddy: %v", err)
	}
	checkNoPanic(t, "caddy", proc.Output())
	if strings.Contains(proc.Output(), "signature=") {
		t.Error("a signature value appears in the gateway's output")
	}
}
