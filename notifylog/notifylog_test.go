package notifylog

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dwsnotify/dws_notify/dwshttp"
	"github.com/dwsnotify/dws_notify/dwsmetrics"
	"github.com/dwsnotify/dws_notify/notification"
)

func api(t *testing.T, name string) *notification.API {
	t.Helper()
	a, ok := notification.Lookup(name)
	if !ok {
		t.Fatalf("no API %s", name)
	}
	return a
}

// write writes l and returns the one entry's fields, checking that
// fieldCount sized the slice exactly.
func write(t *testing.T, l *Line) map[string]any {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	ce := zap.New(core).Check(Level(l), "dws notification")
	Write(ce, l)
	e := logs.All()
	if len(e) != 1 {
		t.Fatalf("%d entries", len(e))
	}
	if n := len(e[0].Context); n != fieldCount(l) && !(l.ClientIP == "" && n == fieldCount(l)-1) {
		t.Errorf("%d fields written, fieldCount said %d", n, fieldCount(l))
	}
	return e[0].ContextMap()
}

func TestLineFields(t *testing.T) {
	dws := api(t, "addPaymentMethod")
	m := write(t, &Line{API: "addPaymentMethod", Def: dws, Key: "r1", ClientID: "C", RemoteAddr: "192.0.2.1:4431", ClientIP: "198.51.100.7",
		Outcome: dwsmetrics.OutcomeReplayed, Code: notification.Success, Status: 200, Duration: time.Millisecond,
		Verified: true, KeyVersion: 2, Replayed: true, ReplayedStatus: 201})
	for k, want := range map[string]any{"api": "addPaymentMethod", "request_id": "r1", "client_id": "C", "remote_ip": "192.0.2.1", "remote_port": "4431",
		"client_ip": "198.51.100.7", "outcome": "replayed", "result_code": "SUCCESS", "status": int64(200), "key_version": int64(2), "replayed_backend_status": int64(201)} {
		if m[k] != want {
			t.Errorf("%s = %v (%T), want %v", k, m[k], m[k], want)
		}
	}
	for _, absent := range []string{"backend_status", "refused_at", "reason", "error", "signature_failure", "key"} {
		if _, ok := m[absent]; ok {
			t.Errorf("%s logged on a replay", absent)
		}
	}

	antom := api(t, "notifyPayment")
	long := strings.Repeat("k", dwshttp.MaxSenderText+50)
	m = write(t, &Line{API: "notifyPayment", Def: antom, Key: long, RemoteAddr: "/run/caddy.sock",
		Outcome: dwsmetrics.OutcomeRejected, Code: notification.ParamIllegal, Status: 200, Message: "bad field",
		Verified: true, Stage: dwsmetrics.StageFieldRules, IDMissing: "paymentId is absent",
		BackendTime: time.Second, Err: errors.New("cause")})
	if k, _ := m["key"].(string); k != long {
		t.Errorf("an Antom key is logged whole as key: %q", k)
	}
	for k, want := range map[string]any{"remote_ip": "/run/caddy.sock", "remote_port": "", "refused_at": "field_rules", "key_unavailable": "paymentId is absent",
		"reason": "bad field", "error": "cause", "backend_status": int64(0)} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
}

// A key that passed the rules is logged whole (a subscription's digest is
// what tells two CHANGEs apart, and the key is what an operator copies into
// inspect --request-id); whatever reaches the field is still bounded, at
// notification.MaxKeyLength, the most a valid key has.
func TestKeyFieldWholeAndBounded(t *testing.T) {
	sub := api(t, "notifySubscription")
	key := "subscriptionRequestId_EXAMPLE_0001:CHANGE:7efe7f5e42130f1f8e3d8a0a4b6c9d21"
	if f := KeyField(sub, key); f.Key != "key" || f.String != key {
		t.Errorf("KeyField = %s %q, want the whole key", f.Key, f.String)
	}
	max := strings.Repeat("é", notification.MaxKeyLength/2)
	if f := KeyField(sub, max); f.String != max {
		t.Errorf("a key of MaxKeyLength bytes is cut: %d bytes", len(f.String))
	}
	if f := KeyField(sub, max+"x"); f.String != max+"…" {
		t.Errorf("a key over MaxKeyLength: %d bytes logged", len(f.String))
	}
	if f := KeyField(api(t, "addPaymentMethod"), strings.Repeat("r", 64)+"é"); f.Key != "request_id" || f.String != strings.Repeat("r", 64)+"é" {
		t.Errorf("a DWS requestId of 64 characters: %s %q", f.Key, f.String)
	}
}

func TestLevel(t *testing.T) {
	for _, tc := range []struct {
		l    Line
		want zapcore.Level
	}{
		{Line{Code: notification.Success, Outcome: dwsmetrics.OutcomeForwarded}, zapcore.InfoLevel},
		{Line{Code: notification.Success, Outcome: dwsmetrics.OutcomeBusinessRejected}, zapcore.WarnLevel},
		{Line{Code: notification.UnknownException, Outcome: dwsmetrics.OutcomeStoreFailed}, zapcore.WarnLevel},
		{Line{Code: notification.RepeatReqInconsistent, Outcome: dwsmetrics.OutcomeConflict}, zapcore.WarnLevel},
		{Line{Code: notification.ParamIllegal, Outcome: dwsmetrics.OutcomeRejected, Stage: dwsmetrics.StageFieldRules}, zapcore.WarnLevel},
		{Line{Code: notification.ParamIllegal, Outcome: dwsmetrics.OutcomeRejected, Stage: dwsmetrics.StageBeforeSignature}, zapcore.InfoLevel},
		{Line{Code: notification.InvalidSignature, Outcome: dwsmetrics.OutcomeRejected, Stage: dwsmetrics.StageSignature}, zapcore.InfoLevel},
	} {
		if got := Level(&tc.l); got != tc.want {
			t.Errorf("Level(%+v) = %v, want %v", tc.l, got, tc.want)
		}
	}
}

func TestKeyNames(t *testing.T) {
	dws, antom := api(t, "addPaymentMethod"), api(t, "notifyPayment")
	if KeyName(dws) != "requestId" || KeyName(nil) != "requestId" {
		t.Error("a DWS key is the requestId")
	}
	if got := KeyName(antom); !strings.HasPrefix(got, "the notification key (") || !strings.Contains(got, "paymentId") {
		t.Errorf("KeyName(notifyPayment) = %q", got)
	}
	if KeyField(nil, "x").Key != "request_id" || KeyField(antom, "x").Key != "key" || IsAntom(dws) || !IsAntom(antom) {
		t.Error("KeyField or IsAntom")
	}
}
