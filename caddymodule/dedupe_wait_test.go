package caddymodule

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/notification"
)

// A duplicate that arrives while the first copy is in flight waits for it
// (awaitFirstCopy): these tests pin when it may replay the first copy's
// answer and how long it waits.

// waitProbeStore wraps the real store of a handler: it counts the claims
// answered InFlight (duplicates about to wait), can fail ConfirmDone, and
// can hold the reads of one key until the test lets them through.
type waitProbeStore struct {
	idempotency.Store
	inFlight    atomic.Int32
	failConfirm atomic.Bool
	hold        atomic.Pointer[readHold]
}

// readHold holds every Get of key: reached is closed at the first one,
// and they go on once release is closed.
type readHold struct {
	key          idempotency.Key
	reached      chan struct{}
	reachedOnce  sync.Once
	release      chan struct{}
	releasedOnce sync.Once
}

func (h *readHold) let() { h.releasedOnce.Do(func() { close(h.release) }) }

func (p *waitProbeStore) Claim(ctx context.Context, key idempotency.Key, fp idempotency.Fingerprint, lease, retention time.Duration) (idempotency.ClaimResult, error) {
	res, err := p.Store.Claim(ctx, key, fp, lease, retention)
	if err == nil && res.Status == idempotency.InFlight {
		p.inFlight.Add(1)
	}
	return res, err
}

func (p *waitProbeStore) Get(ctx context.Context, key idempotency.Key) (idempotency.Record, bool, error) {
	if h := p.hold.Load(); h != nil && h.key == key {
		h.reachedOnce.Do(func() { close(h.reached) })
		select {
		case <-h.release:
		case <-ctx.Done():
			return idempotency.Record{}, false, ctx.Err()
		}
	}
	return p.Store.Get(ctx, key)
}

// ConfirmDone fails when asked to with ErrUnconfirmed, as a Redis store
// whose replicas did not acknowledge the record does; otherwise it is the
// real store's.
func (p *waitProbeStore) ConfirmDone(ctx context.Context, key idempotency.Key) error {
	if p.failConfirm.Load() {
		return fmt.Errorf("injected: %w", idempotency.ErrUnconfirmed)
	}
	if c, ok := p.Store.(idempotency.DoneConfirmer); ok {
		return c.ConfirmDone(ctx, key)
	}
	return nil
}

// probedHandler is a provisioned handler on a waitProbeStore.
func probedHandler(t *testing.T, forward time.Duration) (*Handler, *waitProbeStore, *observer.ObservedLogs) {
	t.Helper()
	h := baseHandler(t)
	if forward > 0 {
		h.ForwardTimeout = config.Duration(forward)
	}
	p := &waitProbeStore{}
	installStore(t, h.Storage, func(st idempotency.Store) idempotency.Store {
		p.Store = st
		return p
	})
	logs := provisioned(t, newContext(t), h)
	return h, p, logs
}

// fingerprintOf is the fingerprint the handler records for an
// addPaymentMethod body.
func fingerprintOf(t *testing.T, body []byte) idempotency.Fingerprint {
	t.Helper()
	api, ok := notification.Lookup("addPaymentMethod")
	if !ok {
		t.Fatal("no addPaymentMethod")
	}
	res, err := api.Validate(body, notification.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return idempotency.Fingerprint(res.Fingerprint)
}

func resultStatus(w *httptest.ResponseRecorder) string {
	for _, s := range []string{"S", "U", "F"} {
		if strings.Contains(w.Body.String(), `"resultStatus":"`+s+`"`) {
			return s
		}
	}
	return "?"
}

// A waiting duplicate replays S only once the store confirms the first
// copy's record as durable as its completion had to make it: when that
// confirmation fails (a Redis replica that did not acknowledge, an fsync
// that failed), it answers U, and DWS's resend is replayed once the
// record is confirmed.
func TestWaitingDuplicateNeedsTheRecordConfirmed(t *testing.T) {
	h, p, _ := probedHandler(t, 0)
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	slow := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if calls.Add(1) == 1 {
			close(entered)
		}
		<-release
		w.WriteHeader(http.StatusOK)
		return nil
	})
	n := unitNotice(t, addPath, addSample(t, "confirm-1"))
	first, dup := make(chan *httptest.ResponseRecorder, 1), make(chan *httptest.ResponseRecorder, 1)
	go func() { w, _ := serve(t, h, n, slow); first <- w }()
	<-entered
	n.time = ""
	go func() { w, _ := serve(t, h, n, slow); dup <- w }()
	waitUntil(t, "the duplicate finds the first copy in flight", func() bool { return p.inFlight.Load() == 1 })
	p.failConfirm.Store(true)
	close(release)
	if w := <-first; resultStatus(w) != "S" {
		t.Fatalf("first copy: %s, want S", w.Body)
	}
	if w := <-dup; resultStatus(w) != "U" {
		t.Fatalf("duplicate whose first copy's record is not confirmed: %s, want U", w.Body)
	}
	p.failConfirm.Store(false)
	n.time = ""
	if w, _ := serve(t, h, n, slow); resultStatus(w) != "S" {
		t.Fatalf("resend once the record is confirmed: %s, want S", w.Body)
	}
	if c := calls.Load(); c != 1 {
		t.Fatalf("the backend got %d copies, want 1", c)
	}
}

// A duplicate waits for the claim it found; if that claim is released and
// another body with the same requestId is completed before the duplicate
// reads the key again, the record it reads is not its own notification's:
// it must not replay that answer. It answers U, and DWS's resend is then
// refused as inconsistent, as any copy that differs from the record.
func TestWaitingDuplicateDoesNotReplayAnotherBody(t *testing.T) {
	h, p, _ := probedHandler(t, 0)
	ctx := t.Context()
	body := addSample(t, "other-body")
	other := bytes.Replace(body, []byte(`"300005538591"`), []byte(`"300005538592"`), 1)
	if bytes.Equal(other, body) {
		t.Fatal("the sample changed: no other body")
	}
	key := keyOf("addPaymentMethod", "other-body")
	// The first copy's claim, as another gateway on the store holds it
	// (this process does not track it: the duplicate polls).
	c, err := h.store.Claim(ctx, key, fingerprintOf(t, body), time.Minute, time.Hour)
	if err != nil || c.Status != idempotency.Claimed {
		t.Fatalf("Claim = %v, %v", c.Status, err)
	}
	hold := &readHold{key: key, reached: make(chan struct{}), release: make(chan struct{})}
	p.hold.Store(hold)
	t.Cleanup(hold.let)
	var calls atomic.Int32
	counting := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		calls.Add(1)
		w.WriteHeader(http.StatusOK)
		return nil
	})
	n := unitNotice(t, addPath, body)
	dup := make(chan *httptest.ResponseRecorder, 1)
	go func() { w, _ := serve(t, h, n, counting); dup <- w }()
	<-hold.reached // the duplicate waits and reads the key again
	// Meanwhile the first copy's claim is released and the other body is
	// claimed and completed.
	if err := h.store.Release(ctx, key, c.Token); err != nil {
		t.Fatal(err)
	}
	c2, err := h.store.Claim(ctx, key, fingerprintOf(t, other), time.Minute, time.Hour)
	if err != nil || c2.Status != idempotency.Claimed {
		t.Fatalf("Claim of the other body = %v, %v", c2.Status, err)
	}
	ans := idempotency.Answer{ResultCode: string(notification.Success), Outcome: idempotency.OutcomeAccepted, BackendStatus: http.StatusOK}
	if err := h.store.Complete(ctx, key, c2.Token, ans, time.Hour); err != nil {
		t.Fatal(err)
	}
	p.hold.Store(nil)
	hold.let()
	if w := <-dup; resultStatus(w) != "U" {
		t.Fatalf("duplicate that found another body's record: %s, want U", w.Body)
	}
	n.time = ""
	if w, _ := serve(t, h, n, counting); resultStatus(w) != "F" || !strings.Contains(w.Body.String(), string(notification.RepeatReqInconsistent)) {
		t.Fatalf("resend: %s, want F %s", w.Body, notification.RepeatReqInconsistent)
	}
	if got := calls.Load(); got != 0 {
		t.Fatalf("the backend got %d copies, want none", got)
	}
}

// A duplicate waits no longer than the first copy's lease: a claim whose
// lease ends well before forward_timeout (taken by a gateway with a
// shorter forward_timeout, or one that stopped) is answered U once the
// lease has expired, not after the duplicate's own forward_timeout.
func TestWaitingDuplicateStopsAtTheLeaseExpiry(t *testing.T) {
	const forward = 20 * time.Second
	h, _, _ := probedHandler(t, forward)
	body := addSample(t, "short-lease")
	key := keyOf("addPaymentMethod", "short-lease")
	c, err := h.store.Claim(t.Context(), key, fingerprintOf(t, body), time.Second, time.Hour)
	if err != nil || c.Status != idempotency.Claimed {
		t.Fatalf("Claim = %v, %v", c.Status, err)
	}
	var calls atomic.Int32
	counting := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		calls.Add(1)
		w.WriteHeader(http.StatusOK)
		return nil
	})
	start := time.Now()
	w, _ := serve(t, h, unitNotice(t, addPath, body), counting)
	took := time.Since(start)
	if resultStatus(w) != "U" {
		t.Fatalf("duplicate of an expired claim: %s, want U", w.Body)
	}
	// Generous bounds: the lease is 1s, forward_timeout 20s.
	if took >= forward/2 {
		t.Fatalf("the duplicate answered after %s; the first copy's lease ended after 1s", took)
	}
	if time.Now().Before(c.Record.LeaseExpiry) {
		t.Fatalf("the duplicate answered before the first copy's lease ended")
	}
	if got := calls.Load(); got != 0 {
		t.Fatalf("the backend got %d copies while the claim was held", got)
	}
}

// serveCanceled is serve with a request whose context the returned cancel
// ends, as a client that disconnects does.
func serveCanceled(t *testing.T, h *Handler, n *notice, next func(cancel context.CancelFunc) caddyhttp.Handler) *httptest.ResponseRecorder {
	t.Helper()
	req := n.request(t)
	r := httptest.NewRequest(req.Method, n.uri(), bytes.NewReader(n.body))
	r.Header = req.Header
	ctx, cancel := context.WithCancel(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	defer cancel()
	r = r.WithContext(ctx)
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, next(cancel)); err != nil {
		t.Fatalf("ServeHTTP returned %v; the handler writes its own answers", err)
	}
	return w
}

// A client (DWS) that disconnects while the backend works does not
// cancel what the gateway records: the backend's answer is recorded (a
// resend is replayed, not forwarded again), and a failure still releases
// the claim (a resend goes through at once).
func TestClientDisconnectDoesNotCancelTheRecord(t *testing.T) {
	h, _, logs := probedHandler(t, 0)
	var calls atomic.Int32
	answering := func(status int) func(context.CancelFunc) caddyhttp.Handler {
		return func(cancel context.CancelFunc) caddyhttp.Handler {
			return caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				calls.Add(1)
				cancel() // the client is gone; the backend still answers
				w.WriteHeader(status)
				return nil
			})
		}
	}
	t.Run("backend took it", func(t *testing.T) {
		n := unitNotice(t, addPath, addSample(t, "gone-ok"))
		calls.Store(0)
		if w := serveCanceled(t, h, n, answering(http.StatusOK)); resultStatus(w) != "S" {
			t.Fatalf("answer after the client left: %s, want S", w.Body)
		}
		rec, found, err := h.store.Get(t.Context(), keyOf("addPaymentMethod", "gone-ok"))
		if err != nil || !found || rec.State != idempotency.StateDone {
			t.Fatalf("record right after the answer: %+v found=%v err=%v; want done", rec, found, err)
		}
		if got := logs.FilterField(zap.String("outcome", outcomeStoreFailed)).Len(); got != 0 {
			t.Fatalf("%d store failures logged", got)
		}
		n.time = ""
		if w, _ := serve(t, h, n, okBackend); resultStatus(w) != "S" || calls.Load() != 1 {
			t.Fatalf("resend: %s, backend calls %d; want S from the record", w.Body, calls.Load())
		}
	})
	t.Run("backend failed", func(t *testing.T) {
		n := unitNotice(t, addPath, addSample(t, "gone-500"))
		calls.Store(0)
		if w := serveCanceled(t, h, n, answering(http.StatusInternalServerError)); resultStatus(w) != "U" {
			t.Fatalf("answer after the client left: %s, want U", w.Body)
		}
		if _, found, err := h.store.Get(t.Context(), keyOf("addPaymentMethod", "gone-500")); err != nil || found {
			t.Fatalf("claim after a failed forward: found=%v err=%v; want released", found, err)
		}
		n.time = ""
		if w, _ := serve(t, h, n, okBackend); resultStatus(w) != "S" {
			t.Fatalf("resend: %s, want S (forwarded again)", w.Body)
		}
	})
}
