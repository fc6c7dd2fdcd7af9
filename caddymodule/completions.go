package caddymodule

import (
	"time"

	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/guard"
	"github.com/dwsnotify/dws_notify/notification"
	"github.com/dwsnotify/dws_notify/notifylog"
)

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
	api, _ := notification.Lookup(key.API)
	started := func() { h.metrics.CompletionRetries.WithLabelValues("started").Inc() }
	ok := completions.Go(h.store, c, started, func(result guard.RetryResult) {
		h.metrics.CompletionRetries.WithLabelValues(string(result)).Inc()
		// Up to a lease after h's config may have been replaced (and its
		// logger's writers closed): the running config's log.
		log := moduleLog.Info
		if result != guard.Stored {
			log = moduleLog.Warn
		}
		log("retried a failed completion", zap.String("api", key.API), notifylog.KeyField(api, key.RequestID), zap.String("result", string(result)))
	})
	if !ok {
		h.logger.Warn("not retrying a failed completion: too many retries running", zap.String("api", key.API), notifylog.KeyField(api, key.RequestID))
	}
}
