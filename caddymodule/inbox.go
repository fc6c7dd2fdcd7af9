package caddymodule

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/dwshttp"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/inbox"
	"github.com/dwsnotify/dws_notify/notification"
	"github.com/dwsnotify/dws_notify/notifylog"
)

// acknowledge on_receipt: the handler's side. A first-seen notification
// is sealed and queued (enqueue) instead of forwarded; the inbox of the
// store (deliveries.go) delivers it later by running a request through
// the server that received it (deliver), which reaches the route's
// dws_notify handler marked as a delivery, and that handler passes it
// straight to the next one (serveDelivery).

// provisionInbox builds the handler's inbox (acknowledge on_receipt): its
// keys and settings, the guarded store's queue, and deliver.
func (h *Handler) provisionInbox() error {
	h.inbox = nil
	if !h.settings.Ack.OnReceipt {
		return nil
	}
	keys, err := h.Acknowledge.ResolveKeys(placeholders())
	if err != nil {
		return err
	}
	a := h.settings.Ack
	log := h.logger.Named("inbox")
	ib, err := inbox.New(inbox.Config{
		Queue:          h.store.Store,
		Keys:           keys.Ring,
		OrderSecret:    keys.OrderSecret,
		Deliver:        h.deliver,
		BusinessReject: h.isBusiness,
		MaxAge:         a.MaxAge,
		FirstBackoff:   a.FirstBackoff,
		MaxBackoff:     a.MaxBackoff,
		MaxQueued:      a.MaxQueued,
		DeliverTimeout: h.settings.ForwardTimeout,
		Retention:      h.settings.Retention,
		Logger:         log,
		KeyField:       inboxKeyField,
		Hooks:          inbox.Hooks{Tried: func(at inbox.Attempt) { h.metrics.observeDelivery(at); logDelivered(log, at) }},
	})
	if err != nil {
		return fmt.Errorf("acknowledge on_receipt: %w", err)
	}
	h.inbox, h.inboxKeyIDs = ib, keys.IDs
	sum := sha256.Sum256(keys.OrderSecret)
	h.inboxOrderID = hex.EncodeToString(sum[:8])
	return nil
}

// logDelivered writes the line of a try the backend took (2xx): the
// answer to "did it reach the backend, and when" in the log, as
// inspect's inbox line is in the store. INFO when the store recorded the
// delivery; WARN with recorded false and the store's error when it did
// not (a.StoreErr), since the item is then delivered again: after its
// lease, or by the deliverer that took it over (idempotency.ErrLeaseLost).
// The key goes through notifylog's bounded key field; the body and
// headers never appear.
func logDelivered(log *zap.Logger, a inbox.Attempt) {
	if a.Result != inbox.Delivered {
		return
	}
	level, msg := zap.InfoLevel, "inbox: notification delivered"
	switch {
	case errors.Is(a.StoreErr, idempotency.ErrLeaseLost):
		level, msg = zap.WarnLevel, "inbox: notification delivered but not recorded: its lease ended and another deliverer took it over, which delivers it again (at-least-once)"
	case a.StoreErr != nil:
		level, msg = zap.WarnLevel, "inbox: notification delivered but not recorded: the store failed, so it is delivered again after its lease (at-least-once)"
	}
	ce := log.Check(level, msg)
	if ce == nil {
		return
	}
	fields := []zap.Field{zap.String("api", a.Key.API), inboxKeyField(a.Key), zap.String("client_id", a.Key.ClientID),
		zap.Int("attempt", a.Attempt), zap.Int("backend_status", a.Status), zap.Duration("backend_duration", a.Took),
		zap.Time("queued_at", a.EnqueuedAt), zap.Duration("queued_for", time.Since(a.EnqueuedAt))}
	if a.StoreErr != nil {
		fields = append(fields, zap.Bool("recorded", false), zap.Error(a.StoreErr))
	}
	ce.Write(fields...)
}

// inboxKeyField names a queued notification's key in the inbox's log
// lines as the request's line names it: request_id for DWS, key for Antom.
func inboxKeyField(k idempotency.Key) zap.Field {
	api, _ := notification.Lookup(k.API)
	return notifylog.KeyField(api, k.RequestID)
}

// sameInbox reports whether handlers h and o, queueing into one store,
// seal and order alike: the store has one delivering inbox, which must
// open every item and keep every customer's order. It says what differs.
func sameInbox(h, o *Handler) error {
	a, b := slices.Sorted(slices.Values(h.inboxKeyIDs)), slices.Sorted(slices.Values(o.inboxKeyIDs))
	switch {
	case !slices.Equal(a, b):
		return fmt.Errorf("inbox keys %v and %v", a, b)
	case h.inboxOrderID != o.inboxOrderID:
		return errors.New("order secrets")
	}
	return nil
}

// enqueue queues a claimed notification (acknowledge on_receipt): S once
// it is durably queued; U when the queue is full (the claim is released,
// so DWS's resend is queued once there is room) or the store failed.
func (h *Handler) enqueue(x *exchange, r *http.Request, key idempotency.Key, token uint64, body []byte) {
	t := dwshttp.Target{Host: r.Host, URI: x.uri, RemoteAddr: r.RemoteAddr}
	if r.TLS != nil {
		t.TLSServerName = cmp.Or(r.TLS.ServerName, "-")
	}
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv != nil {
		t.Server, t.Listen = srv.Name(), listenKey(srv.Listen)
	}
	hdr := dwshttp.QueuedHeader(r, body, forwarded(x.api, key.ClientID, key.RequestID, x.keyVersion), h.ForwardSignature, t)
	ctx := context.WithoutCancel(r.Context())
	err := h.inbox.Enqueue(ctx, key, token, inbox.Message{Header: hdr, Body: body})
	switch {
	case err == nil:
		h.store.deliveries.notify()
		x.succeed(outcomeQueued)
	case errors.Is(err, idempotency.ErrQueueFull):
		if err := h.store.Release(ctx, key, token); err != nil {
			h.logger.Warn("releasing claim after the queue was full", zap.String("api", key.API), notifylog.KeyField(x.api, key.RequestID), zap.Error(err))
		}
		x.fail(outcomeQueueFull, fmt.Errorf("queueing: %w", err))
	default:
		// Not released: the claim keeps a resend from being queued twice
		// while a slow enqueue may still land; a resend after the lease
		// claims again, and Enqueue keeps an item already stored.
		x.fail(outcomeStoreFailed, fmt.Errorf("queueing: %w", err))
	}
}

// deliveryCtxKey marks a request as the delivery of a queued
// notification. Only deliver sets it, and a context value cannot come
// from the network, so a request that carries it was built by this
// process from a notification verified when it was queued.
type deliveryCtxKey struct{}

// deliveryMark is what a delivery request carries and what the
// dws_notify handler on its route reports back.
type deliveryMark struct {
	key idempotency.Key
	// header and body are the notification's: the request that runs
	// through the server's routes carries neither (see deliver), and the
	// dws_notify handler that takes it puts them back.
	header http.Header
	body   []byte
	// keyVersion is the DWS key version that verified it.
	keyVersion int

	reached bool  // a dws_notify handler serving the key took it
	status  int   // the backend's status
	err     error // the backend failed, or no handler took it
}

// deliver runs a queued notification through the server that received
// it, in the config running now, and returns the backend's status (the
// inbox's DeliverFunc).
func (h *Handler) deliver(ctx context.Context, d inbox.Delivery) (int, error) {
	r, t, err := dwshttp.NewDelivery(ctx, d.Header, d.Body)
	if err != nil {
		return 0, err
	}
	srv, err := runningServer(t)
	if err != nil {
		return 0, err
	}
	// The request that goes through the server's routes carries no body
	// and, of the notification's headers, only its Client-Id: if a reload
	// moved the dws_notify route, whatever handler now matches the path
	// gets an empty POST, never card data, and a route picked by a
	// Client-Id matcher (one dws_notify per Client-Id, each with its own
	// key) meets its delivery as it met the notification. The handler
	// that takes it puts the rest back before it calls the next handler.
	m := &deliveryMark{key: d.Key, header: r.Header, body: d.Body, keyVersion: keyVersionOf(d.Header)}
	r.Header = http.Header{"Client-Id": {d.Key.ClientID}}
	r.Body, r.GetBody, r.ContentLength = http.NoBody, nil, 0
	r = r.WithContext(context.WithValue(r.Context(), deliveryCtxKey{}, m))
	srv.ServeHTTP(dwshttp.NewRecorder(), r)
	switch {
	case m.err != nil:
		return 0, m.err
	case !m.reached:
		// A route that no longer leads this notification to a handler
		// serving it (a reload moved it, or a matcher the delivery does
		// not meet): the item waits and is tried again, until its
		// max_age dead-letters it. Said at each try, since nothing else
		// but the metrics would say it.
		h.logger.Named("inbox").Warn("inbox: no dws_notify handler serving the notification took its delivery; it stays queued and is tried again",
			zap.String("api", d.Key.API), inboxKeyField(d.Key), zap.String("client_id", d.Key.ClientID),
			zap.String("server", t.Server), zap.String("host", dwshttp.SenderText(t.Host)), zap.String("path", dwshttp.SenderText(r.URL.Path)))
		return 0, fmt.Errorf("no dws_notify handler serving Client-Id %s and api %s took the delivery on server %s (host %q, path %q)",
			d.Key.ClientID, d.Key.API, t.Server, dwshttp.SenderText(t.Host), dwshttp.SenderText(r.URL.Path))
	}
	return m.status, nil
}

// runningServer is the server of the running config's http app that
// takes a queued notification: the one with t's name if it listens on
// t's addresses; else the one listening there (a reload renamed it: the
// Caddyfile names its servers srv0, srv1, ... by position); else the one
// with t's name (another gateway of a fleet queued it, listening
// elsewhere). Whichever it is, the request crossing its routes carries
// no body and, of the notification's headers, only its Client-Id (deliver), so a route
// that is not a dws_notify handler's never gets them.
func runningServer(t dwshttp.Target) (*caddyhttp.Server, error) {
	app, err := caddy.ActiveContext().AppIfConfigured("http")
	if err != nil {
		return nil, fmt.Errorf("no http app runs: %w", err)
	}
	servers := app.(*caddyhttp.App).Servers
	named := servers[t.Server]
	if named != nil && (t.Listen == "" || listenKey(named.Listen) == t.Listen) {
		return named, nil
	}
	if t.Listen != "" {
		for _, srv := range servers {
			if listenKey(srv.Listen) == t.Listen {
				return srv, nil
			}
		}
	}
	if named != nil {
		return named, nil
	}
	return nil, fmt.Errorf("the running config has no server %q nor one listening on %q, which received the notification", t.Server, t.Listen)
}

// listenKey is a server's listener addresses in a canonical order.
func listenKey(addrs []string) string {
	sorted := slices.Clone(addrs)
	slices.Sort(sorted)
	return strings.Join(sorted, " ")
}

// keyVersionOf reads the key version the queued header carries.
func keyVersionOf(h http.Header) int {
	var v int
	_, _ = fmt.Sscan(h.Get("X-Dws-Key-Version"), &v)
	return v
}

// serveDelivery passes a delivery (a request deliver built, marked with
// m) to the next handler as a synchronous forward would: the same
// X-Dws-* headers, the exact body, forward_timeout. Nothing is verified
// again (it was when it was queued) and nothing is answered: the status
// goes to m. A handler that does not serve the notification's Client-Id
// and API leaves it untaken.
func (h *Handler) serveDelivery(r *http.Request, next caddyhttp.Handler, m *deliveryMark) error {
	if !h.serves(m.key) {
		return nil
	}
	m.reached = true
	api, ok := notification.Lookup(m.key.API)
	if !ok { // cannot be: h.serves(m.key) found the API among the handler's
		m.err = fmt.Errorf("delivery of an unknown API %q", dwshttp.SenderText(m.key.API))
		return nil
	}
	r.Header = m.header
	dwshttp.PrepareForward(r, m.body, forwarded(api, m.key.ClientID, m.key.RequestID, m.keyVersion), h.ForwardSignature)
	status, took, err := h.forwardMarked(next, r)
	h.metrics.observeBackend(m.key.API, nil, status, took, h.settings.ForwardTimeout)
	m.status, m.err = status, err
	return nil
}

// serves reports whether the handler serves key's Client-Id and API.
func (h *Handler) serves(key idempotency.Key) bool {
	for _, s := range h.served {
		if s.clientID == key.ClientID && s.api == key.API {
			return true
		}
	}
	return false
}

// ackMode is the provision log's word for the acknowledgement mode.
func ackMode(e config.Effective) string {
	if e.Ack.OnReceipt {
		return config.AckOnReceipt
	}
	return config.AckOnDelivery
}
