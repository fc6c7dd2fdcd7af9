package e2e

import (
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backendBody is what the backend answers; the gateway must not pass it on.
const backendBody = `{"backend":"this body must not reach DWS"}`

// backendMode is how the stand-in answers.
type backendMode struct {
	Status int           // HTTP status to answer; 0 means 200
	Delay  time.Duration // wait before answering
	// FailEvery > 0 answers 502 to every FailEvery-th request the
	// stand-in receives (counted over its whole life), whatever Status
	// says: a failure rate that does not depend on when requests arrive.
	FailEvery int
	Hang      bool // never answer (until the caller gives up or Release)
	Hold      bool // answer only after Release (or give up with the caller)
}

// delivery is one request as the stand-in received it.
type delivery struct {
	Method      string
	RequestURI  string
	Body        []byte // the bytes that arrived
	RequestID   string // X-Dws-Request-Id
	Key         string // X-Dws-Idempotency-Key
	RequestTime string // Request-Time, as DWS signed it
	Sum         [32]byte
	Verified    string // X-Dws-Verified
	Status      int    // what the stand-in answered (0: it never answered)
	At          time.Time
	// The request as the stand-in's server read it, for the checks of
	// what a sender's header tricks leave of it.
	Path             string
	Header           http.Header
	ContentLength    int64
	TransferEncoding []string
	Trailer          http.Header
	BodyLen          int
}

// backend is the legacy backend stand-in: a real HTTP server on a fixed
// loopback address that records every request, and can be taken down
// (connections refused) and brought back, and answer with a chosen status,
// slowly, or not at all. Its answers carry a body and a header that must
// never reach DWS.
type backend struct {
	t    testing.TB
	Addr string

	mu         sync.Mutex
	srv        *http.Server
	mode       backendMode
	release    chan struct{} // closed by Release: hanging requests return
	deliveries []delivery
	inHandler  atomic.Int64
}

// newBackend starts the stand-in, up and answering 200.
func newBackend(t testing.TB) *backend {
	t.Helper()
	b := &backend{t: t, Addr: freeAddrs(t, 1)[0], release: make(chan struct{})}
	b.Up()
	t.Cleanup(b.Down)
	return b
}

// Up starts serving on the stand-in's address (again).
func (b *backend) Up() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		return
	}
	var ln net.Listener
	var err error
	// The address was ours a moment ago; after Down it may take a moment
	// for the kernel to let it go.
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", b.Addr)
		if err == nil || i == 100 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatalf("backend: listening on %s again: %v", b.Addr, err)
	}
	b.srv = &http.Server{Handler: http.HandlerFunc(b.serve), ReadHeaderTimeout: time.Minute}
	go func(srv *http.Server) { _ = srv.Serve(ln) }(b.srv)
}

// Down closes the listener and every connection: the gateway's next
// forward is refused.
func (b *backend) Down() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// HostPort is the stand-in's address for reverse_proxy.
func (b *backend) HostPort() string { return b.Addr }

// SetStatus sets the HTTP status of later answers (the rest of the mode
// stays).
func (b *backend) SetStatus(code int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mode.Status = code
}

// SetMode changes how later requests are answered.
func (b *backend) SetMode(m backendMode) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mode = m
}

// Release lets every hanging request return (with no answer written) and
// every held one be answered; later Hang and Hold requests wait for the next
// Release.
func (b *backend) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.release)
	b.release = make(chan struct{})
}

// InHandler is the number of requests the stand-in is holding right now.
func (b *backend) InHandler() int64 { return b.inHandler.Load() }

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	b.inHandler.Add(1)
	defer b.inHandler.Add(-1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	b.mu.Lock()
	mode, release := b.mode, b.release
	i := len(b.deliveries)
	b.deliveries = append(b.deliveries, delivery{
		Method:      r.Method,
		RequestURI:  r.RequestURI,
		Body:        body,
		RequestID:   r.Header.Get("X-Dws-Request-Id"),
		Key:         r.Header.Get("X-Dws-Idempotency-Key"),
		RequestTime: r.Header.Get("Request-Time"),
		Sum:         sha256.Sum256(body),
		Verified:    r.Header.Get("X-Dws-Verified"),
		At:          time.Now(),

		Path:             r.URL.Path,
		Header:           r.Header.Clone(),
		ContentLength:    r.ContentLength,
		TransferEncoding: r.TransferEncoding,
		Trailer:          r.Trailer.Clone(),
		BodyLen:          len(body),
	})
	b.mu.Unlock()

	if mode.Delay > 0 {
		select {
		case <-time.After(mode.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if mode.Hang || mode.Hold {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		if mode.Hang {
			return
		}
	}
	status := mode.Status
	if status == 0 {
		status = http.StatusOK
	}
	if mode.FailEvery > 0 && (i+1)%mode.FailEvery == 0 {
		status = http.StatusBadGateway
	}
	b.mu.Lock()
	b.deliveries[i].Status = status
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Backend-Secret", "must-not-reach-dws")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, backendBody)
}

// Deliveries returns a copy of every request received so far.
func (b *backend) Deliveries() []delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]delivery(nil), b.deliveries...)
}

// Count is the number of requests received so far.
func (b *backend) Count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.deliveries)
}
