package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/dwshttp"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/notification"
	"github.com/dwsnotify/dws_notify/notifylog"
)

// dedupe claims the notification's key and forwards it when this is the
// first copy, then records what the backend did; duplicates replay, wait,
// or are refused.
func (h *Handler) dedupe(x *exchange, r *http.Request, next caddyhttp.Handler, body []byte, fp [32]byte) {
	key := idempotency.Key{ClientID: x.clientID, API: x.api.Name(), RequestID: x.key}
	ctx := context.WithoutCancel(r.Context())
	claim, err := h.store.Claim(ctx, key, idempotency.Fingerprint(fp), h.settings.Lease, h.settings.Retention)
	if err != nil {
		x.fail(outcomeStoreFailed, fmt.Errorf("claiming: %w", err))
		return
	}
	switch claim.Status {
	case idempotency.Conflict:
		h.metrics.Duplicates.WithLabelValues(x.api.Name(), outcomeConflict).Inc()
		x.outcome = outcomeConflict
		x.reject(http.StatusOK, notification.RepeatReqInconsistent, notifylog.KeyName(x.api)+" was already used for a notification with different content")
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

	if h.inbox != nil {
		h.enqueue(x, r, key, claim.Token, body)
		return
	}
	h.forward(x, r, next, body)
	if x.backendStatus == 0 || (!isSuccess(x.backendStatus) && !h.isBusiness(x.backendStatus)) {
		if err := h.store.Release(ctx, key, claim.Token); err != nil {
			h.logger.Warn("releasing claim after a failed forward", zap.String("api", key.API), notifylog.KeyField(x.api, key.RequestID), zap.Error(err))
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
		// committed but its fsync failed, the store fails and the guard
		// reopens it, and the retry is answered from what the reopened
		// store holds. Meanwhile the
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
	h.metrics.Duplicates.WithLabelValues(x.api.Name(), outcomeReplayed).Inc()
	x.replayed = rec.Answer.BackendStatus
	x.outcome = outcomeReplayed
	x.status = http.StatusOK
	x.code = notification.Code(rec.Answer.ResultCode)
	if x.code == "" {
		x.code = notification.Success
	}
}

// awaitFirstCopy makes a concurrent duplicate wait, bounded, for the copy
// that holds the claim, then replays its answer or answers U. The record
// is read as soon as it is committed, so it is replayed only once the
// store confirms it as durable as the first copy's completion had to make
// it: that completion may still be waiting for its fsync or its replicas,
// or may have failed there (the first copy then answered U).
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
		if err := h.store.ConfirmDone(r.Context(), key); err != nil {
			x.fail(outcomeStoreFailed, fmt.Errorf("confirming the first copy's record: %w", err))
			return
		}
		h.replay(x, rec)
	default:
		h.metrics.Duplicates.WithLabelValues(x.api.Name(), outcomeInFlight).Inc()
		what := "this requestId"
		if notifylog.IsAntom(x.api) {
			what = notifylog.KeyName(x.api)
		}
		x.fail(outcomeInFlight, fmt.Errorf("the first copy of %s did not complete in time", what))
	}
}

// forwarded is what the backend learns of a notification in its X-Dws-*
// headers: X-Dws-Idempotency-Key for every family, X-Dws-Request-Id for
// DWS only (Antom bodies have no requestId).
func forwarded(api *notification.API, clientID, key string, keyVersion int) dwshttp.Forwarded {
	f := dwshttp.Forwarded{API: api.Name(), ClientID: clientID, Key: key, KeyVersion: keyVersion}
	if api.Family() == notification.DWS {
		f.RequestID = key
	}
	return f
}

// forward passes the notification to the next handler with the exact body
// bytes, a bounded time, and the X-Dws-* headers, recording the backend's
// status without letting anything of its response out.
func (h *Handler) forward(x *exchange, r *http.Request, next caddyhttp.Handler, body []byte) {
	dwshttp.PrepareForward(r, body, forwarded(x.api, x.clientID, x.key, x.keyVersion), h.ForwardSignature)
	status, took, err := h.forwardMarked(next, r)
	x.backendTime, x.backendStatus = took, status
	h.metrics.observeBackend(x.api.Name(), x.series, status, took, h.settings.ForwardTimeout)

	switch {
	case err != nil:
		x.backendStatus = 0
		x.fail(outcomeBackendFailed, err)
	case isSuccess(status) || h.isBusiness(status):
		// completed by the caller
	default:
		x.fail(outcomeBackendFailed, fmt.Errorf("backend answered HTTP %d", status))
	}
}

func isSuccess(status int) bool { return status >= 200 && status < 300 }

// isBusiness reports whether the backend's status is a configured business
// refusal. The status comes from the upstream, which may send any three-digit
// code, so it is bounds-checked.
func (h *Handler) isBusiness(status int) bool {
	return status >= 0 && status < len(h.settings.BusinessReject) && h.settings.BusinessReject[status]
}
