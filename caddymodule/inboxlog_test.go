package caddymodule

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/inbox"
)

// A delivery the store recorded is an INFO line; one it did not record
// (the item is delivered again) is a WARN line with recorded false and
// the error, which says who delivers it again; a failed try is no line.
func TestLogDeliveredSaysWhetherRecorded(t *testing.T) {
	at := inbox.Attempt{Key: idempotency.Key{ClientID: "C", API: "addPaymentMethod", RequestID: "r1"},
		Attempt: 1, Status: 200, Result: inbox.Delivered, Took: time.Millisecond, EnqueuedAt: time.Now()}
	lost := fmt.Errorf("acking: %w", idempotency.ErrLeaseLost)
	for _, tc := range []struct {
		name     string
		storeErr error
		level    zapcore.Level
		says     string
	}{
		{"recorded", nil, zap.InfoLevel, "inbox: notification delivered"},
		{"lease lost", lost, zap.WarnLevel, "another deliverer took it over"},
		{"store failed", errors.New("disk on fire"), zap.WarnLevel, "the store failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zap.DebugLevel)
			a := at
			a.StoreErr = tc.storeErr
			logDelivered(zap.New(core), a)
			a.Result = inbox.Retrying
			logDelivered(zap.New(core), a)
			all := logs.All()
			if len(all) != 1 {
				t.Fatalf("%d lines, want 1: %v", len(all), all)
			}
			e := all[0]
			if e.Level != tc.level || !strings.Contains(e.Message, tc.says) {
				t.Errorf("%s %q; want %s saying %q", e.Level, e.Message, tc.level, tc.says)
			}
			fields := e.ContextMap()
			recorded, has := fields["recorded"]
			switch {
			case tc.storeErr == nil && (has || fields["error"] != nil):
				t.Errorf("a recorded delivery has recorded/error fields: %v", fields)
			case tc.storeErr != nil && (recorded != false || fields["error"] != tc.storeErr.Error()):
				t.Errorf("fields %v; want recorded false and error %q", fields, tc.storeErr)
			}
			if fields["request_id"] != "r1" || fields["backend_status"] != int64(200) {
				t.Errorf("fields %v lack the key or the status", fields)
			}
		})
	}
}

// The inbox's lines name a queued notification's key as the request's
// line does: request_id for DWS, key for Antom's composed key.
func TestInboxKeyField(t *testing.T) {
	for api, want := range map[string]string{"addPaymentMethod": "request_id", "notifyPayment": "key", "notifyRefund": "key"} {
		f := inboxKeyField(idempotency.Key{ClientID: "C", API: api, RequestID: "k1"})
		if f.Key != want || f.String != "k1" {
			t.Errorf("%s: field %s=%q, want %s=k1", api, f.Key, f.String, want)
		}
	}
}
