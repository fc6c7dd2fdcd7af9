package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/dwshttp"
)

// forwardCtxKey marks a request a dws_notify handler forwards to the
// next handler (synchronously or from its inbox). A dws_notify that gets
// a request so marked sits behind another in the chain, which the
// route-order check refuses where it can tell (config/routeorder.go):
// it answers 500 instead of a DWS envelope (refuseForwarded), and the
// forwarding handler counts that try as a backend failure.
type forwardCtxKey struct{}

// forwardMark is what a forwarded request carries: the handler that
// forwards it, and the dws_notify that got it, if one did.
type forwardMark struct {
	from *Handler
	hit  atomic.Bool
	to   string // the description of the dws_notify that got it, once hit
}

// errNotifyBehindNotify is the error of a forward that reached another
// dws_notify handler instead of the backend.
var errNotifyBehindNotify = errors.New("the notification went to another dws_notify handler, not to the backend: two dws_notify handlers in one chain (docs/configuration.md, \"One dws_notify per chain\")")

// forwardMarked runs the forward of a prepared request, marked: if a
// dws_notify handler got it, whatever status came back is no backend's
// and the try fails with errNotifyBehindNotify.
func (h *Handler) forwardMarked(next caddyhttp.Handler, r *http.Request) (int, time.Duration, error) {
	m := &forwardMark{from: h}
	r = r.WithContext(context.WithValue(r.Context(), forwardCtxKey{}, m))
	status, took, err := dwshttp.Forward(next.ServeHTTP, r, h.settings.ForwardTimeout)
	if m.hit.Load() {
		return status, took, fmt.Errorf("%w: %s took it and answered HTTP %d", errNotifyBehindNotify, m.to, status)
	}
	return status, took, err
}

// refuseForwarded answers a request another dws_notify forwarded (m):
// an ERROR naming both handlers and a 500, never a DWS envelope, which
// the forwarding handler would take for the backend's answer and
// acknowledge a notification no backend got.
func (h *Handler) refuseForwarded(w http.ResponseWriter, r *http.Request, m *forwardMark) error {
	m.to = h.Describe()
	m.hit.Store(true)
	path, _ := originalTarget(r)
	h.logger.Error("dws_notify got a notification another dws_notify forwarded: two dws_notify handlers in one chain; "+
		"it answers HTTP 500, not a DWS envelope, so the first counts the try as a backend failure (docs/configuration.md, \"One dws_notify per chain\")",
		zap.String("handler", m.to), zap.String("forwarded_by", m.from.Describe()), zap.String("path", dwshttp.SenderText(path)))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = io.WriteString(w, "dws_notify: two dws_notify handlers in one chain\n")
	return nil
}
