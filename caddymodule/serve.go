package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/dwsnotify/dws_notify/dwshttp"
	"github.com/dwsnotify/dws_notify/dwsmetrics"
	"github.com/dwsnotify/dws_notify/notification"
	"github.com/dwsnotify/dws_notify/signature"
)

// Outcomes, as logged and as the outcome label of the metrics
// (dwsmetrics.Outcome*).
const (
	outcomeForwarded        = dwsmetrics.OutcomeForwarded
	outcomeBusinessRejected = dwsmetrics.OutcomeBusinessRejected
	outcomeBackendFailed    = dwsmetrics.OutcomeBackendFailed
	outcomeReplayed         = dwsmetrics.OutcomeReplayed
	outcomeInFlight         = dwsmetrics.OutcomeInFlight
	outcomeConflict         = dwsmetrics.OutcomeConflict
	outcomeRejected         = dwsmetrics.OutcomeRejected
	outcomeStoreFailed      = dwsmetrics.OutcomeStoreFailed
	outcomeReadFailed       = dwsmetrics.OutcomeReadFailed
	outcomeQueued           = dwsmetrics.OutcomeQueued
	outcomeQueueFull        = dwsmetrics.OutcomeQueueFull
)

// exchange is the state of one notification as it moves through ServeHTTP;
// it feeds the answer, the log line, the metrics and the placeholders.
type exchange struct {
	start      time.Time
	uri        string
	clientID   string
	api        *notification.API
	series     *apiSeries // api's resolved metric series; nil on no route
	key        string     // the idempotency key: the requestId for DWS, Result.Key for every family
	keyVersion int
	verified   bool
	bodyRead   bool                // the request body was read to its end
	sigBuf     [512]byte           // the decoded signature of keys up to RSA-4096 (admit parses it before the body)
	repl       *caddy.Replacer     // the request's, for the placeholders; nil outside Caddy
	w          http.ResponseWriter // the answer's writer; its connection's read deadline bounds the body

	status        int // HTTP status of the answer
	code          notification.Code
	message       string
	outcome       string
	stage         string // where a refusal happened (dwsmetrics.Stage*), "" for anything else
	sigReason     string
	backendStatus int // 0 when the backend wrote nothing or was not called
	backendTime   time.Duration
	replayed      int    // a replay: the backend status recorded for the first copy
	idMissing     string // a verified notification refused by the field rules: why no request_id could be read
	err           error  // the internal cause of a U, for the log
}

// ServeHTTP handles one DWS notification, in the order of its journey:
// admit (is it a notification this handler serves, from a configured
// Client-Id, with the signed headers?), authenticate (its body read and its
// signature verified), validate (the API's field rules), dedupe (claim its
// requestId; only the first copy is forwarded to the next handler) and
// answer. It always writes the answer itself and returns nil; the next
// handler only ever sees verified, checked, first-seen notifications, and
// its response never reaches DWS.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// First: a delivery that a dws_notify before this one forwards
	// carries both marks.
	if m, ok := r.Context().Value(forwardCtxKey{}).(*forwardMark); ok {
		return h.refuseForwarded(w, r, m)
	}
	if m, ok := r.Context().Value(deliveryCtxKey{}).(*deliveryMark); ok {
		return h.serveDelivery(r, next, m)
	}
	x := &exchange{start: h.clock(), w: w}
	x.repl, _ = r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if signed, ok := h.admit(x, r); ok {
		if body, ok := h.authenticate(x, r, signed); ok {
			if fp, ok := h.validate(x, body); ok {
				h.dedupe(x, r, next, body, fp)
			}
		}
	}
	h.answer(w, r, x)
	return nil
}

// signedHeaders are the headers the signature covers or names, as admit
// found them once each, parsed.
type signedHeaders struct {
	requestTime string
	sentAt      time.Time
	signature   signature.Header // its Signature aliases the exchange's sigBuf
}

// admit checks what can be checked before the body is read: the path
// serves an API, the method, no encryption or content coding, a
// configured Client-Id, and Request-Time and Signature present once and
// well-formed. A Signature header that does not parse is refused here
// with the answer, log line and metrics its verification would give, so
// a sender of a broken header cannot hold the connection for body_timeout.
// A well-formed header whose keyVersion names no configured key is not
// malformed: the verification refuses it after the body, as before.
func (h *Handler) admit(x *exchange, r *http.Request) (signedHeaders, bool) {
	path, uri := originalTarget(r)
	x.uri = uri
	// A configured Client-Id is echoed (and the answer signed) on every
	// answer, the early refusals included.
	clientID, clientOK := dwshttp.SingleHeader(r.Header, "Client-Id")
	if clientOK && h.ring.HasClient(clientID) {
		x.clientID = clientID
	}
	rt := h.routeFor(path)
	if rt == nil {
		x.reject(http.StatusNotFound, notification.ParamIllegal, "no notify API is served at this path")
		return signedHeaders{}, false
	}
	x.api, x.series = rt.api, rt.series
	if x.repl != nil {
		x.repl.Set("http.dws_notify.api", x.api.Name())
	}
	switch coding, encoded := dwshttp.UnsupportedCoding(r.Header); {
	case r.Method != http.MethodPost:
		x.reject(http.StatusMethodNotAllowed, notification.ParamIllegal, "method must be POST")
		return signedHeaders{}, false
	case dwshttp.AnyValue(r.Header, "Encrypt"):
		x.reject(http.StatusOK, notification.ParamIllegal, "encrypted notifications (Encrypt header) are not supported")
		return signedHeaders{}, false
	case encoded:
		x.reject(http.StatusOK, notification.ParamIllegal, "Content-Encoding "+strconv.Quote(dwshttp.SenderText(coding))+" is not supported")
		return signedHeaders{}, false
	}
	if x.clientID == "" {
		if clientOK {
			x.clientID = dwshttp.SenderText(clientID) // echoed and logged, never signed
		}
		x.reject(http.StatusOK, notification.AccessDenied, "Client-Id is not configured")
		return signedHeaders{}, false
	}

	var s signedHeaders
	var n int
	s.requestTime, n = dwshttp.HeaderOnce(r.Header, "Request-Time")
	switch {
	case n == 0:
		x.badSignature(signature.ErrMissing, "Request-Time header is missing")
		return s, false
	case n > 1:
		x.badSignature(signature.ErrMalformed, "Request-Time header appears more than once")
		return s, false
	}
	var err error
	if s.sentAt, err = signature.ParseRequestTime(s.requestTime); err != nil {
		x.badSignature(err, "Request-Time is malformed")
		return s, false
	}
	sigValue, n := dwshttp.HeaderOnce(r.Header, "Signature")
	switch {
	case n == 0:
		x.badSignature(signature.ErrMissing, "Signature header is missing")
		return s, false
	case n > 1:
		x.badSignature(signature.ErrMalformed, "Signature header appears more than once")
		return s, false
	}
	// Key-Version: Alipay's SDKs send the key version in a header of its
	// own too; it chooses the key when the Signature names none.
	keyVersion, n := dwshttp.HeaderOnce(r.Header, "Key-Version")
	if n > 1 {
		x.badSignature(signature.ErrMalformed, "Key-Version header appears more than once")
		return s, false
	}
	if s.signature, err = signature.ParseHeaderInto(sigValue, x.sigBuf[:0]); err == nil {
		err = s.signature.UseKeyVersionHeader(keyVersion)
	}
	if err != nil {
		// Counted as a failed verification, as it was when the headers
		// were first parsed by the verification after the body.
		h.metrics.ObserveVerification(0, err)
		x.badSignature(err, dwshttp.SignatureMessage(err))
		return s, false
	}
	return s, true
}

// authenticate reads the body and verifies the signature over it, then the
// Request-Time's freshness.
func (h *Handler) authenticate(x *exchange, r *http.Request, s signedHeaders) ([]byte, bool) {
	body, err := h.readBody(x, r)
	switch {
	case errors.Is(err, dwshttp.ErrTooLarge):
		x.reject(http.StatusRequestEntityTooLarge, notification.ParamIllegal, fmt.Sprintf("body exceeds the %d-byte limit", h.settings.MaxBodySize))
		return nil, false
	case err != nil:
		x.fail(outcomeReadFailed, err)
		return nil, false
	}
	x.bodyRead = true

	x.keyVersion, err = h.ring.VerifyParsed(x.clientID, x.uri, s.requestTime, body, s.signature)
	h.metrics.ObserveVerification(x.keyVersion, err)
	if err != nil {
		x.badSignature(err, dwshttp.SignatureMessage(err))
		return nil, false
	}
	if h.settings.Tolerance > 0 {
		if err := signature.CheckFreshness(s.sentAt, h.clock(), h.settings.Tolerance); err != nil {
			x.badSignature(err, "Request-Time is outside the accepted tolerance")
			return nil, false
		}
	}
	x.verified = true
	return body, true
}

// validate runs the API's field rules over the verified body and returns
// its fingerprint; the idempotency key (the requestId for DWS) becomes the
// exchange's key.
func (h *Handler) validate(x *exchange, body []byte) ([32]byte, bool) {
	res, err := x.api.Validate(body, notification.Options{Strict: h.Strict})
	if err != nil {
		// DWS sent it (the signature verified), so it is the one to chase
		// with Alipay: its log line carries what can be read of its key.
		x.key, x.idMissing = dwshttp.RefusedRequestID(x.api, body)
		x.reject(http.StatusOK, notification.ParamIllegal, err.Error())
		return [32]byte{}, false
	}
	x.key = res.Key
	if x.repl != nil {
		x.repl.Set("http.dws_notify.key", res.Key)
		if x.api.Family() == notification.DWS {
			x.repl.Set("http.dws_notify.request_id", res.Key)
		}
	}
	return res.Fingerprint, true
}

// readBody reads the whole body under max_body_size, within body_timeout
// (bodyDeadline).
func (h *Handler) readBody(x *exchange, r *http.Request) ([]byte, error) {
	d := h.bodyDeadline(x, r)
	return dwshttp.ReadBody(r, dwshttp.BodyLimits{
		MaxSize: h.settings.MaxBodySize, Deadline: d.at, Enforced: d.enforced, Now: h.clock,
		Timeout: h.settings.BodyTimeout, Arrived: d.clear,
	})
}

// readDeadline is the read deadline of a body: at, and whether the connection
// enforces it (a blocked read then fails at that moment). Otherwise it is
// only checked between reads, which cuts a trickle but not a stall.
type readDeadline struct {
	at       time.Time
	enforced bool
	rc       *http.ResponseController // set when dws_notify set the deadline
}

// clear removes the deadline dws_notify set, once the body has arrived.
func (d readDeadline) clear() {
	if d.rc != nil {
		_ = d.rc.SetReadDeadline(time.Time{})
	}
}

// bodyDeadline sets the read deadline for the body, body_timeout after the
// handler started, on the connection through http.ResponseController,
// which reaches it behind Caddy's response writer wrappers (Caddy's idle
// read timeout, read_body_idle, keeps the earlier of its own deadline and
// this one). When the server's read_body timeout is at least as short,
// that one already bounds the body and is left alone.
func (h *Handler) bodyDeadline(x *exchange, r *http.Request) readDeadline {
	d := readDeadline{at: x.start.Add(h.settings.BodyTimeout)}
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv.ReadTimeout > 0 && time.Duration(srv.ReadTimeout) <= h.settings.BodyTimeout {
		d.at, d.enforced = x.start.Add(time.Duration(srv.ReadTimeout)), true
		return d
	}
	rc := http.NewResponseController(x.w)
	if err := rc.SetReadDeadline(d.at); err == nil {
		d.enforced, d.rc = true, rc
	}
	return d
}

func (h *Handler) routeFor(path string) *route {
	if h.anyPath != nil {
		return h.anyPath
	}
	for i := range h.apis {
		if h.apis[i].path == path {
			return &h.apis[i]
		}
	}
	return nil
}

// originalTarget returns the path and the request target (path plus query)
// of the request as it reached Caddy, before any rewrite. It reads them
// from the copy Caddy keeps in the context without taking that copy's
// address, so the copy stays on the stack.
func originalTarget(r *http.Request) (path, uri string) {
	if or, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok {
		return or.URL.Path, dwshttp.RequestURI(or.RequestURI, or.URL)
	}
	return r.URL.Path, dwshttp.RequestURI(r.RequestURI, r.URL)
}

// reject answers F. A refusal by the checks (no outcome set yet) is
// before_signature until the signature verified, field_rules after.
func (x *exchange) reject(status int, code notification.Code, msg string) {
	x.status, x.code, x.message = status, code, msg
	if x.outcome == "" {
		x.outcome = outcomeRejected
		x.stage = dwsmetrics.StageBeforeSignature
		if x.verified {
			x.stage = dwsmetrics.StageFieldRules
		}
	}
}

func (x *exchange) badSignature(err error, msg string) {
	x.sigReason = signature.Reason(err)
	x.reject(http.StatusOK, notification.InvalidSignature, msg)
	x.stage = dwsmetrics.StageSignature
}

func (x *exchange) fail(outcome string, err error) {
	x.status, x.code, x.message, x.outcome, x.err = http.StatusOK, notification.UnknownException, "", outcome, err
}

func (x *exchange) succeed(outcome string) {
	x.status, x.code, x.message, x.outcome = http.StatusOK, notification.Success, "", outcome
}
