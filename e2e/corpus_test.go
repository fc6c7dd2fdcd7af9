package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dwsnotify/dws_notify/signature"
)

// TestMalformedCorpus (SPEC §8: malformed input of every kind: no panic,
// nothing forwarded, the right code). A corpus generated below, several
// hundred requests, goes through the built gateway one by one: broken and
// duplicated headers, every way of spoiling the Signature header and its
// value, every accepted Request-Time form and many refused ones, stale and
// future times, JSON of every wrong shape, bodies around max_body_size,
// Content-Encoding and Encrypt, other methods and unknown paths. Each case
// names the HTTP status and result code it must get and whether it must
// reach the backend; valid controls are mixed in (they must be forwarded,
// once, with the exact bytes) so that "nothing forwarded" cannot pass by
// accident. Afterwards the gateway is still running and its log has no
// panic.
//
// Then the hostile cases (corpus_hostile_test.go), as raw HTTP/1.1:
// Connection, Proxy-Connection, Trailer, TE, Upgrade and X-Dws-* look-alike
// tricks on valid notifications (the backend's view of each must be that
// of a plain one, header by header), bodies that stall or trickle (cut off
// by body_timeout, answered U, never forwarded), and a signed request for
// a Host no site serves. The gateway runs with debug on, an access log
// filtered as the README says, a catch-all site for other hosts, and
// underscore and dot header names allowed for the X-Dws-* look-alikes: no
// signature sent may appear anywhere in its output.
func TestMalformedCorpus(t *testing.T) {
	e := startRelEnv(t, func(g *relGateway) {
		g.Globals = "debug\nservers {\n\t\texpected_underscore_headers x_dws_* x_dws-* x-dws_*\n\t\texpected_dot_headers x.dws.* x.dws-*\n\t}"
		g.Extra = "body_timeout " + corpusBodyTimeout.String()
		g.Site = "log {\n\t\toutput stderr\n\t\tformat filter {\n\t\t\twrap json\n\t\t\tfields {\n\t\t\t\trequest>headers>Signature delete\n\t\t\t\tresp_headers>Signature delete\n\t\t\t}\n\t\t}\n\t}"
		g.CatchAll = true
	})
	g := &corpusGen{t: t, key: e.key.Private, now: time.Now()}
	g.build()
	cases := g.cases

	// One kept-alive connection: after an early 413 the server then reads
	// and discards the rest of the body (up to 256 KiB, more than the
	// largest case) instead of closing while the client is still writing,
	// which would turn the answer into a broken pipe on the client's side.
	client := &http.Client{
		Timeout:       callTimeout,
		Transport:     &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	wantForward := map[string]notif{}
	byCode := map[string]int{}
	for i, c := range cases {
		byCode[fmt.Sprintf("HTTP %d %s", c.wantStatus, c.wantCode)]++
		if c.forward {
			if _, dup := wantForward[c.id]; dup {
				t.Fatalf("case %q: control requestId %s used twice", c.name, c.id)
			}
			wantForward[c.id] = notif{ID: c.id, Body: c.body, Sum: sha256.Sum256(c.body)}
		}
		status, result, code, err := c.do(client, e.gw.URL())
		if err != nil {
			t.Errorf("case %d %q: no answer: %v", i, c.name, err)
			continue
		}
		if status != c.wantStatus || code != c.wantCode {
			t.Errorf("case %d %q: HTTP %d %s %s, want HTTP %d %s", i, c.name, status, result, code, c.wantStatus, c.wantCode)
		}
		wantResult := "F"
		switch c.wantCode {
		case "SUCCESS":
			wantResult = "S"
		case "":
			wantResult = ""
		}
		if result != wantResult {
			t.Errorf("case %d %q: resultStatus %q, want %q", i, c.name, result, wantResult)
		}
	}

	rawControls, rawCases, sigs := runHostileCases(t, e, g, byCode)
	for id, c := range rawControls {
		wantForward[id] = notif{ID: id, Body: c.body, Sum: sha256.Sum256(c.body)}
	}

	if e.proc.Exited() {
		t.Fatalf("the gateway exited during the corpus: %v", e.proc.waitErr)
	}
	ds := e.be.Deliveries()
	checkDeliveries(t, ds, wantForward)
	ix := indexDeliveries(ds)
	for id := range wantForward {
		if ix.All[id] != 1 {
			t.Errorf("control %s reached the backend %d times, want 1", id, ix.All[id])
		}
	}
	if len(ds) != len(wantForward) {
		t.Errorf("backend received %d requests, want exactly the %d controls", len(ds), len(wantForward))
	}
	for _, d := range ds {
		api := "addPaymentMethod"
		if d.Path == removeURI {
			api = "removePaymentMethod"
		}
		checkBackendView(t, d, api)
	}
	checkHostileViews(t, ds, rawControls)
	out := e.proc.Output()
	checkNoPanic(t, "gateway", out)
	for _, c := range cases {
		sigs = append(sigs, c.header.Values("Signature")...)
	}
	checked := checkNoSignatureInLogs(t, out, sigs)

	t.Logf("figures: %d malformed-input cases and %d raw hostile ones (%d valid controls, forwarded once each, %d of them raw header and trailer tricks whose backend view matched a plain notification's header by header; %d invalid, duplicate or slow, forwarded: %d); gateway alive, no panic; %d signature values sent, none in the output (debug on, filtered access log, catch-all site); %s",
		len(cases), rawCases, len(wantForward), len(rawControls), len(cases)+rawCases-len(wantForward), len(ds)-len(wantForward), checked, formatTally(byCode))
	if len(cases) < 200 {
		t.Errorf("the corpus has only %d cases", len(cases))
	}
}

// corpusCase is one request of the corpus and what it must get.
type corpusCase struct {
	name    string
	method  string
	target  string // request target: path and query
	body    []byte
	header  http.Header
	chunked bool // send without Content-Length

	wantStatus int
	wantCode   string // resultCode; "" for HEAD, which has no body
	forward    bool   // a valid control: must reach the backend once
	id         string // the control's requestId
}

// do sends the case and returns the answer's status and envelope.
func (c *corpusCase) do(client *http.Client, base string) (status int, result, code string, err error) {
	var body io.Reader = bytes.NewReader(c.body)
	if c.chunked {
		body = io.MultiReader(bytes.NewReader(c.body)) // length unknown: chunked
	}
	req, err := http.NewRequest(c.method, base+c.target, body)
	if err != nil {
		return 0, "", "", err
	}
	if c.chunked {
		req.ContentLength = -1
	}
	req.Header = c.header
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", "", err
	}
	if c.method == http.MethodHead {
		if len(raw) != 0 {
			return resp.StatusCode, "?", "?", fmt.Errorf("HEAD answered with a body")
		}
		return resp.StatusCode, "", "", nil
	}
	result, code, err = parseEnvelope(raw)
	if err != nil {
		return resp.StatusCode, "?", "?", fmt.Errorf("HTTP %d: %v", resp.StatusCode, err)
	}
	if c.wantStatus == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != http.MethodPost {
		return resp.StatusCode, result, code, fmt.Errorf("405 without Allow: POST")
	}
	return resp.StatusCode, result, code, nil
}

// corpusGen builds the corpus. Every signed case is signed with the real
// DWS key over exactly what is sent (unless the case is about a wrong
// signature), so each case fails only where it means to.
type corpusGen struct {
	t     testing.TB
	key   *rsa.PrivateKey
	now   time.Time
	cases []*corpusCase
	ctrl  int
}

func (g *corpusGen) nowMillis() string { return strconv.FormatInt(g.now.UnixMilli(), 10) }

// sig is the Signature header DWS would send for these values.
func (g *corpusGen) sig(key *rsa.PrivateKey, uri, cid, rt string, body []byte) string {
	g.t.Helper()
	h, err := signature.SignatureHeader(key, 1, uri, cid, rt, body)
	if err != nil {
		g.t.Fatalf("signing: %v", err)
	}
	return h
}

// rawSig is the signature bytes over the signed content.
func (g *corpusGen) rawSig(uri, cid, rt string, body []byte) []byte {
	g.t.Helper()
	d := signature.Digest(uri, cid, rt, body)
	s, err := rsa.SignPKCS1v15(nil, g.key, crypto.SHA256, d[:])
	if err != nil {
		g.t.Fatal(err)
	}
	return s
}

// signedHeader returns DWS's three headers for body sent to uri now.
func (g *corpusGen) signedHeader(uri string, body []byte) http.Header {
	rt := g.nowMillis()
	h := http.Header{}
	h.Set("Client-Id", clientID)
	h.Set("Request-Time", rt)
	h.Set("Signature", g.sig(g.key, uri, clientID, rt, body))
	h.Set("Content-Type", "application/json; charset=UTF-8")
	return h
}

// add appends a case sent to target (a path on which the add API is served
// unless the case says otherwise).
func (g *corpusGen) add(c *corpusCase) {
	if c.method == "" {
		c.method = http.MethodPost
	}
	if c.target == "" {
		c.target = addURI
	}
	if c.header == nil {
		c.header = http.Header{}
	}
	g.cases = append(g.cases, c)
}

// control appends a valid notification that must be forwarded: the add
// sample with a fresh requestId, changed by edit (which gets the body and
// returns the body to send) and sent with the headers mod leaves.
func (g *corpusGen) control(name string, edit func([]byte) []byte, mod func(http.Header, []byte)) {
	g.controlID(name, g.nextID(), edit, mod)
}

// nextID is a fresh requestId for a control.
func (g *corpusGen) nextID() string {
	g.ctrl++
	return fmt.Sprintf("corpus-ok-%03d", g.ctrl)
}

// controlID is control with the given requestId.
func (g *corpusGen) controlID(name, id string, edit func([]byte) []byte, mod func(http.Header, []byte)) {
	body := addNotif(g.t, id).Body
	if edit != nil {
		body = edit(body)
	}
	h := g.signedHeader(addURI, body)
	if mod != nil {
		mod(h, body)
	}
	g.add(&corpusCase{name: "control: " + name, body: body, header: h, wantStatus: 200, wantCode: "SUCCESS", forward: true, id: id})
}

// bad appends a signed add notification with a body changed by edit, which
// must be refused with code.
func (g *corpusGen) bad(name string, code string, body []byte) {
	g.add(&corpusCase{name: name, body: body, header: g.signedHeader(addURI, body), wantStatus: 200, wantCode: code})
}

// sample is the add sample with requestId id.
func (g *corpusGen) sample(id string) []byte { return addNotif(g.t, id).Body }

// obj builds a small add body from members, in order.
func obj(members ...string) []byte { return []byte("{" + strings.Join(members, ",") + "}") }

const (
	mID   = `"requestId":"corpus-bad"`
	mRef  = `"referenceCustomerId":"300005538591"`
	mPMD  = `"paymentMethodDetail":{"paymentMethodDetailType":"CARD","card":{"cardToken":"tok-1"}}`
	bad   = "PARAM_ILLEGAL"
	noSig = "INVALID_SIGNATURE"
)

func (g *corpusGen) build() {
	g.controls()
	g.headerCases()
	g.signatureCases()
	g.requestTimeCases()
	g.jsonCases()
	g.sizeCases()
	g.encodingCases()
	g.methodAndPathCases()
	g.duplicateCases()
}

func (g *corpusGen) controls() {
	g.control("the add sample", nil, nil)
	g.control("raw (not percent-encoded) Base64 signature", nil, func(h http.Header, body []byte) {
		raw := g.rawSig(addURI, clientID, h.Get("Request-Time"), body)
		h.Set("Signature", "algorithm=RSA256,keyVersion=1,signature="+base64.StdEncoding.EncodeToString(raw))
	})
	g.control("lower-case hex in the percent escapes", nil, func(h http.Header, _ []byte) {
		v := h.Get("Signature")
		for _, esc := range []string{"%2B", "%2F", "%3D"} {
			v = strings.ReplaceAll(v, esc, strings.ToLower(esc))
		}
		h.Set("Signature", v)
	})
	g.control("spaces after the commas", nil, func(h http.Header, _ []byte) {
		h.Set("Signature", strings.ReplaceAll(h.Get("Signature"), ",", ", "))
	})
	g.control("parameters in another order", nil, func(h http.Header, _ []byte) {
		p := strings.Split(h.Get("Signature"), ",")
		h.Set("Signature", p[2]+","+p[0]+","+p[1])
	})
	g.control("algorithm in lower case", nil, func(h http.Header, _ []byte) {
		h.Set("Signature", strings.Replace(h.Get("Signature"), "RSA256", "rsa256", 1))
	})
	g.control("no keyVersion (the highest configured is used)", nil, func(h http.Header, _ []byte) {
		h.Set("Signature", strings.Replace(h.Get("Signature"), "keyVersion=1,", "", 1))
	})
	g.control("an unknown Signature parameter", nil, func(h http.Header, _ []byte) {
		h.Set("Signature", "charset=UTF-8,"+h.Get("Signature"))
	})
	g.control("lower-case header names on the wire", nil, func(h http.Header, _ []byte) {
		for _, k := range []string{"Client-Id", "Request-Time", "Signature"} {
			v := h.Get(k)
			h.Del(k)
			h[strings.ToLower(k)] = []string{v}
		}
	})
	g.control("no Content-Type", nil, func(h http.Header, _ []byte) { h.Del("Content-Type") })
	g.control("Content-Type text/plain", nil, func(h http.Header, _ []byte) { h.Set("Content-Type", "text/plain") })
	g.control("Content-Encoding identity", nil, func(h http.Header, _ []byte) { h.Set("Content-Encoding", "identity") })
	g.control("forged X-Dws-* headers (replaced)", nil, func(h http.Header, _ []byte) {
		h.Set("X-Dws-Verified", "false")
		h.Set("X-Dws-Request-Id", "forged")
		h.Set("X-Dws-Idempotency-Key", "forged")
	})

	// Every accepted Request-Time form, signed verbatim.
	now := g.now.UTC()
	for _, rt := range []struct{ name, value string }{
		{"epoch seconds", strconv.FormatInt(now.Unix(), 10)},
		{"epoch microseconds", strconv.FormatInt(now.UnixMicro(), 10)},
		{"epoch nanoseconds", strconv.FormatInt(now.UnixNano(), 10)},
		{"ISO 8601 Z", now.Format("2006-01-02T15:04:05Z")},
		{"ISO 8601 +08:00", now.In(time.FixedZone("", 8*3600)).Format("2006-01-02T15:04:05-07:00")},
		{"ISO 8601 +0000", now.Format("2006-01-02T15:04:05") + "+0000"},
		{"ISO 8601 -0530", now.In(time.FixedZone("", -(5*3600 + 1800))).Format("2006-01-02T15:04:05-0700")},
		{"ISO 8601 +00:00", now.Format("2006-01-02T15:04:05") + "+00:00"},
		{"ISO 8601 one fraction digit", now.Format("2006-01-02T15:04:05.0Z07:00")},
		{"ISO 8601 two fraction digits", now.Format("2006-01-02T15:04:05.00Z07:00")},
		{"ISO 8601 milliseconds", now.Format("2006-01-02T15:04:05.000Z07:00")},
		{"ISO 8601 seven fraction digits", now.Format("2006-01-02T15:04:05.0000000Z07:00")},
		{"ISO 8601 nine fraction digits", now.Format("2006-01-02T15:04:05.000000000Z07:00")},
		{"epoch milliseconds 47h ago", strconv.FormatInt(now.Add(-47*time.Hour).UnixMilli(), 10)},
		{"epoch milliseconds 47h ahead", strconv.FormatInt(now.Add(47*time.Hour).UnixMilli(), 10)},
	} {
		g.control("Request-Time "+rt.name, nil, func(h http.Header, body []byte) {
			h.Set("Request-Time", rt.value)
			h.Set("Signature", g.sig(g.key, addURI, clientID, rt.value, body))
		})
	}

	// A query string is part of the signed target.
	qid := g.nextID()
	qbody := g.sample(qid)
	qt := addURI + "?trace=1&x=%2F"
	g.add(&corpusCase{name: "control: query string, signed with the target", target: qt, body: qbody,
		header: g.signedHeader(qt, qbody), wantStatus: 200, wantCode: "SUCCESS", forward: true, id: qid})

	// The remove API on its path.
	rid := g.nextID()
	rbody := []byte(`{"referenceCustomerId":"216610000006358131449","requestId":"` + rid + `","operateSource":"MERCHANT","paymentMethodDetail":{"paymentMethodDetailType":"card","card":{"cardToken":"85246e15131d44feb36c80e1a1e39"}}}`)
	g.add(&corpusCase{name: "control: removePaymentMethod", target: removeURI, body: rbody,
		header: g.signedHeader(removeURI, rbody), wantStatus: 200, wantCode: "SUCCESS", forward: true, id: rid})

	// Bodies the rules accept although they look unusual.
	replace := func(old, new string) func([]byte) []byte {
		return func(b []byte) []byte {
			if !bytes.Contains(b, []byte(old)) {
				g.t.Fatalf("sample has no %q", old)
			}
			return bytes.Replace(b, []byte(old), []byte(new), 1)
		}
	}
	addMember := func(m string) func([]byte) []byte {
		return func(b []byte) []byte { return append([]byte("{"+m+","), b[1:]...) }
	}
	g.control("referenceUserId instead of referenceCustomerId", replace(`"referenceCustomerId"`, `"referenceUserId"`), nil)
	g.control("paymentMethodDetailType in lower case", replace(`"CARD"`, `"card"`), nil)
	g.control("paymentMethodDetailType in mixed case", replace(`"CARD"`, `"Card"`), nil)
	g.control("operateSource MERCHANT", addMember(`"operateSource":"MERCHANT"`), nil)
	g.control("unknown string member", addMember(`"extension":"x"`), nil)
	g.control("unknown member null (counts as absent)", addMember(`"extension":null`), nil)
	g.control("unknown array of strings", addMember(`"tags":["a","b",""]`), nil)
	g.control("unknown empty object and array", addMember(`"o":{},"a":[]`), nil)
	// The body's object is level 1, so 31 nested containers reach the
	// limit of 32.
	g.control("objects nested 32 levels deep (the limit)", addMember(`"deep":`+strings.Repeat(`{"a":`, 31)+`"x"`+strings.Repeat(`}`, 31)), nil)
	g.control("arrays nested to the limit", addMember(`"deep":`+strings.Repeat(`[`, 31)+`"x"`+strings.Repeat(`]`, 31)), nil)
	g.control("JSON escapes in strings", addMember(`"esc":"\u0041\/\n\t\"\\ \ud83d\ude00"`), nil)
	g.control("non-ASCII UTF-8 strings", addMember(`"name":"Zoë 张三 🙂"`), nil)
	g.control("minified", func(b []byte) []byte {
		var out bytes.Buffer
		inStr, esc := false, false
		for _, c := range b {
			switch {
			case esc:
				esc = false
			case c == '\\' && inStr:
				esc = true
			case c == '"':
				inStr = !inStr
			case !inStr && (c == ' ' || c == '\n' || c == '\t' || c == '\r'):
				continue
			}
			out.WriteByte(c)
		}
		return out.Bytes()
	}, nil)
	g.control("whitespace around the object", func(b []byte) []byte { return append(append([]byte(" \r\n\t"), b...), " \n\n"...) }, nil)
	g.control("cardToken of 2048 characters (the limit)", func(b []byte) []byte {
		return replaceCardToken(g.t, b, strings.Repeat("T", 2048))
	}, nil)
	g.controlID("requestId of 64 characters (the limit)", "corpus-long-"+strings.Repeat("x", 64-len("corpus-long-")), nil, nil)
	g.controlID("requestId of 64 multi-byte characters", "corpus-é-"+strings.Repeat("ü", 64-utf8.RuneCountInString("corpus-é-")), nil, nil)
	g.control("chunked transfer encoding (no Content-Length)", nil, nil)
	g.cases[len(g.cases)-1].chunked = true
}

// replaceCardToken puts token in place of the sample's cardToken.
func replaceCardToken(t testing.TB, b []byte, token string) []byte {
	t.Helper()
	const prefix = `"cardToken": "`
	i := bytes.Index(b, []byte(prefix))
	if i < 0 {
		t.Fatal("sample has no cardToken")
	}
	start := i + len(prefix)
	end := start + bytes.IndexByte(b[start:], '"')
	out := append([]byte{}, b[:start]...)
	out = append(out, token...)
	return append(out, b[end:]...)
}

func (g *corpusGen) headerCases() {
	body := g.sample("corpus-hdr")
	base := func() http.Header { return g.signedHeader(addURI, body) }
	type hc struct {
		name string
		mod  func(http.Header)
		code string
	}
	for _, c := range []hc{
		{"no Client-Id", func(h http.Header) { h.Del("Client-Id") }, "ACCESS_DENIED"},
		{"empty Client-Id", func(h http.Header) { h.Set("Client-Id", "") }, "ACCESS_DENIED"},
		{"Client-Id twice, same value", func(h http.Header) { h.Add("Client-Id", clientID) }, "ACCESS_DENIED"},
		{"Client-Id twice, other value", func(h http.Header) { h.Add("Client-Id", "2188120000000001") }, "ACCESS_DENIED"},
		{"unknown Client-Id", func(h http.Header) { h.Set("Client-Id", "2188120000000001") }, "ACCESS_DENIED"},
		{"Client-Id with a suffix", func(h http.Header) { h.Set("Client-Id", clientID+"0") }, "ACCESS_DENIED"},
		{"Client-Id comma-joined", func(h http.Header) { h.Set("Client-Id", clientID+","+clientID) }, "ACCESS_DENIED"},
		{"no Client-Id and no Signature", func(h http.Header) { h.Del("Client-Id"); h.Del("Signature") }, "ACCESS_DENIED"},
		{"no Request-Time", func(h http.Header) { h.Del("Request-Time") }, noSig},
		{"empty Request-Time", func(h http.Header) { h.Set("Request-Time", "") }, noSig},
		{"Request-Time twice", func(h http.Header) { h.Add("Request-Time", h.Get("Request-Time")) }, noSig},
		{"no Signature", func(h http.Header) { h.Del("Signature") }, noSig},
		{"empty Signature", func(h http.Header) { h.Set("Signature", "") }, noSig},
		{"Signature twice", func(h http.Header) { h.Add("Signature", h.Get("Signature")) }, noSig},
		{"Signature of whitespace", func(h http.Header) { h.Set("Signature", " \t ") }, noSig},
		{"no headers at all", func(h http.Header) {
			for k := range h {
				delete(h, k)
			}
		}, "ACCESS_DENIED"},
	} {
		h := base()
		c.mod(h)
		g.add(&corpusCase{name: c.name, body: body, header: h, wantStatus: 200, wantCode: c.code})
	}
}

func (g *corpusGen) signatureCases() {
	// A body whose signature's Base64 has a '+', so that form decoding
	// (which turns '+' into a space) can be shown to break it.
	var body []byte
	var rt string
	var raw []byte
	for i := 0; ; i++ {
		body = g.sample(fmt.Sprintf("corpus-sig-%d", i))
		rt = g.nowMillis()
		raw = g.rawSig(addURI, clientID, rt, body)
		if strings.Contains(base64.StdEncoding.EncodeToString(raw), "+") {
			break
		}
	}
	b64 := base64.StdEncoding.EncodeToString(raw)
	pct := strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(b64)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		g.t.Fatal(err)
	}
	sha1Digest := sha1.Sum(signature.AppendSignedContent(nil, addURI, clientID, rt, body))
	sha1Sig, err := rsa.SignPKCS1v15(nil, g.key, crypto.SHA1, sha1Digest[:])
	if err != nil {
		g.t.Fatal(err)
	}
	withValue := func(v string) string { return "algorithm=RSA256,keyVersion=1,signature=" + v }
	values := []struct{ name, header string }{
		{"value form-decoded ('+' became a space)", withValue(strings.ReplaceAll(b64, "+", " "))},
		{"value with '+' sent as %20", withValue(strings.ReplaceAll(pct, "%2B", "%20"))},
		{"value truncated by 10 characters", withValue(b64[:len(b64)-10])},
		{"value truncated to a shorter valid Base64", withValue(b64[:len(b64)-8])},
		{"value Base64url with padding", withValue(base64.URLEncoding.EncodeToString(raw))},
		{"value Base64url without padding", withValue(base64.RawURLEncoding.EncodeToString(raw))},
		{"value standard Base64 without padding", withValue(base64.RawStdEncoding.EncodeToString(raw))},
		{"value in hex", withValue(hex.EncodeToString(raw))},
		{"value garbage", withValue("!!!!not-a-signature!!!!")},
		{"value of padding only", withValue("====")},
		{"value with a bad percent escape", withValue("%ZZ" + pct)},
		{"value ending in a cut percent escape", withValue(pct + "%2")},
		{"value with a percent-encoded newline", withValue(pct[:40] + "%0A" + pct[40:])},
		{"value empty", withValue("")},
		{"value doubled", withValue(pct + pct)},
		{"value of 256 zero bytes", withValue(base64.StdEncoding.EncodeToString(make([]byte, 256)))},
		{"value of 10000 characters", withValue(strings.Repeat("A", 10000))},
		{"value with one bit flipped", withValue(base64.StdEncoding.EncodeToString(append([]byte{raw[0] ^ 1}, raw[1:]...)))},
		{"value made with another key", withValue(strings.Split(g.sig(other, addURI, clientID, rt, body), "signature=")[1])},
		{"value made with SHA-1", withValue(base64.StdEncoding.EncodeToString(sha1Sig))},
		{"keyVersion 2 (not configured)", "algorithm=RSA256,keyVersion=2,signature=" + pct},
		{"keyVersion 0 (not configured)", "algorithm=RSA256,keyVersion=0,signature=" + pct},
		{"keyVersion 99", "algorithm=RSA256,keyVersion=99,signature=" + pct},
		{"keyVersion -1", "algorithm=RSA256,keyVersion=-1,signature=" + pct},
		{"keyVersion abc", "algorithm=RSA256,keyVersion=abc,signature=" + pct},
		{"keyVersion 1.0", "algorithm=RSA256,keyVersion=1.0,signature=" + pct},
		{"keyVersion beyond int32", "algorithm=RSA256,keyVersion=99999999999,signature=" + pct},
		{"keyVersion empty", "algorithm=RSA256,keyVersion=,signature=" + pct},
		{"algorithm RSA", "algorithm=RSA,keyVersion=1,signature=" + pct},
		{"algorithm RSA512", "algorithm=RSA512,keyVersion=1,signature=" + pct},
		{"algorithm SHA256withRSA", "algorithm=SHA256withRSA,keyVersion=1,signature=" + pct},
		{"algorithm RSA2", "algorithm=RSA2,keyVersion=1,signature=" + pct},
		{"algorithm HS256", "algorithm=HS256,keyVersion=1,signature=" + pct},
		{"algorithm empty", "algorithm=,keyVersion=1,signature=" + pct},
		{"no algorithm parameter", "keyVersion=1,signature=" + pct},
		{"no signature parameter", "algorithm=RSA256,keyVersion=1"},
		{"signature parameter twice", "algorithm=RSA256,keyVersion=1,signature=" + pct + ",signature=" + pct},
		{"algorithm parameter twice", "algorithm=RSA256,algorithm=RSA256,keyVersion=1,signature=" + pct},
		{"a parameter without '='", "algorithm,RSA256,keyVersion=1,signature=" + pct},
		{"an empty parameter", "algorithm=RSA256,,keyVersion=1,signature=" + pct},
		{"semicolons instead of commas", "algorithm=RSA256;keyVersion=1;signature=" + pct},
		{"the bare value", pct},
	}
	for _, v := range values {
		h := http.Header{}
		h.Set("Client-Id", clientID)
		h.Set("Request-Time", rt)
		h.Set("Signature", v.header)
		g.add(&corpusCase{name: "Signature: " + v.name, body: body, header: h, wantStatus: 200, wantCode: noSig})
	}

	// Valid signatures over something other than what is sent.
	wrong := []struct {
		name              string
		uri, cid, rt      string
		signed            []byte
		sentBody          []byte
		sentTarget, sentT string
	}{
		{name: "signed for the remove path", uri: removeURI, cid: clientID, rt: rt, signed: body, sentBody: body},
		{name: "signed for another Client-Id", uri: addURI, cid: "2188120000000001", rt: rt, signed: body, sentBody: body},
		{name: "signed with another Request-Time", uri: addURI, cid: clientID, rt: strconv.FormatInt(g.now.UnixMilli()-1000, 10), signed: body, sentBody: body},
		{name: "body changed after signing", uri: addURI, cid: clientID, rt: rt, signed: body, sentBody: bytes.Replace(body, []byte("Tung"), []byte("Tunh"), 1)},
		{name: "newline appended after signing", uri: addURI, cid: clientID, rt: rt, signed: body, sentBody: append(append([]byte{}, body...), '\n')},
		{name: "signed without the query sent", uri: addURI, cid: clientID, rt: rt, signed: body, sentBody: body, sentTarget: addURI + "?a=1"},
		{name: "signed with a query not sent", uri: addURI + "?a=1", cid: clientID, rt: rt, signed: body, sentBody: body},
		{name: "signed over the path with a trailing slash", uri: addURI + "/", cid: clientID, rt: rt, signed: body, sentBody: body},
	}
	for _, w := range wrong {
		h := http.Header{}
		h.Set("Client-Id", clientID)
		h.Set("Request-Time", rt)
		h.Set("Signature", g.sig(g.key, w.uri, w.cid, w.rt, w.signed))
		g.add(&corpusCase{name: "Signature: " + w.name, target: w.sentTarget, body: w.sentBody, header: h, wantStatus: 200, wantCode: noSig})
	}
}

func (g *corpusGen) requestTimeCases() {
	body := g.sample("corpus-time")
	now := g.now.UTC()
	iso := func(t time.Time) string { return t.Format("2006-01-02T15:04:05Z07:00") }
	badForms := []string{
		"abc", "0", "1", "now", "null", "-1",
		strconv.FormatInt(now.UnixMilli(), 10)[:12],                // 12 digits
		strconv.FormatInt(now.UnixMilli(), 10) + "0",               // 14 digits
		strconv.FormatInt(now.Unix(), 10)[:9],                      // 9 digits
		strconv.FormatInt(now.UnixMicro(), 10) + "0",               // 17 digits
		strconv.FormatInt(now.UnixNano(), 10) + "0",                // 20 digits
		"9300000000000000000",                                      // 19 digits, past int64 nanoseconds
		"-" + strconv.FormatInt(now.UnixMilli(), 10),               // signed
		"+" + strconv.FormatInt(now.UnixMilli(), 10),               // signed
		strconv.FormatInt(now.UnixMilli(), 10) + ".5",              // fraction
		strconv.FormatFloat(float64(now.UnixMilli()), 'e', -1, 64), // exponent
		"0x" + strconv.FormatInt(now.UnixMilli(), 16),              // hex
		strings.Replace(iso(now), "T", " ", 1),                     // space separator
		strings.Replace(iso(now), "T", "t", 1),                     // lower-case t
		strings.Replace(iso(now), "Z", "z", 1),                     // lower-case z
		strings.TrimSuffix(iso(now), "Z"),                          // no zone
		now.Format("2006-01-02T15:04Z"),                            // no seconds
		now.Format("2006-01-02"),                                   // date only
		now.Format("20060102T150405Z"),                             // basic format
		now.Format(time.RFC1123),                                   // HTTP date
		now.Format(time.RFC850),
		now.Format(time.ANSIC),
		now.Format("2006-01-02T15:04:05.Z"),                // empty fraction
		now.Format("2006-01-02T15:04:05") + ".1234567890Z", // ten fraction digits
		now.Format("2006-01-02T15:04:05") + ",123Z",        // comma fraction
		now.Format("2006-01-02T15:04:05") + "+8:00",        // one-digit hour
		now.Format("2006-01-02T15:04:05") + "+08",          // hour only
		now.Format("2006-01-02T15:04:05") + "+24:00",       // offset out of range
		now.Format("2006-01-02T15:04:05") + "+08:60",       // minutes out of range
		now.Format("2006-01-02T15:04:05") + "UTC",          // zone name
		now.Format("2006-01-02T15:04:05") + " Z",           // space before the zone
		"2026-02-30T12:00:00Z",                             // February 30
		"2026-13-01T00:00:00Z",                             // month 13
		"2026-00-10T00:00:00Z",                             // month 0
		"2026-05-00T00:00:00Z",                             // day 0
		"2026-05-28T24:00:00Z",                             // hour 24
		"2026-05-28T12:60:00Z",                             // minute 60
		"2026-05-28T12:12:60Z",                             // leap second
		"26-05-28T12:12:12Z",                               // two-digit year
		"+2026-05-28T12:12:12Z",                            // signed year
		"２０２６",                                             // full-width digits
	}
	for _, rt := range badForms {
		h := http.Header{}
		h.Set("Client-Id", clientID)
		h.Set("Request-Time", rt)
		h.Set("Signature", g.sig(g.key, addURI, clientID, rt, body))
		g.add(&corpusCase{name: fmt.Sprintf("Request-Time %q", rt), body: body, header: h, wantStatus: 200, wantCode: noSig})
	}
	stale := []struct{ name, value string }{
		{"49h ago (epoch ms)", strconv.FormatInt(now.Add(-49*time.Hour).UnixMilli(), 10)},
		{"49h ahead (epoch ms)", strconv.FormatInt(now.Add(49*time.Hour).UnixMilli(), 10)},
		{"30 days ago (ISO)", iso(now.Add(-30 * 24 * time.Hour))},
		{"a year ahead (ISO with offset)", now.Add(365 * 24 * time.Hour).In(time.FixedZone("", 8*3600)).Format("2006-01-02T15:04:05-07:00")},
		{"the epoch", "0000000000000"},
		{"the largest 13-digit value", "9999999999999"},
		{"49h ago (epoch seconds)", strconv.FormatInt(now.Add(-49*time.Hour).Unix(), 10)},
		{"year 2019 (the docs' example)", "2019-05-28T12:12:12+08:00"},
	}
	for _, s := range stale {
		h := http.Header{}
		h.Set("Client-Id", clientID)
		h.Set("Request-Time", s.value)
		h.Set("Signature", g.sig(g.key, addURI, clientID, s.value, body))
		g.add(&corpusCase{name: "Request-Time " + s.name, body: body, header: h, wantStatus: 200, wantCode: noSig})
	}
}

func (g *corpusGen) jsonCases() {
	s := g.sample("corpus-json")
	rep := func(old, new string) []byte {
		if !bytes.Contains(s, []byte(old)) {
			g.t.Fatalf("sample has no %q", old)
		}
		return bytes.Replace(s, []byte(old), []byte(new), 1)
	}
	pre := func(m string) []byte { return append([]byte("{"+m+","), s[1:]...) }
	deep := func(n int, open, close, leaf string) string {
		return strings.Repeat(open, n) + leaf + strings.Repeat(close, n)
	}
	shapes := []struct {
		name string
		body []byte
	}{
		{"requestId a number", rep(`"corpus-json"`, `12345`)},
		{"requestId a boolean", rep(`"corpus-json"`, `true`)},
		{"requestId null", rep(`"corpus-json"`, `null`)},
		{"requestId an array", rep(`"corpus-json"`, `["corpus-json"]`)},
		{"requestId an object", rep(`"corpus-json"`, `{"id":"corpus-json"}`)},
		{"requestId empty", rep(`"corpus-json"`, `""`)},
		{"requestId of 65 characters", rep(`"corpus-json"`, `"`+strings.Repeat("r", 65)+`"`)},
		{"requestId missing", obj(mRef, mPMD)},
		{"referenceCustomerId a number", rep(`"300005538591"`, `300005538591`)},
		{"referenceCustomerId empty", rep(`"300005538591"`, `""`)},
		{"referenceCustomerId of 65 characters", rep(`"300005538591"`, `"`+strings.Repeat("1", 65)+`"`)},
		{"both reference ids", pre(`"referenceUserId":"u1"`)},
		{"no reference id", obj(mID, mPMD)},
		{"expiryYear a number", rep(`"expiryYear": "**"`, `"expiryYear": 2030`)},
		{"expiryMonth a float", rep(`"expiryMonth": "**"`, `"expiryMonth": 1.5`)},
		{"a negative number", rep(`"expiryMonth": "**"`, `"expiryMonth": -1`)},
		{"an exponent number", rep(`"expiryMonth": "**"`, `"expiryMonth": 1e3`)},
		{"a boolean deep inside", rep(`"lastName": "Tung"`, `"lastName": false`)},
		{"a null required field (cardToken)", rep(`"cardToken": "ALIPAY`, `"cardToken": null, "x": "ALIPAY`)},
		{"a number in an unknown array", pre(`"tags":["a",1]`)},
		{"a null in an unknown array", pre(`"tags":["a",null]`)},
		{"a boolean in a nested unknown array", pre(`"tags":[["a"],[true]]`)},
		{"an unknown number member", pre(`"amount":100`)},
		{"an unknown boolean member", pre(`"flag":true`)},
		{"paymentMethodDetail a string", obj(mID, mRef, `"paymentMethodDetail":"CARD"`)},
		{"paymentMethodDetail an array", obj(mID, mRef, `"paymentMethodDetail":[{"paymentMethodDetailType":"CARD"}]`)},
		{"paymentMethodDetail missing", obj(mID, mRef)},
		{"paymentMethodDetailType missing", obj(mID, mRef, `"paymentMethodDetail":{"card":{"cardToken":"t"}}`)},
		{"paymentMethodDetailType BANK", rep(`"CARD"`, `"BANK"`)},
		{"paymentMethodDetailType empty", rep(`"CARD"`, `""`)},
		{"card missing", obj(mID, mRef, `"paymentMethodDetail":{"paymentMethodDetailType":"CARD"}`)},
		{"card a string", obj(mID, mRef, `"paymentMethodDetail":{"paymentMethodDetailType":"CARD","card":"x"}`)},
		{"cardToken missing", obj(mID, mRef, `"paymentMethodDetail":{"paymentMethodDetailType":"CARD","card":{"brand":"VISA"}}`)},
		{"cardToken of 2049 characters", replaceCardToken(g.t, s, strings.Repeat("T", 2049))},
		{"operateSource USER", pre(`"operateSource":"USER"`)},
		{"operateSource in lower case", pre(`"operateSource":"merchant"`)},
		{"operateSource of 17 characters", pre(`"operateSource":"MERCHANTMERCHANT1"`)},
		{"duplicate requestId", pre(`"requestId":"corpus-json"`)},
		{"duplicate requestId, other value", pre(`"requestId":"corpus-other"`)},
		{"duplicate key in card", rep(`"brand": "MASTERCARD",`, `"brand": "MASTERCARD", "brand": "VISA",`)},
		{"duplicate unknown key", pre(`"x":"1","x":"1"`)},
		{"duplicate key spelled with an escape", pre(`"requestI\u0064":"corpus-json"`)},
		{"requestId and RequestId (equal ignoring case)", pre(`"RequestId":"corpus-other"`)},
		{"REQUESTID after requestId", append(bytes.TrimSuffix(bytes.TrimRight(s, " \n"), []byte("}")), []byte(`,"REQUESTID":"corpus-other"}`)...)},
		{"keys equal under case folding (Kelvin sign)", rep(`"cardToken":`, `"cardTo\u212aen":"x","cardToken":`)},
		{"requestId with an inner space", rep(`"corpus-json"`, `"corpus json"`)},
		{"requestId with NBSP", rep(`"corpus-json"`, "\"corpus\u00a0json\"")},
		{"requestId with NEL (U+0085)", rep(`"corpus-json"`, "\"corpus-json\u0085\"")},
		{"requestId with U+2028", rep(`"corpus-json"`, `"corpus-json\u2028"`)},
		{"requestId with U+2029", rep(`"corpus-json"`, "\"\u2029corpus-json\"")},
		{"requestId with a zero-width space", rep(`"corpus-json"`, "\"corpus\u200bjson\"")},
		{"requestId with a BOM inside", rep(`"corpus-json"`, `"corpus-json\ufeff"`)},
		{"requestId with an ideographic space", rep(`"corpus-json"`, "\"corpus\u3000json\"")},
		{"objects nested 33 levels deep", pre(`"deep":` + deep(32, `{"a":`, `}`, `"x"`))},
		{"arrays nested 33 levels deep", pre(`"deep":` + deep(32, `[`, `]`, `"x"`))},
		{"nested 1000 levels deep", pre(`"deep":` + deep(1000, `[`, `]`, ``))},
		{"invalid UTF-8 in a value", rep(`"Tung"`, "\"Tu\xffng\"")},
		{"invalid UTF-8 in a key", pre("\"k\xc3\":\"v\"")},
		{"overlong UTF-8 encoding", rep(`"Tung"`, "\"T\xc0\xafng\"")},
		{"UTF-8 encoded surrogate", rep(`"Tung"`, "\"T\xed\xa0\x80ng\"")},
		{"unpaired surrogate escape", rep(`"Tung"`, `"T\ud800ng"`)},
		{"a control character in a string", rep(`"Tung"`, "\"Tu\tng\"")},
		{"an invalid escape", rep(`"Tung"`, `"Tu\xng"`)},
		{"a byte order mark", append([]byte("\xEF\xBB\xBF"), s...)},
		{"data after the object", append(append([]byte{}, s...), " x"...)},
		{"a second object after the first", append(append([]byte{}, s...), s...)},
		{"a trailing comma", rep(`"referenceCustomerId": "300005538591"`, `"referenceCustomerId": "300005538591",`)},
		{"single quotes", []byte(strings.ReplaceAll(string(obj(mID, mRef, mPMD)), `"`, `'`))},
		{"a comment", append([]byte("/* c */"), s...)},
		{"NaN", pre(`"n":NaN`)},
		{"unquoted key", pre(`k:"v"`)},
		{"a missing colon", pre(`"k" "v"`)},
		{"cut short", s[:len(s)/2]},
		{"an unclosed string", []byte(`{"requestId":"corpus-json`)},
		{"an array body", []byte(`[` + string(s) + `]`)},
		{"a string body", []byte(`"corpus-json"`)},
		{"a number body", []byte(`42`)},
		{"a null body", []byte(`null`)},
		{"a boolean body", []byte(`true`)},
		{"an empty object", []byte(`{}`)},
		{"an empty body", []byte{}},
		{"whitespace only", []byte(" \n\t ")},
		{"a NUL byte", append([]byte{0}, s...)},
		{"a form-encoded body", []byte(`requestId=corpus-json&referenceCustomerId=1`)},
		{"XML", []byte(`<requestId>corpus-json</requestId>`)},
		{"UTF-16 encoded", utf16le(string(s))},
	}
	for _, sh := range shapes {
		g.bad("JSON: "+sh.name, bad, sh.body)
	}
	// A huge string well inside max_body_size is fine for an unknown field
	// (a control above covers the body at exactly the limit), but not for a
	// field with a length bound.
	g.bad("JSON: requestId of 60000 characters", bad, rep(`"corpus-json"`, `"`+strings.Repeat("r", 60000)+`"`))
	g.bad("JSON: referenceCustomerId of 60000 characters", bad, rep(`"300005538591"`, `"`+strings.Repeat("1", 60000)+`"`))
}

// utf16le encodes s as UTF-16 little endian (ASCII only is enough here).
func utf16le(s string) []byte {
	out := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		out = append(out, s[i], 0)
	}
	return out
}

// padTo grows the sample to exactly size bytes with an unknown member.
func (g *corpusGen) padTo(id string, size int) []byte {
	s := g.sample(id)
	overhead := len(`"pad":"",`)
	n := size - len(s) - overhead
	if n < 0 {
		g.t.Fatalf("cannot pad the sample to %d bytes", size)
	}
	b := append([]byte(`{"pad":"`+strings.Repeat("p", n)+`",`), s[1:]...)
	if len(b) != size {
		g.t.Fatalf("padded body is %d bytes, want %d", len(b), size)
	}
	return b
}

func (g *corpusGen) sizeCases() {
	const limit = 64 << 10 // the default max_body_size
	id := g.nextID()
	exact := g.padTo(id, limit)
	g.add(&corpusCase{name: "control: body of exactly max_body_size", body: exact, header: g.signedHeader(addURI, exact),
		wantStatus: 200, wantCode: "SUCCESS", forward: true, id: id})
	id = g.nextID()
	exactChunked := g.padTo(id, limit)
	g.add(&corpusCase{name: "control: chunked body of exactly max_body_size", body: exactChunked, chunked: true,
		header: g.signedHeader(addURI, exactChunked), wantStatus: 200, wantCode: "SUCCESS", forward: true, id: id})

	for _, size := range []int{limit + 1, limit + 2, limit + 1000, 2 * limit, 200_000} {
		body := g.padTo("corpus-big", size)
		g.add(&corpusCase{name: fmt.Sprintf("body of %d bytes", size), body: body, header: g.signedHeader(addURI, body),
			wantStatus: http.StatusRequestEntityTooLarge, wantCode: bad})
		g.add(&corpusCase{name: fmt.Sprintf("chunked body of %d bytes", size), body: body, chunked: true,
			header: g.signedHeader(addURI, body), wantStatus: http.StatusRequestEntityTooLarge, wantCode: bad})
	}
	big := g.padTo("corpus-big", limit+1)
	h := g.signedHeader(addURI, big)
	h.Set("Signature", "algorithm=RSA256,keyVersion=1,signature=AAAA")
	g.add(&corpusCase{name: "oversized body with a bad signature (size is checked first)", body: big, header: h,
		wantStatus: http.StatusRequestEntityTooLarge, wantCode: bad})
	h = g.signedHeader(addURI, big)
	h.Del("Client-Id")
	g.add(&corpusCase{name: "oversized body without Client-Id (Client-Id is checked first)", body: big, header: h,
		wantStatus: 200, wantCode: "ACCESS_DENIED"})
}

func (g *corpusGen) encodingCases() {
	body := g.sample("corpus-enc")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(body)
	_ = zw.Close()
	for _, ce := range []struct {
		name, value string
		body        []byte
	}{
		{"gzip (body gzipped and signed)", "gzip", gz.Bytes()},
		{"gzip (body plain)", "gzip", body},
		{"deflate", "deflate", body},
		{"br", "br", body},
		{"gzip, identity", "gzip, identity", body},
		{"x-unknown", "x-unknown", body},
	} {
		h := g.signedHeader(addURI, ce.body)
		h.Set("Content-Encoding", ce.value)
		g.add(&corpusCase{name: "Content-Encoding " + ce.name, body: ce.body, header: h, wantStatus: 200, wantCode: bad})
	}
	// Every line counts (issue 13): a second line after an accepted one.
	for _, lines := range []struct {
		name, header string
		values       []string
	}{
		{"Content-Encoding identity, then gzip on a second line", "Content-Encoding", []string{"identity", "gzip"}},
		{"Content-Encoding empty, then br on a second line", "Content-Encoding", []string{"", "br"}},
		{"Encrypt empty, then x on a second line", "Encrypt", []string{"", "x"}},
	} {
		h := g.signedHeader(addURI, body)
		for _, v := range lines.values {
			h.Add(lines.header, v)
		}
		g.add(&corpusCase{name: lines.name, body: body, header: h, wantStatus: 200, wantCode: bad})
	}
	for _, v := range []string{"true", "1", "RSA_AES"} {
		h := g.signedHeader(addURI, body)
		h.Set("Encrypt", v)
		g.add(&corpusCase{name: "Encrypt: " + v, body: body, header: h, wantStatus: 200, wantCode: bad})
	}
	h := http.Header{}
	h.Set("Encrypt", "true")
	g.add(&corpusCase{name: "Encrypt without any other header (checked before Client-Id)", body: body, header: h, wantStatus: 200, wantCode: bad})
}

func (g *corpusGen) methodAndPathCases() {
	body := g.sample("corpus-method")
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodHead, http.MethodDelete, http.MethodOptions, http.MethodPatch, "post", "FOO"} {
		for _, target := range []string{addURI, removeURI} {
			code := bad
			if m == http.MethodHead {
				code = ""
			}
			var b []byte
			if m != http.MethodGet && m != http.MethodHead {
				b = body
			}
			g.add(&corpusCase{name: "method " + m + " " + target, method: m, target: target, body: b,
				header: g.signedHeader(target, b), wantStatus: http.StatusMethodNotAllowed, wantCode: code})
		}
	}
	for _, p := range []string{
		"/", "/dws", "/dws/notify", "/dws/notify/", addURI + "/", "/DWS/notify/addPaymentMethod",
		"/dws/notify/addpaymentmethod", addURI + "/extra", "/dws/notify/unknownApi", addURI + ".json",
		"/favicon.ico", addURI + "%20", "/dws/notify/removePaymentMethods", "/dws/v2/notify/addPaymentMethod",
	} {
		g.add(&corpusCase{name: "POST to unknown path " + p, target: p, body: body, header: g.signedHeader(p, body),
			wantStatus: http.StatusNotFound, wantCode: bad})
	}
	g.add(&corpusCase{name: "GET an unknown path (the path is checked first)", method: http.MethodGet, target: "/robots.txt",
		wantStatus: http.StatusNotFound, wantCode: bad})
}

// duplicateCases resend a control: identical, with the same content in
// another layout, and with other content.
func (g *corpusGen) duplicateCases() {
	first := g.cases[0]
	if !first.forward {
		g.t.Fatal("the first case must be a control")
	}
	g.add(&corpusCase{name: "resend of a forwarded control (replayed)", body: first.body,
		header: g.signedHeader(addURI, first.body), wantStatus: 200, wantCode: "SUCCESS"})
	relaid := bytes.ReplaceAll(first.body, []byte("\n  "), []byte("\n    "))
	if bytes.Equal(relaid, first.body) {
		g.t.Fatal("could not change the layout of the sample")
	}
	g.add(&corpusCase{name: "resend with the same content in another layout (replayed)", body: relaid,
		header: g.signedHeader(addURI, relaid), wantStatus: 200, wantCode: "SUCCESS"})
	changed := bytes.Replace(first.body, []byte("Tung"), []byte("Tong"), 1)
	g.add(&corpusCase{name: "same requestId, other content", body: changed,
		header: g.signedHeader(addURI, changed), wantStatus: 200, wantCode: "REPEAT_REQ_INCONSISTENT"})
}

// parseEnvelope reads resultStatus and resultCode from an answer that must
// be exactly one result envelope.
func parseEnvelope(raw []byte) (result, code string, err error) {
	var env struct {
		Result *struct {
			ResultStatus string `json:"resultStatus"`
			ResultCode   string `json:"resultCode"`
			ResultMsg    string `json:"resultMsg"`
		} `json:"result"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || env.Result == nil {
		return "", "", fmt.Errorf("answer is not a result envelope (%v): %.200q", err, raw)
	}
	if dec.More() {
		return "", "", fmt.Errorf("data after the envelope: %.200q", raw)
	}
	if env.Result.ResultStatus == "F" && env.Result.ResultMsg == "" {
		return "", "", fmt.Errorf("F envelope without a message: %.200q", raw)
	}
	return env.Result.ResultStatus, env.Result.ResultCode, nil
}
