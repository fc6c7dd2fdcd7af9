package caddymodule

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/dwsnotify/dws_notify/dwshttp"
	"github.com/dwsnotify/dws_notify/dwsmetrics"
	"github.com/dwsnotify/dws_notify/notification"
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
				h.logger.Error("signing the response", keyField(x.api, x.requestID), zap.Error(err))
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

// logLevel is the level of a notification's log line: WARN for what needs
// someone (U: DWS resends, but a cause to look at; a business rejection
// to follow up; a requestId reused with other content; a notification DWS
// sent that broke the field rules), INFO for the rest.
func logLevel(x *exchange) zapcore.Level {
	switch {
	case x.code == notification.UnknownException,
		x.outcome == outcomeBusinessRejected,
		x.outcome == outcomeConflict,
		x.stage == dwsmetrics.StageFieldRules:
		return zapcore.WarnLevel
	}
	return zapcore.InfoLevel
}

// logFieldCount is the number of fields logNotification writes for x, so
// that their slice is allocated once and no larger than needed.
func logFieldCount(x *exchange) int {
	n := 10 // api, request_id (or key), client_id, remote_ip, remote_port, client_ip, outcome, result_code, status, duration
	for _, present := range [...]bool{x.verified, x.outcome == outcomeReplayed, x.stage != "", x.idMissing != "", x.sigReason != "",
		x.code == notification.ParamIllegal && x.message != "", x.err != nil} {
		if present {
			n++
		}
	}
	if x.backendStatus != 0 || x.backendTime != 0 {
		n += 2
	}
	return n
}

// logNotification writes the one log line per notification. It carries
// identifiers, the sender's address, outcome and timings; never card
// fields, bodies, keys or signature values.
func (h *Handler) logNotification(r *http.Request, apiName string, x *exchange, total time.Duration) {
	ce := h.logger.Check(logLevel(x), "dws notification")
	if ce == nil {
		return
	}
	fields := make([]zap.Field, 0, logFieldCount(x))
	fields = append(fields,
		zap.String("api", apiName),
		keyField(x.api, x.requestID),
		zap.String("client_id", x.clientID),
	)
	fields = appendRemote(fields, r)
	fields = append(fields,
		zap.String("outcome", x.outcome),
		zap.String("result_code", string(x.code)),
		zap.Int("status", x.status),
		zap.Duration("duration", total),
	)
	if x.verified {
		fields = append(fields, zap.Int("key_version", x.keyVersion))
	}
	if x.backendStatus != 0 || x.backendTime != 0 {
		fields = append(fields, zap.Int("backend_status", x.backendStatus), zap.Duration("backend_duration", x.backendTime))
	}
	if x.outcome == outcomeReplayed {
		fields = append(fields, zap.Int("replayed_backend_status", x.replayed))
	}
	if x.stage != "" {
		fields = append(fields, zap.String("refused_at", x.stage))
	}
	if x.idMissing != "" {
		name := "request_id_unavailable"
		if isAntom(x.api) {
			name = "key_unavailable"
		}
		fields = append(fields, zap.String(name, x.idMissing))
	}
	if x.sigReason != "" {
		fields = append(fields, zap.String("signature_failure", x.sigReason))
	}
	if x.code == notification.ParamIllegal && x.message != "" {
		fields = append(fields, zap.String("reason", x.message))
	}
	if x.err != nil {
		fields = append(fields, zap.String("error", x.err.Error()))
	}
	ce.Write(fields...)
}

// keyField is the log field of a notification's idempotency key:
// request_id for DWS (the requestId) and for a request no API was found
// for, key for Antom (Result.Key, e.g. paymentId:notifyType:resultStatus).
// The key is sender text: it is cut to dwshttp.MaxSenderText bytes like
// the rest (a valid requestId has at most 64; an Antom key may be longer,
// and is whole on the backend's X-Dws-Idempotency-Key and in the store).
func keyField(api *notification.API, key string) zap.Field {
	if isAntom(api) {
		return zap.String("key", dwshttp.SenderText(key))
	}
	return zap.String("request_id", dwshttp.SenderText(key))
}

func isAntom(api *notification.API) bool { return api != nil && api.Family() == notification.Antom }

// keyName names a notification's key in an answer or error: "requestId"
// for DWS; for Antom, "the notification key" and its fields, e.g. "the
// notification key (paymentId:notifyType:result.resultStatus)".
func keyName(api *notification.API) string {
	if !isAntom(api) {
		return "requestId"
	}
	return "the notification key (" + strings.Join(api.KeyFields(), ":") + ")"
}

// appendRemote appends the sender's address to a notification's log
// fields: remote_ip and remote_port of the connection, and client_ip, the
// address Caddy attributes the request to (the same as remote_ip unless
// the server's trusted_proxies lets a proxy name the client).
func appendRemote(fields []zap.Field, r *http.Request) []zap.Field {
	host, port := dwshttp.SenderText(r.RemoteAddr), ""
	if strings.IndexByte(r.RemoteAddr, ':') >= 0 { // not a Unix socket's peer
		if h, p, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			host, port = h, p
		}
	}
	fields = append(fields, zap.String("remote_ip", host), zap.String("remote_port", port))
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		fields = append(fields, zap.String("client_ip", dwshttp.SenderText(ip)))
	}
	return fields
}
