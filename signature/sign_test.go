package signature

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	ackURI    = "/dws/notify/addPaymentMethod"
	ackClient = "2188120000000000"
	ackTime   = "2025-05-19T09:52:32+08:00"
)

var ackBody = []byte(`{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success"}}`)

func TestSignatureHeader(t *testing.T) {
	k := testKey()
	h, err := SignatureHeader(k, 7, ackURI, ackClient, ackTime, ackBody)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "algorithm=RSA256,keyVersion=7,signature=") || strings.ContainsAny(h[len("algorithm=RSA256,keyVersion=7,signature="):], "+/= ") {
		t.Fatalf("header %q not in the documented form", h)
	}
	r := NewKeyRing()
	if err := r.Add(ackClient, 7, &k.PublicKey); err != nil {
		t.Fatal(err)
	}
	if v, err := r.Verify(ackClient, ackURI, ackTime, ackBody, h); err != nil || v != 7 {
		t.Fatalf("Verify = %d, %v", v, err)
	}
	again, err := SignatureHeader(k, 7, ackURI, ackClient, ackTime, ackBody)
	if err != nil || again != h {
		t.Fatal("PKCS#1 v1.5 signing is not deterministic; Signer's cache would be wrong")
	}
	for name, call := range map[string]func() (string, error){
		"nil key":          func() (string, error) { return SignatureHeader(nil, 1, ackURI, ackClient, ackTime, ackBody) },
		"negative version": func() (string, error) { return SignatureHeader(k, -1, ackURI, ackClient, ackTime, ackBody) },
		"signer nil key":   func() (string, error) { return NewSigner(nil, 1).Sign(ackURI, ackClient, ackTime, ackBody) },
		"signer bad version": func() (string, error) {
			return NewSigner(k, 1<<31).Sign(ackURI, ackClient, ackTime, ackBody)
		},
	} {
		if h, err := call(); err == nil || h != "" {
			t.Errorf("%s: %q, %v; want an error", name, h, err)
		}
	}
}

// countingSigner returns a Signer whose signings are counted.
func countingSigner(t *testing.T, maxEntries int) (*Signer, *atomic.Int64) {
	s := newSigner(testKey(), 1, maxEntries)
	var n atomic.Int64
	real := s.sign
	s.sign = func(d [32]byte) (string, error) {
		n.Add(1)
		return real(d)
	}
	return s, &n
}

func mustSign(t *testing.T, s *Signer, uri, client, tm string, body []byte) string {
	t.Helper()
	h, err := s.Sign(uri, client, tm, body)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSignerCaches(t *testing.T) {
	s, n := countingSigner(t, DefaultSignerCacheEntries)
	h := mustSign(t, s, ackURI, ackClient, ackTime, ackBody)
	want, _ := SignatureHeader(testKey(), 1, ackURI, ackClient, ackTime, ackBody)
	if h != want {
		t.Fatal("Signer header differs from SignatureHeader")
	}
	for i := 0; i < 5; i++ {
		if mustSign(t, s, ackURI, ackClient, ackTime, ackBody) != h {
			t.Fatal("cached header differs")
		}
	}
	if n.Load() != 1 {
		t.Fatalf("%d signings for one content", n.Load())
	}
	// Each part of the content makes a new entry.
	other := mustSign(t, s, ackURI+"?x", ackClient, ackTime, ackBody)
	mustSign(t, s, ackURI, "other", ackTime, ackBody)
	mustSign(t, s, ackURI, ackClient, ackTime, []byte(`{}`))
	if n.Load() != 4 || other == h {
		t.Fatalf("%d signings, want 4", n.Load())
	}
	if got := s.entries(); got != 4 {
		t.Fatalf("%d entries, want 4", got)
	}
	if s.Signings() != 4 {
		t.Fatalf("Signings() = %d, want the 4 made", s.Signings())
	}
}

func TestSignerGenerations(t *testing.T) {
	s, n := countingSigner(t, DefaultSignerCacheEntries)
	t1, t2, t3 := "2025-05-19T09:52:32+08:00", "2025-05-19T09:52:33+08:00", "2025-05-19T09:52:34+08:00"
	mustSign(t, s, ackURI, ackClient, t1, ackBody)
	mustSign(t, s, ackURI, ackClient, t2, ackBody)
	mustSign(t, s, ackURI, ackClient, t1, ackBody) // previous second still kept
	if n.Load() != 2 {
		t.Fatalf("%d signings, want 2", n.Load())
	}
	mustSign(t, s, ackURI, ackClient, t3, ackBody) // evicts t1
	mustSign(t, s, ackURI, ackClient, t2, ackBody) // kept
	if n.Load() != 3 {
		t.Fatalf("%d signings, want 3", n.Load())
	}
	mustSign(t, s, ackURI, ackClient, t1, ackBody) // evicted: signed again
	if n.Load() != 4 {
		t.Fatalf("%d signings, want 4", n.Load())
	}
	if s.entries() != 2 {
		t.Fatalf("%d entries, want 2", s.entries())
	}
}

func TestSignerCap(t *testing.T) {
	s, n := countingSigner(t, 3)
	t1, t2 := "1685599933000", "1685599934000"
	body := func(i int) []byte { return []byte(fmt.Sprint(i)) }
	mustSign(t, s, ackURI, ackClient, t1, body(1))
	mustSign(t, s, ackURI, ackClient, t1, body(2))
	mustSign(t, s, ackURI, ackClient, t2, body(1))
	mustSign(t, s, ackURI, ackClient, t2, body(2)) // full: drops t1's generation
	if s.entries() != 2 || n.Load() != 4 {
		t.Fatalf("%d entries, %d signings; want 2, 4", s.entries(), n.Load())
	}
	mustSign(t, s, ackURI, ackClient, t1, body(1)) // t1 dropped: signed again
	if n.Load() != 5 {
		t.Fatalf("%d signings, want 5", n.Load())
	}
	s2, n2 := countingSigner(t, 2)
	for i := 0; i < 2; i++ {
		mustSign(t, s2, ackURI, ackClient, t1, body(i))
	}
	h := mustSign(t, s2, ackURI, ackClient, t1, body(9)) // one generation, full
	if mustSign(t, s2, ackURI, ackClient, t1, body(9)) != h || n2.Load() != 4 || s2.entries() != 2 {
		t.Fatalf("past the cap: %d signings, %d entries; want 4 uncached signings, 2 entries", n2.Load(), s2.entries())
	}
	if s.Signings() != 5 || s2.Signings() != 4 {
		t.Fatalf("Signings() = %d and %d, want 5 and 4 (cached and uncached signings both count)", s.Signings(), s2.Signings())
	}
}

func TestSignerSingleSigningUnderConcurrency(t *testing.T) {
	s, n := countingSigner(t, DefaultSignerCacheEntries)
	release := make(chan struct{})
	inner := s.sign
	s.sign = func(d [32]byte) (string, error) {
		<-release
		return inner(d)
	}
	const callers = 64
	var started, done sync.WaitGroup
	results := make([]string, callers)
	for i := range callers {
		started.Add(1)
		done.Go(func() {
			started.Done()
			results[i] = mustSign(t, s, ackURI, ackClient, ackTime, ackBody)
		})
	}
	started.Wait()
	// Not a timing assertion: the count below must be 1 in any
	// interleaving; holding the signing a moment lets most callers queue
	// behind it, which exercises the waiting path.
	time.Sleep(20 * time.Millisecond)
	close(release)
	done.Wait()
	if n.Load() != 1 {
		t.Fatalf("%d signings for %d concurrent callers of one content", n.Load(), callers)
	}
	for _, r := range results {
		if r != results[0] || r == "" {
			t.Fatal("callers got different headers")
		}
	}
}

func TestSignerDoesNotCacheFailures(t *testing.T) {
	s, _ := countingSigner(t, DefaultSignerCacheEntries)
	var calls atomic.Int64
	inner := s.sign
	s.sign = func(d [32]byte) (string, error) {
		if calls.Add(1) == 1 {
			return "", errors.New("transient")
		}
		return inner(d)
	}
	if _, err := s.Sign(ackURI, ackClient, ackTime, ackBody); err == nil {
		t.Fatal("first Sign did not fail")
	}
	if s.entries() != 0 {
		t.Fatal("failure cached")
	}
	if _, err := s.Sign(ackURI, ackClient, ackTime, ackBody); err != nil || calls.Load() != 2 {
		t.Fatalf("retry: %v after %d calls", err, calls.Load())
	}
}

func TestSignerPanicReleasesWaiters(t *testing.T) {
	s, _ := countingSigner(t, DefaultSignerCacheEntries)
	inner := s.sign
	var calls atomic.Int64
	entered, release := make(chan struct{}), make(chan struct{})
	s.sign = func(d [32]byte) (string, error) {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
			panic("boom")
		}
		return inner(d)
	}
	go func() {
		defer func() { recover() }()
		s.Sign(ackURI, ackClient, ackTime, ackBody)
	}()
	<-entered
	waiter := make(chan error, 1)
	go func() {
		// Finds the in-flight entry (or, if it comes late, signs itself).
		_, err := s.Sign(ackURI, ackClient, ackTime, ackBody)
		waiter <- err
	}()
	time.Sleep(10 * time.Millisecond)
	close(release)
	select {
	case err := <-waiter:
		if err != nil && !errors.Is(err, errSignAborted) {
			t.Fatalf("waiter got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiter still blocked after the signing panicked")
	}
	if _, err := s.Sign(ackURI, ackClient, ackTime, ackBody); err != nil {
		t.Fatalf("after the panic: %v", err)
	}
}
