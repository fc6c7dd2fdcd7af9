package caddymodule

import (
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/dwsnotify/dws_notify/dwshttp"
	"github.com/dwsnotify/dws_notify/dwsmetrics"
	"github.com/dwsnotify/dws_notify/notification"
	"github.com/dwsnotify/dws_notify/notifylog"
)

// answer writes the envelope, logs the notification and records metrics.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, x *exchange) {
	body := notification.AppendEnvelope(make([]byte, 0, 128), x.code, x.message, h.settings.MessageFieldFor(x.api))
	now := h.clock()
	respTime := dwshttp.ResponseTime(now)
	// The answer's header values share one backing array (one allocation
	// instead of one per header); each is cut to its own capacity, so an
	// append to one never reaches another. The names are canonical.
	vals := [...]string{"application/json; charset=UTF-8", strconv.Itoa(len(body)), respTime, x.clientID, ""}
	hdr := w.Header()
	hdr["Content-Type"] = vals[0:1:1]
	hdr["Content-Length"] = vals[1:2:2]
	if x.status == http.StatusMethodNotAllowed {
		hdr.Set("Allow", http.MethodPost)
	}
	// Go's server closes the connection when a request's body was not read
	// and the client waits for "100 Continue", but it cannot tell once Caddy
	// has wrapped the body; it then tries to drain a body the client never
	// sends, and the answer reaches nobody until the read times out. So an
	// answer given without reading the body closes the connection itself
	// (HTTP/1 only: on HTTP/2 the header would tear down every stream).
	if !x.bodyRead && r.ContentLength != 0 && r.ProtoMajor == 1 {
		hdr.Set("Connection", "close")
	}
	hdr["Response-Time"] = vals[2:3:3]
	if x.clientID != "" {
		hdr["Client-Id"] = vals[3:4:4]
		// Only answers to notifications whose signature verified are
		// signed: anything else would let any sender spend an RSA signing
		// (about 1 ms of CPU; a new query defeats the signer's cache) on
		// a request target of its choosing. DWS only acts on answers to
		// the notifications it sent, and those verify.
		if h.signer != nil && x.verified {
			if sig, err := h.signer.Sign(x.uri, x.clientID, respTime, body); err == nil {
				vals[4] = sig
				hdr["Signature"] = vals[4:5:5]
			} else {
				h.logger.Error("signing the response", notifylog.KeyField(x.api, x.key), zap.Error(err))
			}
		}
	}
	w.WriteHeader(x.status)
	_, _ = w.Write(body)

	if x.repl != nil {
		x.repl.Set("http.dws_notify.result_code", string(x.code))
	}
	apiName := dwsmetrics.UnknownAPI
	if x.api != nil {
		apiName = x.api.Name()
	}
	h.metrics.observeNotification(apiName, x, now.Sub(x.start))
	h.logNotification(r, apiName, x, now.Sub(x.start))
}

// logNotification writes the one log line per notification (notifylog).
func (h *Handler) logNotification(r *http.Request, apiName string, x *exchange, total time.Duration) {
	l := notifylog.Line{API: apiName, Def: x.api, Key: x.key, ClientID: x.clientID, RemoteAddr: r.RemoteAddr,
		Outcome: x.outcome, Code: x.code, Status: x.status, Message: x.message, Duration: total,
		Verified: x.verified, KeyVersion: x.keyVersion, BackendStatus: x.backendStatus, BackendTime: x.backendTime,
		Replayed: x.outcome == outcomeReplayed, ReplayedStatus: x.replayed,
		Stage: x.stage, IDMissing: x.idMissing, SigReason: x.sigReason, Err: x.err}
	ce := h.logger.Check(notifylog.Level(&l), "dws notification")
	if ce == nil {
		return
	}
	// The address Caddy attributes the request to (trusted_proxies).
	l.ClientIP, _ = caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	notifylog.Write(ce, &l)
}
