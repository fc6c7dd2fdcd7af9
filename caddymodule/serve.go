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
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/guard"
	"github.com/dwsnotify/dws_notify/notification"
	"github.com/dwsnotify/dws_notify/signature"
)

// Outcomes, as logged and as the outcome label of the metrics.
const (
	outcomeForwarded        = "forwarded"         // backend accepted (2xx)
	outcomeBusinessRejected = "business_rejected" // backend refused for a business reason; acknowledged
	outcomeBackendFailed    = "backend_failed"    // backend failed, timed out or wrote nothing; released
	outcomeReplayed         = "replayed"          // duplicate of a completed notification
	outcomeInFlight         = "in_flight"         // duplicate whose first copy did not finish in time
	outcomeConflict         = "conflict"          // same requestId, other content
	outcomeRejected         = "rejected"          // failed a check before the store was touched
	outcomeStoreFailed      = "store_failed"      // the store could not claim or complete
	outcomeReadFailed       = "read_failed"       // the body could not be read (client gone); DWS retries
)

// exchange is the state of one notification as it moves through ServeHTTP;
// it feeds the answer, the log line, the metrics and the placeholders.
type exchange struct {
	start      time.Time
	uri        string
	clientID   string
	api        *notification.API
	requestID  string
	keyVersion int
	verified   bool
	bodyRead   bool                // the request body was read to its end
	repl       *caddy.Replacer     // the request's, for the placeholders; nil outside Caddy
	w          http.ResponseWriter // the answer's writer; its connection's read deadline bounds the body

	status        int // HTTP status of the answer
	code          notification.Code
	message       string
	outcome       string
	stage         string // where a refusal happened (stage*), "" for anything else
	sigReason     string
	backendStatus int // 0 when the backend wrote nothing or was not called
	backendTime   time.Duration
	replayed      int    // a replay: the backend status recorded for the first copy
	idMissing     string // a verified notification refused by the field rules: why no request_id could be read
	err           error  // the internal cause of a U, for the log
}

// ServeHTTP handles one DWS notification. It always writes the answer itself
// and returns nil; the next handler only ever sees verified, checked,
// first-seen notifications, and its response never reaches DWS.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	x := &exchange{start: h.clock(), w: w}
	x.repl, _ = r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	h.handle(x, r, next)
	h.answer(w, r, x)
	return nil
}

func (h *Handler) handle(x *exchange, r *http.Request, next caddyhttp.Handler) {
	path, uri := originalTarget(r)
	x.uri = uri
	// A configured Client-Id is echoed (and the answer signed) on every
	// answer, the early refusals included.
	clientID, clientOK := singleHeader(r.Header, "Client-Id")
	if clientOK && h.ring.HasClient(clientID) {
		x.clientID = clientID
	}
	rt := h.routeFor(path)
	if rt == nil {
		x.reject(http.StatusNotFound, notification.ParamIllegal, "no notify API is served at this path")
		return
	}
	x.api = rt.api
	if x.repl != nil {
		x.repl.Set("http.dws_notify.api", x.api.Name())
	}
	if r.Method != http.MethodPost {
		x.reject(http.StatusMethodNotAllowed, notification.ParamIllegal, "method must be POST")
		return
	}
	if anyValue(r.Header, "Encrypt") {
		x.reject(http.StatusOK, notification.ParamIllegal, "encrypted notifications (Encrypt header) are not supported")
		return
	}
	if coding, ok := unsupportedCoding(r.Header); ok {
		x.reject(http.StatusOK, notification.ParamIllegal, "Content-Encoding "+strconv.Quote(senderText(coding))+" is not supported")
		return
	}

	if x.clientID == "" {
		if clientOK {
			x.clientID = senderText(clientID) // echoed and logged, never signed
		}
		x.reject(http.StatusOK, notification.AccessDenied, "Client-Id is not configured")
		return
	}

	requestTime, n := headerOnce(r.Header, "Request-Time")
	switch {
	case n == 0:
		x.badSignature(signature.ErrMissing, "Request-Time header is missing")
		return
	case n > 1:
		x.badSignature(signature.ErrMalformed, "Request-Time header appears more than once")
		return
	}
	sentAt, err := signature.ParseRequestTime(requestTime)
	if err != nil {
		x.badSignature(err, "Request-Time is malformed")
		return
	}
	sig, n := headerOnce(r.Header, "Signature")
	switch {
	case n == 0:
		x.badSignature(signature.ErrMissing, "Signature header is missing")
		return
	case n > 1:
		x.badSignature(signature.ErrMalformed, "Signature header appears more than once")
		return
	}

	body, status, err := h.readBody(x, r)
	if err != nil {
		if status == http.StatusRequestEntityTooLarge {
			x.reject(status, notification.ParamIllegal, fmt.Sprintf("body exceeds the %d-byte limit", h.settings.MaxBodySize))
		} else {
			x.fail(outcomeReadFailed, err)
		}
		return
	}
	x.bodyRead = true

	// Key-Version: Alipay's SDKs send the key version in a header of its
	// own too; it chooses the key when the Signature names none.
	keyVersionHeader, n := headerOnce(r.Header, "Key-Version")
	if n > 1 {
		x.badSignature(signature.ErrMalformed, "Key-Version header appears more than once")
		return
	}
	x.keyVersion, err = h.ring.VerifyNotification(x.clientID, x.uri, requestTime, body, sig, keyVersionHeader)
	h.metrics.observeVerification(x.keyVersion, err)
	if err != nil {
		x.badSignature(err, signatureMessage(err))
		return
	}
	if h.settings.Tolerance > 0 {
		if err := signature.CheckFreshness(sentAt, h.clock(), h.settings.Tolerance); err != nil {
			x.badSignature(err, "Request-Time is outside the accepted tolerance")
			return
		}
	}
	x.verified = true

	res, err := x.api.Validate(body, notification.Options{Strict: h.Strict})
	if err != nil {
		// DWS sent it (the signature verified), so it is the one to chase
		// with Alipay: its log line carries what can be read of its key.
		x.requestID, x.idMissing = refusedRequestID(x.api, body)
		x.reject(http.StatusOK, notification.ParamIllegal, err.Error())
		return
	}
	x.requestID = res.Key
	if x.repl != nil {
		x.repl.Set("http.dws_notify.request_id", x.requestID)
	}

	h.dedupeAndForward(x, r, next, body, res.Fingerprint)
}

// dedupeAndForward claims the notification's key and forwards it when this
// is the first copy; duplicates replay, wait, or are refused.
func (h *Handler) dedupeAndForward(x *exchange, r *http.Request, next caddyhttp.Handler, body []byte, fp [32]byte) {
	key := idempotency.Key{ClientID: x.clientID, API: x.api.Name(), RequestID: x.requestID}
	ctx := context.WithoutCancel(r.Context())
	claim, err := h.store.Claim(ctx, key, idempotency.Fingerprint(fp), h.settings.Lease, h.settings.Retention)
	if err != nil {
		x.fail(outcomeStoreFailed, fmt.Errorf("claiming: %w", err))
		return
	}
	switch claim.Status {
	case idempotency.Conflict:
		h.metrics.duplicates.WithLabelValues(x.api.Name(), outcomeConflict).Inc()
		x.outcome = outcomeConflict
		x.reject(http.StatusOK, notification.RepeatReqInconsistent, "requestId was already used for a notification with different content")
		return
	case idempotency.Done:
		h.replay(x, claim.Record)
		return
	case idempotency.InFlight:
		h.awaitFirstCopy(x, r, key, fp, claim.Record)
		return
	case idempotency.Claimed:
	default:
		x.fail(outcomeStoreFailed, fmt.Errorf("unexpected claim status %v", claim.Status))
		return
	}

	finish := h.store.Track(key)
	defer finish()

	h.forward(x, r, next, body)
	if x.backendStatus == 0 || (!isSuccess(x.backendStatus) && !h.isBusiness(x.backendStatus)) {
		if err := h.store.Release(ctx, key, claim.Token); err != nil {
			h.logger.Warn("releasing claim after a failed forward", zap.String("api", key.API), zap.String("request_id", key.RequestID), zap.Error(err))
		}
		return
	}
	ans := idempotency.Answer{ResultCode: string(notification.Success), Outcome: idempotency.OutcomeAccepted, BackendStatus: x.backendStatus}
	if !isSuccess(x.backendStatus) {
		ans.Outcome = idempotency.OutcomeBusinessRejected
	}
	if err := h.store.Complete(ctx, key, claim.Token, ans, h.settings.Retention); err != nil {
		// Never S without a durable record: DWS will retry. If the record
		// was not committed, the claim (in flight under our token) keeps the
		// retry from being forwarded again until its lease expires; if it was
		// committed but its fsync failed, the retry replays S. Meanwhile the
		// completion is retried in the background, so that a store that
		// comes back within the lease still records what the backend did
		// and DWS's resend is replayed instead of forwarded a second time.
		x.fail(outcomeStoreFailed, fmt.Errorf("completing: %w", err))
		if !errors.Is(err, idempotency.ErrLeaseLost) {
			h.retryCompletion(key, claim.Token, ans, claim.Record.LeaseExpiry)
		}
		return
	}
	x.succeed(outcomeForApproval(ans.Outcome))
}

// completions retries, in the background, the completions that failed
// after the backend took a notification (guard.Retrier), for every handler
// of the process.
var completions = guard.NewRetrier(guard.DefaultMaxRetries)

// retryCompletion keeps trying, in the background, to record the outcome of
// a notification the backend took but whose completion failed, until it is
// recorded, the claim is found taken over or gone, the store is closed, or
// the claim's lease ends (until). DWS was answered U; its resend is then
// replayed S instead of being forwarded again once the lease runs out.
func (h *Handler) retryCompletion(key idempotency.Key, token uint64, ans idempotency.Answer, until time.Time) {
	c := guard.Completion{Key: key, Token: token, Answer: ans, Retention: h.settings.Retention, Until: until}
	started := func() { h.metrics.completionRetries.WithLabelValues("started").Inc() }
	ok := completions.Go(h.store, c, started, func(result guard.RetryResult) {
		h.metrics.completionRetries.WithLabelValues(string(result)).Inc()
		log := h.logger.Info
		if result != guard.Stored {
			log = h.logger.Warn
		}
		log("retried a failed completion", zap.String("api", key.API), zap.String("request_id", key.RequestID), zap.String("result", string(result)))
	})
	if !ok {
		h.logger.Warn("not retrying a failed completion: too many retries running", zap.String("api", key.API), zap.String("request_id", key.RequestID))
	}
}

func outcomeForApproval(o idempotency.Outcome) string {
	if o == idempotency.OutcomeBusinessRejected {
		return outcomeBusinessRejected
	}
	return outcomeForwarded
}

// replay answers a duplicate of a completed notification with its stored
// answer. The backend is not called: the log line gives the status the
// backend answered the first copy with as replayed_backend_status, and no
// backend_status or backend_duration.
func (h *Handler) replay(x *exchange, rec idempotency.Record) {
	h.metrics.duplicates.WithLabelValues(x.api.Name(), outcomeReplayed).Inc()
	x.replayed = rec.Answer.BackendStatus
	x.outcome = outcomeReplayed
	x.status = http.StatusOK
	x.code = notification.Code(rec.Answer.ResultCode)
	if x.code == "" {
		x.code = notification.Success
	}
}

// awaitFirstCopy makes a concurrent duplicate wait, bounded, for the copy
// that holds the claim, then replays its answer or answers U.
func (h *Handler) awaitFirstCopy(x *exchange, r *http.Request, key idempotency.Key, fp [32]byte, rec idempotency.Record) {
	deadline := x.start.Add(h.settings.ForwardTimeout + time.Second)
	if !rec.LeaseExpiry.IsZero() && rec.LeaseExpiry.Before(deadline) {
		deadline = rec.LeaseExpiry
	}
	rec, found, err := h.store.AwaitOutcome(r.Context(), key, deadline)
	switch {
	case err != nil:
		x.fail(outcomeStoreFailed, fmt.Errorf("waiting for the first copy: %w", err))
	case found && rec.State == idempotency.StateDone && rec.Fingerprint == idempotency.Fingerprint(fp):
		h.replay(x, rec)
	default:
		h.metrics.duplicates.WithLabelValues(x.api.Name(), outcomeInFlight).Inc()
		x.fail(outcomeInFlight, errors.New("the first copy of this requestId did not complete in time"))
	}
}

// forward passes the notification to the next handler with the exact body
// bytes, a bounded time, and the X-Dws-* headers, recording the backend's
// status without letting anything of its response out.
func (h *Handler) forward(x *exchange, r *http.Request, next caddyhttp.Handler, body []byte) {
	dropSenderHopHeaders(r.Header)
	for name := range r.Header {
		if isDwsHeader(name) {
			delete(r.Header, name)
		}
	}
	if !h.ForwardSignature {
		delete(r.Header, "Signature")
	}
	// The body goes with a fixed Content-Length and no trailers: the
	// sender's trailers (read with a chunked body) would otherwise reach
	// the backend after it, where they could shadow the X-Dws-* headers.
	r.Trailer = nil
	r.Header.Set("X-Dws-Api", x.api.Name())
	r.Header.Set("X-Dws-Client-Id", x.clientID)
	r.Header.Set("X-Dws-Request-Id", x.requestID)
	r.Header.Set("X-Dws-Key-Version", strconv.Itoa(x.keyVersion))
	r.Header.Set("X-Dws-Verified", "true")
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	r.TransferEncoding = nil
	r.ContentLength = int64(len(body))
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }

	ctx, cancel := context.WithTimeout(r.Context(), h.settings.ForwardTimeout)
	defer cancel()
	rec := newBackendRecorder()
	began := time.Now()
	err := callNext(next, rec, r.WithContext(ctx))
	x.backendTime = time.Since(began)
	x.backendStatus = rec.status
	h.metrics.observeBackend(x.api.Name(), rec.status, x.backendTime, h.settings.ForwardTimeout)

	switch {
	case err != nil:
		x.backendStatus = 0
		x.fail(outcomeBackendFailed, fmt.Errorf("backend: %w", err))
	case ctx.Err() != nil:
		x.backendStatus = 0
		x.fail(outcomeBackendFailed, fmt.Errorf("backend did not answer within %s", h.settings.ForwardTimeout))
	case rec.status == 0:
		x.fail(outcomeBackendFailed, errors.New("no handler after dws_notify wrote a response"))
	case isSuccess(rec.status) || h.isBusiness(rec.status):
		// completed by the caller
	default:
		x.fail(outcomeBackendFailed, fmt.Errorf("backend answered HTTP %d", rec.status))
	}
}

// senderHopHeaders are the hop-by-hop request headers: meant for this
// gateway, never for the backend.
var senderHopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Expect"}

// dropSenderHopHeaders removes the headers the sender's Connection header
// names, as a proxy must (RFC 9110 §7.6.1), then the hop-by-hop headers
// themselves. reverse_proxy does the same after dws_notify, so without
// this a sender could name X-Dws-Verified in Connection and have the
// header the gateway set removed on the way to the backend; an Upgrade
// would turn the forward into a protocol switch.
func dropSenderHopHeaders(hdr http.Header) {
	for _, field := range [...]string{"Connection", "Proxy-Connection"} {
		for _, v := range hdr[field] {
			for name := range strings.SplitSeq(v, ",") {
				if name = strings.TrimSpace(name); name != "" {
					hdr.Del(name)
				}
			}
		}
	}
	for _, name := range senderHopHeaders {
		delete(hdr, name)
	}
}

// isDwsHeader reports whether a header name is, or looks like, one of the
// X-Dws-* headers the backend trusts: any letter case, and "_" or "." in
// place of either "-". Caddy drops such names unless the operator allows
// them (the servers options expected_underscore_headers and
// expected_dot_headers), and CGI, FastCGI and PHP backends fold "_", "."
// and "-" onto one variable name, so X_Dws_Verified would read as
// X-Dws-Verified there.
func isDwsHeader(name string) bool {
	const prefix = "x-dws-"
	if len(name) < len(prefix) {
		return false
	}
	for i := range len(prefix) {
		c := name[i]
		switch {
		case c == '_' || c == '.':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// callNext runs the next handler, turning a panic (reverse_proxy aborts a
// broken upstream stream with http.ErrAbortHandler) into an error: nothing
// was written to DWS yet, so the notification can still be answered U.
func callNext(next caddyhttp.Handler, w http.ResponseWriter, r *http.Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if e, ok := p.(error); ok && errors.Is(e, http.ErrAbortHandler) {
				err = errors.New("backend response aborted")
				return
			}
			err = fmt.Errorf("next handler panicked: %v", p)
		}
	}()
	return next.ServeHTTP(w, r)
}

// initialBodyBuffer caps the first allocation for a body, whatever
// Content-Length announces: the buffer then grows with the bytes that
// arrive, so memory follows what a sender really sent, not what it
// claims it will send. Notifications are a few KiB: most fit at once.
const initialBodyBuffer = 4 << 10

// errBodyTimeout is wrapped by the error of a body that did not arrive
// within body_timeout.
var errBodyTimeout = errors.New("the request body did not arrive within body_timeout")

// readBody reads the whole body under max_body_size, within body_timeout.
func (h *Handler) readBody(x *exchange, r *http.Request) ([]byte, int, error) {
	if r.ContentLength > h.settings.MaxBodySize {
		return nil, http.StatusRequestEntityTooLarge, errors.New("body too large")
	}
	// One byte more than announced, so that the read which finds EOF
	// needs no bigger buffer: a body of the announced length, up to
	// initialBodyBuffer, costs exactly one allocation.
	size := int64(512)
	if r.ContentLength >= 0 {
		size = r.ContentLength + 1
	}
	buf := make([]byte, 0, min(size, initialBodyBuffer))
	deadline := h.bodyDeadline(x, r)
	lr := io.LimitedReader{R: r.Body, N: h.settings.MaxBodySize + 1}
	for {
		if len(buf) == cap(buf) {
			// Double, but not past the announced length (plus the byte
			// for EOF): a buffer at most twice what arrived.
			grow := max(cap(buf), 512)
			if r.ContentLength >= 0 {
				grow = max(min(grow, int(r.ContentLength)+1-len(buf)), 1)
			}
			buf = slices.Grow(buf, grow)
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err == nil && !deadline.enforced && h.clock().After(deadline.at) {
			err = os.ErrDeadlineExceeded
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				return nil, http.StatusRequestEntityTooLarge, err
			case errors.Is(err, os.ErrDeadlineExceeded):
				// The expired deadline stays: it also ends net/http's
				// drain of the rest of the body after the answer.
				return nil, 0, fmt.Errorf("%w (%s, %d bytes received): %w", errBodyTimeout, h.settings.BodyTimeout, len(buf), err)
			}
			return nil, 0, fmt.Errorf("reading the request body: %w", err)
		}
	}
	deadline.clear()
	if int64(len(buf)) > h.settings.MaxBodySize {
		return nil, http.StatusRequestEntityTooLarge, errors.New("body too large")
	}
	return buf, 0, nil
}

// bodyRead is the read deadline of a body: at, and whether the connection
// enforces it (a blocked read then fails at that moment). Otherwise it is
// only checked between reads, which cuts a trickle but not a stall.
type bodyRead struct {
	at       time.Time
	enforced bool
	rc       *http.ResponseController // set when dws_notify set the deadline
}

// clear removes the deadline dws_notify set, once the body has been read.
func (d bodyRead) clear() {
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
func (h *Handler) bodyDeadline(x *exchange, r *http.Request) bodyRead {
	d := bodyRead{at: x.start.Add(h.settings.BodyTimeout)}
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv.ReadTimeout > 0 && time.Duration(srv.ReadTimeout) <= h.settings.BodyTimeout {
		d.at, d.enforced = x.start.Add(time.Duration(srv.ReadTimeout)), true
		return d
	}
	if x.w == nil {
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
		return or.URL.Path, requestURI(or.RequestURI, or.URL)
	}
	return r.URL.Path, requestURI(r.RequestURI, r.URL)
}

// requestURI is the request target as DWS sent it: path plus query, from
// a request's RequestURI and URL.
func requestURI(requestURI string, u *url.URL) string {
	if strings.HasPrefix(requestURI, "/") {
		return requestURI
	}
	return u.RequestURI()
}

// anyValue reports whether any line of the header has a non-empty value.
func anyValue(h http.Header, name string) bool {
	for _, v := range h.Values(name) {
		if v != "" {
			return true
		}
	}
	return false
}

// unsupportedCoding returns the first content coding, on any line of the
// Content-Encoding header and in any comma-separated list, that is not
// identity: the body is verified and forwarded as it came, so it must
// not be encoded in any way.
func unsupportedCoding(h http.Header) (string, bool) {
	for _, line := range h.Values("Content-Encoding") {
		for coding := range strings.SplitSeq(line, ",") {
			coding = strings.TrimSpace(coding)
			if coding != "" && !strings.EqualFold(coding, "identity") {
				return coding, true
			}
		}
	}
	return "", false
}

// maxSenderText bounds text that an unauthenticated sender controls
// (a header value) where it reaches a log field or an answer.
const maxSenderText = 64

// senderText returns s cut to at most maxSenderText bytes, on a rune
// boundary, with "…" appended when it was cut.
func senderText(s string) string {
	if len(s) <= maxSenderText {
		return s
	}
	cut := maxSenderText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// singleHeader returns the header's value when it is present exactly once
// and not empty.
func singleHeader(h http.Header, name string) (string, bool) {
	v, n := headerOnce(h, name)
	return v, n == 1
}

// headerOnce returns how many times the header is present with a non-empty
// value, and that value when it is present exactly once.
func headerOnce(h http.Header, name string) (string, int) {
	value, n := "", 0
	for _, s := range h.Values(name) {
		if s != "" {
			value, n = s, n+1
		}
	}
	if n != 1 {
		return "", n
	}
	return value, 1
}

func isSuccess(status int) bool { return status >= 200 && status < 300 }

// isBusiness reports whether the backend's status is a configured business
// refusal. The status comes from the upstream, which may send any three-digit
// code, so it is bounds-checked.
func (h *Handler) isBusiness(status int) bool {
	return status >= 0 && status < len(h.settings.BusinessReject) && h.settings.BusinessReject[status]
}

// signatureMessage is the envelope message for a signature failure; it
// never contains the signature value.
func signatureMessage(err error) string {
	switch {
	case errors.Is(err, signature.ErrMissing):
		return "Signature is missing"
	case errors.Is(err, signature.ErrUnsupportedAlgorithm):
		return "Signature algorithm is not supported (only RSA256)"
	case errors.Is(err, signature.ErrUnknownKeyVersion):
		return "Signature keyVersion is not configured"
	case errors.Is(err, signature.ErrBadEncoding):
		return "Signature value is not valid Base64"
	case errors.Is(err, signature.ErrVerificationFailed):
		return "signature verification failed"
	}
	return "Signature header is malformed"
}

// reject answers F. A refusal by the checks (no outcome set yet) is
// before_signature until the signature verified, field_rules after.
func (x *exchange) reject(status int, code notification.Code, msg string) {
	x.status, x.code, x.message = status, code, msg
	if x.outcome == "" {
		x.outcome = outcomeRejected
		x.stage = stageBeforeSignature
		if x.verified {
			x.stage = stageFieldRules
		}
	}
}

func (x *exchange) badSignature(err error, msg string) {
	x.sigReason = signature.Reason(err)
	x.reject(http.StatusOK, notification.InvalidSignature, msg)
	x.stage = stageSignature
}

func (x *exchange) fail(outcome string, err error) {
	x.status, x.code, x.message, x.outcome, x.err = http.StatusOK, notification.UnknownException, "", outcome, err
}

func (x *exchange) succeed(outcome string) {
	x.status, x.code, x.message, x.outcome = http.StatusOK, notification.Success, "", outcome
}

// backendRecorder is the response writer the next handler gets. It keeps
// the status and size and drops everything else: the backend's headers and
// body never touch the real response. It has its own header map (Caddy's
// ResponseRecorder shares the real one, which would leak backend headers
// such as Content-Length or Set-Cookie onto the envelope), and it is not
// an Unwrap()-able wrapper, so http.ResponseController cannot reach through
// it to flush or hijack the connection to DWS.
type backendRecorder struct {
	header http.Header
	status int
	size   int64
}

func newBackendRecorder() *backendRecorder {
	return &backendRecorder{header: make(http.Header)}
}

func (b *backendRecorder) Header() http.Header { return b.header }

func (b *backendRecorder) WriteHeader(code int) {
	if b.status != 0 || code < 200 { // informational responses are not final
		return
	}
	b.status = code
}

func (b *backendRecorder) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.WriteHeader(http.StatusOK)
	}
	b.size += int64(len(p))
	return len(p), nil
}

// Flush is accepted and does nothing: there is nothing to send.
func (b *backendRecorder) Flush() {}

// answer writes the envelope, logs the notification and records metrics.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, x *exchange) {
	body := notification.AppendEnvelope(make([]byte, 0, 128), x.code, x.message, h.settings.MessageField)
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json; charset=UTF-8")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
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
	now := h.clock()
	respTime := responseTimes.format(now)
	hdr.Set("Response-Time", respTime)
	if x.clientID != "" {
		hdr.Set("Client-Id", x.clientID)
		// Only answers to notifications whose signature verified are
		// signed: anything else would let any sender spend an RSA signing
		// (about 1 ms of CPU; a new query defeats the signer's cache) on
		// a request target of its choosing. DWS only acts on answers to
		// the notifications it sent, and those verify.
		if h.signer != nil && x.verified {
			if sig, err := h.signer.Sign(x.uri, x.clientID, respTime, body); err == nil {
				hdr.Set("Signature", sig)
			} else {
				h.logger.Error("signing the response", zap.String("request_id", x.requestID), zap.Error(err))
			}
		}
	}
	w.WriteHeader(x.status)
	_, _ = w.Write(body)

	if x.repl != nil {
		x.repl.Set("http.dws_notify.result_code", string(x.code))
	}
	apiName := unknownAPI
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
		x.stage == stageFieldRules:
		return zapcore.WarnLevel
	}
	return zapcore.InfoLevel
}

// logFieldCount is the number of fields logNotification writes for x, so
// that their slice is allocated once and no larger than needed.
func logFieldCount(x *exchange) int {
	n := 10 // api, request_id, client_id, remote_ip, remote_port, client_ip, outcome, result_code, status, duration
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
		zap.String("request_id", x.requestID),
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
		fields = append(fields, zap.String("request_id_unavailable", x.idMissing))
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
