package dwsmetrics

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/inbox"
	"github.com/dwsnotify/dws_notify/notification"
	"github.com/dwsnotify/dws_notify/signature"
)

func TestLabelsAreBounded(t *testing.T) {
	for status, want := range map[int]string{0: "none", 200: "200", 422: "422", 99: "other", 600: "other", -1: "other"} {
		if got := StatusLabel(status); got != want {
			t.Errorf("StatusLabel(%d) = %q, want %q", status, got, want)
		}
	}
	for _, tc := range []struct {
		version int
		err     error
		want    string
	}{
		{2, nil, "2"},
		{2, fmt.Errorf("x: %w", signature.ErrVerificationFailed), "2"},
		{7, signature.ErrUnknownKeyVersion, "none"},
		{-1, signature.ErrVerificationFailed, "none"},
		{1, errors.New("malformed"), "none"},
	} {
		if got := KeyVersionLabel(tc.version, tc.err); got != tc.want {
			t.Errorf("KeyVersionLabel(%d, %v) = %q, want %q", tc.version, tc.err, got, tc.want)
		}
	}
	if VerificationResult(nil) != "verified" || VerificationResult(signature.ErrVerificationFailed) != "failed" {
		t.Error("VerificationResult")
	}
}

func TestPrecreateMakesTheSeriesAtZero(t *testing.T) {
	c := New()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.All()...)
	c.Precreate(Served{APIs: []string{"addPaymentMethod"}, BusinessReject: []int{409}, KeyVersions: []int{3}, Inbox: true})
	have := map[string]bool{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetValue()
			}
			have[key] = true
		}
	}
	for _, want := range []string{
		// Labels come sorted by name: api, outcome, result_code.
		"caddy_dws_notify_notifications_total addPaymentMethod forwarded SUCCESS",
		// Labels come sorted by name: api, outcome, result_code.
		"caddy_dws_notify_notifications_total addPaymentMethod queued SUCCESS",
		"caddy_dws_notify_notifications_total unknown rejected PARAM_ILLEGAL",
		"caddy_dws_notify_backend_responses_total addPaymentMethod 409",
		"caddy_dws_notify_backend_responses_total addPaymentMethod none",
		"caddy_dws_notify_signature_verifications_total 3 failed",
		"caddy_dws_notify_signature_verifications_total none failed",
		"caddy_dws_notify_refusals_total addPaymentMethod field_rules",
		"caddy_dws_notify_inbox_deliveries_total " + string(inbox.Dead),
		"caddy_dws_notify_signature_failures_total stale",
		"caddy_dws_notify_completion_retries_total started",
	} {
		if !have[want] {
			t.Errorf("no series %s at zero", want)
		}
	}
	// 11 pairs + 2 of the inbox for the API, 1 for "unknown": nothing else.
	if n := count(t, c.Notifications); n != 14 {
		t.Errorf("%d notifications_total series, want 14", n)
	}
	if n := count(t, c.Verifications); n != 3 {
		t.Errorf("%d signature_verifications_total series, want 3 (none/failed, 3/verified, 3/failed)", n)
	}
	// On any path there is no "unknown" API; without the inbox no queue series.
	d := New()
	d.Precreate(Served{APIs: []string{"notifyPayment"}, AnyPath: true})
	if n := count(t, d.Notifications); n != len(notificationSeries) {
		t.Errorf("any path, no inbox: %d notifications_total series, want %d", n, len(notificationSeries))
	}
	if n := count(t, d.InboxDeliveries); n != 0 {
		t.Errorf("no inbox: %d inbox_deliveries_total series", n)
	}
}

func TestObservations(t *testing.T) {
	c := New()
	s := c.Resolve("addPaymentMethod")
	c.ObserveBackend("addPaymentMethod", s, http.StatusOK, 7*time.Second, 10*time.Second)
	c.ObserveBackend("addPaymentMethod", nil, http.StatusOK, 8*time.Second, 10*time.Second)
	c.ObserveBackend("addPaymentMethod", s, 0, 11*time.Second, 10*time.Second)
	if got := value(t, c.BackendResponses.WithLabelValues("addPaymentMethod", "200")); got != 2 {
		t.Errorf("backend 200s: %v, want 2 (resolved and by labels count in one series)", got)
	}
	if got := value(t, c.BackendSlow.WithLabelValues("addPaymentMethod")); got != 2 {
		t.Errorf("slow forwards: %v, want 2 (at 80%% of the timeout and past it)", got)
	}
	c.ObserveNotification("addPaymentMethod", Answered{Series: s, Code: notification.Success, Outcome: OutcomeForwarded}, time.Millisecond)
	c.ObserveNotification("addPaymentMethod", Answered{Code: notification.InvalidSignature, Outcome: OutcomeRejected, SigReason: "stale", Stage: StageSignature}, time.Millisecond)
	if got := value(t, c.Notifications.WithLabelValues("addPaymentMethod", string(notification.Success), OutcomeForwarded)); got != 1 {
		t.Errorf("forwarded: %v", got)
	}
	if value(t, c.SignatureFailures.WithLabelValues("stale")) != 1 || value(t, c.Refusals.WithLabelValues("addPaymentMethod", StageSignature)) != 1 {
		t.Error("a signature refusal is counted by reason and stage")
	}
	now := time.Now()
	c.ObserveQueue("s1", idempotency.QueueStats{Queued: 3, Dead: 1, Oldest: now.Add(-90 * time.Second)}, now)
	if value(t, c.InboxQueued.WithLabelValues("s1")) != 3 || value(t, c.InboxOldest.WithLabelValues("s1")) != 90 || value(t, c.InboxDead.WithLabelValues("s1")) != 1 {
		t.Error("queue gauges")
	}
	c.ObserveQueue("s1", idempotency.QueueStats{}, now)
	if value(t, c.InboxOldest.WithLabelValues("s1")) != 0 {
		t.Error("an empty queue's oldest age is not 0")
	}
}

// count returns how many series c holds.
func count(t *testing.T, c prometheus.Collector) int {
	t.Helper()
	ch := make(chan prometheus.Metric, 1000)
	c.Collect(ch)
	close(ch)
	return len(ch)
}

// value returns the value of a counter or gauge series.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
