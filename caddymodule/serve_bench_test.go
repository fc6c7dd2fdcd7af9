package caddymodule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/guard"
	"github.com/dwsnotify/dws_notify/signature"
)

// The ServeHTTP benchmarks measure the handler's cost per notification, so
// that what it adds beyond the two irreducible parts (the RSA verify and
// the store's claim + complete) can be computed, two ways:
//
//	overhead = BenchmarkServeHTTP/signed-nullstore - BenchmarkServeHTTPParts/verify
//	overhead = BenchmarkServeHTTP/signed - BenchmarkServeHTTPParts/verify - BenchmarkServeHTTPParts/store
//
// The first swaps the store for one that does nothing (every claim wins,
// every completion succeeds at once), so only the handler and the verify
// remain; the second subtracts a separately measured claim + complete,
// which also charges the handler with whatever the store costs more inside
// the full request (its writer goroutine and the GC compete with the
// handler for the two CPUs).
//
// All run on one goroutine over the same pre-signed notifications (distinct
// requestIds, the seed add sample), with a next handler that answers 200
// at once, the handler's log line written to a file, and a Badger store on
// disk without fsync (SyncNone): the fsync of group commit is store cost
// and is measured in the idempotency package; here it would only add
// waiting. A CPU profile of BenchmarkServeHTTP attributes the same split
// (see BENCHMARKS.md, "gateway (load harness)").

// benchPoolSize is how many distinct notifications are signed (about 1 ms
// each, on every CPU, once per test binary). The store is replaced by a
// fresh one, with the timer stopped, each time the pool has been used up.
const benchPoolSize = 8192

type benchNotice struct {
	body []byte
	sig  string
}

type benchPool struct {
	time    string
	notices []benchNotice
}

var benchPoolOnce = sync.OnceValues(func() (*benchPool, error) {
	k, err := keysOnce()
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join("..", "notification", "testdata", "add.json"))
	if err != nil {
		return nil, err
	}
	p := &benchPool{time: fmt.Sprint(time.Now().UnixMilli()), notices: make([]benchNotice, benchPoolSize)}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, runtime.NumCPU())
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= benchPoolSize {
					return
				}
				// 29 characters, as the sample's own requestId.
				id := fmt.Sprintf("bench%024d", i)
				body := bytes.Replace(raw, []byte(`"20990501203220303032821078591"`), []byte(`"`+id+`"`), 1)
				sig, err := signature.SignatureHeader(k.dws, 1, addPath, testClientID, p.time, body)
				if err != nil {
					errs <- err
					return
				}
				p.notices[i] = benchNotice{body: body, sig: sig}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return p, <-errs
})

func benchNotices(b *testing.B) *benchPool {
	b.Helper()
	p, err := benchPoolOnce()
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// benchStore opens a fresh on-disk store without fsync.
func benchStore(b *testing.B) *sharedStore {
	b.Helper()
	dir := b.TempDir()
	st, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: dir, Sync: idempotency.SyncNone, GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	g := guard.New(st, guard.Options{Name: dir, Open: func(context.Context) (idempotency.Store, error) { return nil, errors.New("not reopened") }})
	b.Cleanup(func() { _ = g.Close() })
	return &sharedStore{Store: g, name: dir}
}

// benchHandler provisions a handler with the test keys, signing its
// answers when signed is set, logging to a file, and swaps in a store
// without fsync (the pooled store Provision opened stays idle).
func benchHandler(b *testing.B, signed bool) *Handler {
	b.Helper()
	k := keys(b)
	h := &Handler{
		Handler: config.Handler{
			ClientID:     []string{testClientID},
			DWSPublicKey: []config.Key{{Key: bareBase64(b, &k.dws.PublicKey)}},
			API:          []config.API{{Name: "addPaymentMethod", Path: addPath}, {Name: "removePaymentMethod", Path: removePath}},
			Storage:      b.TempDir(),
		},
	}
	if signed {
		pem, err := os.ReadFile(filepath.Join(k.dir, "merchant_private.pem"))
		if err != nil {
			b.Fatal(err)
		}
		h.MerchantPrivateKey = &config.Key{Key: string(pem)}
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	if err := h.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(b.TempDir(), "handler.log"))
	if err != nil {
		b.Fatal(err)
	}
	h.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logFile, zap.InfoLevel))
	pooled := h.store
	h.store = benchStore(b)
	b.Cleanup(func() {
		_ = h.store.Close()
		h.store = pooled
		_ = h.Cleanup()
		cancel()
		logFile.Close()
	})
	return h
}

// benchRequests builds one request per pool notice, as Caddy hands them to
// handlers: with a Replacer and the original request in the context.
func benchRequests(p *benchPool) []*http.Request {
	u := &url.URL{Path: addPath}
	reqs := make([]*http.Request, len(p.notices))
	for i, n := range p.notices {
		r := &http.Request{
			Method: http.MethodPost, URL: u, RequestURI: addPath, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Host: "localhost", ContentLength: int64(len(n.body)), Body: io.NopCloser(bytes.NewReader(n.body)),
			Header: http.Header{
				"Content-Type":   {"application/json; charset=UTF-8"},
				"Content-Length": {fmt.Sprint(len(n.body))},
				"Client-Id":      {testClientID},
				"Request-Time":   {p.time},
				"Signature":      {n.sig},
			},
		}
		ctx := context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer())
		ctx = context.WithValue(ctx, caddyhttp.OriginalRequestCtxKey, *r)
		reqs[i] = r.WithContext(ctx)
	}
	return reqs
}

// benchWriter is the response writer: a reused header map, nothing sent;
// it notes whether the answer was the S envelope.
type benchWriter struct {
	h       http.Header
	status  int
	success bool
}

var successEnvelope = []byte(`{"result":{"resultStatus":"S","resultCode":"SUCCESS"`)

func (w *benchWriter) Header() http.Header  { return w.h }
func (w *benchWriter) WriteHeader(code int) { w.status = code }
func (w *benchWriter) Write(p []byte) (int, error) {
	w.success = bytes.HasPrefix(p, successEnvelope)
	return len(p), nil
}

var benchNext = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	_, _ = io.Copy(io.Discard, r.Body)
	w.WriteHeader(http.StatusOK)
	return nil
})

// nullStore is a store that keeps nothing: every claim wins and every
// completion succeeds at once. It isolates the handler's own work.
type nullStore struct{ idempotency.Store }

func (nullStore) Claim(context.Context, idempotency.Key, idempotency.Fingerprint, time.Duration, time.Duration) (idempotency.ClaimResult, error) {
	return idempotency.ClaimResult{Status: idempotency.Claimed, Token: 1}, nil
}

func (nullStore) Complete(context.Context, idempotency.Key, uint64, idempotency.Answer, time.Duration) error {
	return nil
}

func (nullStore) Close() error { return nil }

// BenchmarkServeHTTP runs the whole handler for first-seen notifications:
// read, verify, rules, claim, forward to a next handler that answers 200,
// complete, answer (signed or not), log line, metrics. The nullstore
// variant does the same with nullStore.
func BenchmarkServeHTTP(b *testing.B) {
	for _, c := range []struct {
		name         string
		signed, null bool
	}{{"signed", true, false}, {"unsigned", false, false}, {"signed-nullstore", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			signed := c.signed
			p := benchNotices(b)
			h := benchHandler(b, signed)
			fresh := func() {
				_ = h.store.Close()
				if c.null {
					g := guard.New(nullStore{}, guard.Options{Name: "null", Open: func(context.Context) (idempotency.Store, error) { return nullStore{}, nil }})
					b.Cleanup(func() { _ = g.Close() })
					h.store = &sharedStore{Store: g, name: "null"}
				} else {
					h.store = benchStore(b)
				}
			}
			fresh()
			w := &benchWriter{h: http.Header{}}
			reqs := benchRequests(p)
			i := 0
			b.ReportAllocs()
			// cpu is the process's CPU time while the timer runs (the
			// store swaps excluded): cpu-µs/op, steadier than sec/op on a
			// shared machine.
			var cpu time.Duration
			cpu0, cpuOK := processCPU()
			for b.Loop() {
				if i == len(reqs) {
					b.StopTimer()
					if c, ok := processCPU(); ok {
						cpu += c - cpu0
					}
					fresh()
					reqs = benchRequests(p)
					i = 0
					b.StartTimer()
					cpu0, _ = processCPU()
				}
				clear(w.h)
				w.success = false
				_ = h.ServeHTTP(w, reqs[i], benchNext)
				if hasSig := w.h.Get("Signature") != ""; w.status != http.StatusOK || !w.success || hasSig != signed {
					b.Fatalf("notification %d: HTTP %d, S envelope %v, Signature %q", i, w.status, w.success, w.h.Get("Signature"))
				}
				i++
			}
			if c, ok := processCPU(); ok && cpuOK {
				cpu += c - cpu0
				b.ReportMetric(float64(cpu)/1e3/float64(b.N), "cpu-µs/op")
			}
		})
	}
}

// BenchmarkServeHTTPParts measures the two parts the handler cannot avoid,
// on the same notifications and the same kind of store: verify is
// KeyRing.Verify as ServeHTTP calls it; store is Claim + Complete on
// unique keys of the same shape.
func BenchmarkServeHTTPParts(b *testing.B) {
	b.Run("verify", func(b *testing.B) {
		p := benchNotices(b)
		h := benchHandler(b, false)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			n := p.notices[i%len(p.notices)]
			if _, err := h.ring.Verify(testClientID, addPath, p.time, n.body, n.sig); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("store", func(b *testing.B) {
		st := benchStore(b)
		b.Cleanup(func() { _ = st.Close() })
		ctx := context.Background()
		answer := idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: http.StatusOK}
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			key := idempotency.Key{ClientID: testClientID, API: "addPaymentMethod", RequestID: fmt.Sprintf("bench%024d", i)}
			c, err := st.Claim(ctx, key, idempotency.Fingerprint{1}, time.Minute, config.DefaultRetention)
			if err != nil || c.Status != idempotency.Claimed {
				b.Fatalf("claim: %v %v", c.Status, err)
			}
			if err := st.Complete(ctx, key, c.Token, answer, config.DefaultRetention); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
