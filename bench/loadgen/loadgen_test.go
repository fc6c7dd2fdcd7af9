package main

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/signature"
)

func testInputs(t *testing.T) *inputs {
	t.Helper()
	in, err := loadInputs(filepath.Join("..", "..", "examples", "demo-keys"), filepath.Join("..", "..", "examples", "addPaymentMethod.json"), 0)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// The pool's notifications are exactly what DWS would send: the header the
// pool encodes equals signature.SignatureHeader's, the body is the sample
// with only the requestId replaced.
func TestPoolMatchesSignaturePackage(t *testing.T) {
	in := testInputs(t)
	p := &pool{in: in, requestTime: "1795300000000"}
	if err := p.signUpTo(3); err != nil {
		t.Fatal(err)
	}
	if err := p.check(); err != nil {
		t.Fatal(err)
	}
	body := p.appendBody(nil, 2)
	if len(body) != len(in.template) || len(body) != p.bodyLen() {
		t.Fatalf("body length %d, template %d, bodyLen %d", len(body), len(in.template), p.bodyLen())
	}
	if !strings.Contains(string(body), `"requestId": "17953000000000000000000000002"`) {
		t.Fatalf("requestId not replaced as expected:\n%s", body)
	}
	want, err := signature.SignatureHeader(in.dwsKey, 1, addURI, benchClientID, p.requestTime, body)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.appendSignatureHeader(nil, 2)); got != want {
		t.Fatalf("Signature header\n got %s\nwant %s", got, want)
	}
}

// The cache keeps a fresh pool, can be extended, and refuses a stale one.
func TestPoolCache(t *testing.T) {
	in := testInputs(t)
	path := filepath.Join(t.TempDir(), "pool.bin")
	p, err := loadOrSignPool(in, path, 2)
	if err != nil {
		t.Fatal(err)
	}
	q, err := loadOrSignPool(in, path, 3) // extends: same Request-Time
	if err != nil {
		t.Fatal(err)
	}
	if q.n != 3 || q.requestTime != p.requestTime || string(q.sigs[:2*sigBytes]) != string(p.sigs) {
		t.Fatalf("extended pool: n %d, Request-Time %s (was %s)", q.n, q.requestTime, p.requestTime)
	}
	r, err := readPool(in, path)
	if err != nil || r.n != 3 || string(r.sigs) != string(q.sigs) {
		t.Fatalf("re-read: %v", err)
	}
	q.requestTime = strconv.FormatInt(time.Now().Add(-maxPoolAge-time.Hour).UnixMilli(), 10)
	if err := writePool(q, path); err != nil {
		t.Fatal(err)
	}
	if _, err := readPool(in, path); err == nil || !strings.Contains(err.Error(), "ago") {
		t.Fatalf("stale pool: %v", err)
	}
}

func TestReadAnswer(t *testing.T) {
	const envelope = `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success"}}`
	resp := "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\nSignature: x\r\nContent-Length: " +
		strconv.Itoa(len(envelope)) + "\r\n\r\n" + envelope +
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 17\r\n\r\n" + `{"accepted":true}`
	cc := &clientConn{br: bufio.NewReader(strings.NewReader(resp)), body: make([]byte, 8)}
	status, signed, keep, body, err := cc.readAnswer()
	if err != nil || status != 200 || !signed || !keep {
		t.Fatalf("first answer: %d %v %v %v", status, signed, keep, err)
	}
	if err := expectFor(modeSigned).check(status, signed, body); err != nil {
		t.Fatal(err)
	}
	if err := expectFor(modeUnsigned).check(status, signed, body); err == nil {
		t.Fatal("a signed answer passed as mode c")
	}
	status, signed, keep, body, err = cc.readAnswer()
	if err != nil || status != 200 || signed || keep {
		t.Fatalf("second answer: %d %v %v %v", status, signed, keep, err)
	}
	if err := expectFor(modePlain).check(status, signed, body); err != nil {
		t.Fatal(err)
	}
	err = expectFor(modeSigned).check(200, true, []byte(`{"result":{"resultStatus":"F","resultCode":"INVALID_SIGNATURE","resultMsg":"x"}}`))
	if wa, ok := err.(errWrongAnswer); !ok || wa.what != "INVALID_SIGNATURE" {
		t.Fatalf("F answer: %v", err)
	}
}

func TestPercentileAndMedian(t *testing.T) {
	lats := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := percentile(lats, 0.5); p != 5 {
		t.Errorf("p50 = %d", p)
	}
	if p := percentile(lats, 0.99); p != 10 {
		t.Errorf("p99 = %d", p)
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
}

// TestSummaryGoals: the summary prints b/a and b-a with every goal and its
// verdict, from the medians and round by round.
func TestSummaryGoals(t *testing.T) {
	var runs []*runResult
	add := func(round int, m mode, tput, cpu float64) { runs = append(runs, run(round, m, tput, cpu)) }
	// Rounds: b/a 0.70, 0.60, 0.66 (median of medians 6600/10000 = 0.66);
	// b-a 60, 90, 63 µs (medians 175 - 110 = 65).
	add(1, modePlain, 10000, 110)
	add(1, modeSigned, 7000, 170)
	add(1, modeUnsigned, 7000, 170)
	add(2, modePlain, 11000, 100)
	add(2, modeSigned, 6600, 190)
	add(2, modeUnsigned, 6500, 190)
	add(3, modePlain, 9000, 112)
	add(3, modeSigned, 5940, 175)
	add(3, modeUnsigned, 6000, 175)
	add(3, modePlain, 1, 1e6) // a profiled run does not count
	runs[len(runs)-1].Profiled = true

	out := summarize(runs, []mode{modePlain, modeSigned, modeUnsigned})
	for _, want := range []string{
		"ratio b/a = 0.66  (median b 6600 req/s / median a 10000 req/s; per round 0.70 0.60 0.66; median of per-round ratios 0.66)  target >= 0.80 (SPEC §7): NOT MET; target >= 0.65 (issue 17 step): met\n",
		"ratio b/c = 1.02",
		"target >= 0.95 (SPEC §7): met\n",
		"gateway CPU per notification beyond plain proxying b-a = 65.0 µs  (median b 175.0 µs - median a 110.0 µs; per round 60.0 90.0 63.0; median of per-round differences 63.0)  target <= 45 µs (SPEC §7): NOT MET; target <= 70 µs (issue 17 step): met\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// With -customers the body carries customer i % customers in the
// template's referenceCustomerId, zero-padded to its length, and the pool
// is signed over that body; the fingerprint differs from the one-customer
// pool's, so neither cache is taken for the other.
func TestPoolSpreadsCustomers(t *testing.T) {
	in, err := loadInputs(filepath.Join("..", "..", "examples", "demo-keys"), filepath.Join("..", "..", "examples", "addPaymentMethod.json"), 7)
	if err != nil {
		t.Fatal(err)
	}
	if in.fingerprint == testInputs(t).fingerprint {
		t.Fatal("the fingerprint does not depend on -customers")
	}
	p := &pool{in: in, requestTime: "1795300000000"}
	if err := p.signUpTo(10); err != nil {
		t.Fatal(err)
	}
	if err := p.check(); err != nil {
		t.Fatal(err)
	}
	body := p.appendBody(nil, 9)
	if len(body) != p.bodyLen() || !strings.Contains(string(body), `"referenceCustomerId": "000000000002"`) {
		t.Fatalf("customer not replaced as expected:\n%s", body)
	}
	want, err := signature.SignatureHeader(in.dwsKey, 1, addURI, benchClientID, p.requestTime, body)
	if err != nil || string(p.appendSignatureHeader(nil, 9)) != want {
		t.Fatalf("the signature is not over the body with its customer (%v)", err)
	}
}

// TestSummaryQueued: with modes c and q the summary sets queued beside
// synchronous: the throughput ratio q/c, the S latencies side by side and
// the drain after each window; the a/b/c goal lines need a, b and c.
func TestSummaryQueued(t *testing.T) {
	runs := []*runResult{
		{Round: 1, Mode: modeUnsigned, Throughput: 2000, P50us: 10000, P99us: 50000},
		{Round: 1, Mode: modeQueued, Throughput: 3000, P50us: 8000, P99us: 40000, DrainS: 4},
		{Round: 2, Mode: modeQueued, Throughput: 2800, P50us: 9000, P99us: 42000, DrainS: 6},
		{Round: 2, Mode: modeUnsigned, Throughput: 2200, P50us: 11000, P99us: 52000},
	}
	out := summarize(runs, []mode{modeUnsigned, modeQueued})
	for _, want := range []string{
		"ratio q/c = 1.38",
		"S latency, queued (q) beside synchronous (c): p50 8.50 ms vs 10.50 ms, p99 41.00 ms vs 51.00 ms; q delivered the rest within 5.0 s (median) after each window\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "b/a") {
		t.Errorf("a b/a line without modes a and b:\n%s", out)
	}
}

// TestSummaryBeforeAfterAndPaced: with o (the base build) and p (a paced at
// b's rate) the summary splits b-a into b-p and p-a and prints o -> b.
func TestSummaryBeforeAfterAndPaced(t *testing.T) {
	var runs []*runResult
	add := func(round int, m mode, tput, cpu float64) { runs = append(runs, run(round, m, tput, cpu)) }
	add(1, modePlain, 10000, 110)
	add(1, modeSigned, 5000, 250)
	add(1, modePaced, 5000, 130)
	add(1, modeUnsigned, 5000, 250)
	add(1, modeBase, 4000, 280)
	add(2, modePlain, 9000, 120)
	add(2, modeSigned, 4000, 260)
	add(2, modePaced, 4000, 140)
	add(2, modeUnsigned, 4000, 260)
	add(2, modeBase, 4000, 300)

	out := summarize(runs, []mode{modePlain, modeSigned, modePaced, modeUnsigned, modeBase})
	for _, want := range []string{
		"b-a split at b's rate: b-p = 120.0 µs  (b beyond plain proxying at the same rate, 4500 req/s; per round 120.0 120.0; median of per-round differences 120.0) + p-a = 20.0 µs  (the same proxying at b's rate instead of a's; per round 20.0 20.0)\n",
		"before/after (o = b on the base build): gateway CPU per notification o 290.0 µs -> b 255.0 µs, -35.0 µs (per round -30.0 -40.0; median of per-round differences -35.0); req/s o 4000 -> b 4500, b/o 1.12 (per round 1.25 1.00); b-a before 175.0 µs, after 140.0 µs\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// TestRoundOrder: the order rotates per round and p always runs right
// after b, whose rate it is paced at; p without b is refused.
func TestRoundOrder(t *testing.T) {
	modes, err := parseModes("a,o,b,p,c")
	if err != nil {
		t.Fatal(err)
	}
	for round, want := range map[int]string{
		1: "aobpc", 2: "obpca", 3: "bpcao", 4: "caobp", 5: "aobpc",
	} {
		var got string
		for _, m := range roundOrder(modes, round) {
			got += string(m)
		}
		if got != want {
			t.Errorf("round %d: order %s, want %s", round, got, want)
		}
	}
	if _, err := parseModes("a,p"); err == nil {
		t.Error("p without b was accepted")
	}
}

// TestPacedDrive: a paced drive sends at about the rate asked for, not
// back to back (a local listener answers every request at once).
func TestPacedDrive(t *testing.T) {
	p, err := loadOrSignPool(testInputs(t), filepath.Join(t.TempDir(), "pool.bin"), 50)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write(backendBody)
	}))
	defer srv.Close()
	res := drive(driveSpec{
		p: p, addr: strings.TrimPrefix(srv.URL, "http://"), want: expectFor(modePaced), conc: 8,
		first: 1, wrap: true, rate: 200, duration: time.Second,
	})
	if res.errors() > 0 {
		t.Fatalf("errors: %s", res.errorText())
	}
	// Back to back, a local server answers thousands per second; paced at
	// 200/s the count is about 200 (a loaded machine may fall behind the
	// pace, never ahead of it).
	if res.count < 100 || res.count > 210 {
		t.Errorf("paced at 200/s for 1 s: %d answers", res.count)
	}
}

// TestSummaryBeforeAfterAlone: -modes o,b (no a or c) still prints the
// before/after line, without the b-a figures it has no a for.
func TestSummaryBeforeAfterAlone(t *testing.T) {
	runs := []*runResult{run(1, modeBase, 2500, 320), run(1, modeSigned, 2700, 288)}
	out := summarize(runs, []mode{modeBase, modeSigned})
	want := "before/after (o = b on the base build): gateway CPU per notification o 320.0 µs -> b 288.0 µs, -32.0 µs (per round -32.0; median of per-round differences -32.0); req/s o 2500 -> b 2700, b/o 1.08 (per round 1.08)\n"
	if !strings.Contains(out, want) {
		t.Errorf("summary lacks %q:\n%s", want, out)
	}
}

// TestSummarySplitWithoutC: -modes a,b,p (no c) still prints the split.
func TestSummarySplitWithoutC(t *testing.T) {
	runs := []*runResult{run(1, modePlain, 8000, 110), run(1, modeSigned, 4000, 260), run(1, modePaced, 4000, 170)}
	out := summarize(runs, []mode{modePlain, modeSigned, modePaced})
	if want := "b-a split at b's rate: b-p = 90.0 µs"; !strings.Contains(out, want) {
		t.Errorf("summary lacks %q:\n%s", want, out)
	}
}

// run is a run of mode m in round with the given throughput and gateway
// CPU per request, for the summary tests.
func run(round int, m mode, tput, cpu float64) *runResult {
	return &runResult{Round: round, Mode: m, Throughput: tput, GatewayCPUus: cpu}
}
