package notifylog

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dwsnotify/dws_notify/config"
)

func provisionedLine(t *testing.T, p Provisioned) map[string]any {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	zap.New(core).Info("dws_notify provisioned", ProvisionedFields(p)...)
	return logs.All()[0].ContextMap()
}

func TestProvisionedFields(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	if got := SPKISHA256(&key.PublicKey); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("SPKISHA256 = %s", got)
	}

	h := &config.Handler{ClientID: []string{"C1"}, Strict: true}
	e := config.Effective{Retention: time.Hour, ForwardTimeout: 10 * time.Second}
	e.BusinessReject[409], e.BusinessReject[422] = true, true
	p := Provisioned{Handler: h, Settings: e, Ack: config.AckOnDelivery, InboxKeyIDs: []string{"k1"},
		Paths: []ServedPath{{API: "addPaymentMethod", Path: "/add"}, {API: "notifyPayment", Path: "/pay"}}}
	m := provisionedLine(t, p)
	for k, want := range map[string]any{
		"merchant_key": "none (answers are not signed)", "request_time_tolerance": "off", "strict": true,
		"result_message_field": "per api family: resultMsg for DWS, resultMessage for Antom", "acknowledge": config.AckOnDelivery,
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	if got, _ := m["business_reject_status"].([]any); len(got) != 2 {
		t.Errorf("business_reject_status = %v, want 409 and 422", m["business_reject_status"])
	}
	if _, ok := m["inbox_keys"]; ok {
		t.Error("inbox_keys logged with acknowledge on_delivery")
	}

	p.Paths = p.Paths[:1]
	p.Merchant = &KeyPrint{Version: 2, SHA256: "ab"}
	p.Settings.Tolerance = 5 * time.Minute
	p.Settings.Ack.OnReceipt = true
	m = provisionedLine(t, p)
	if m["result_message_field"] != "resultMsg" || m["request_time_tolerance"] != "5m0s" {
		t.Errorf("one DWS API: result_message_field %v, tolerance %v", m["result_message_field"], m["request_time_tolerance"])
	}
	if ids, _ := m["inbox_keys"].([]any); len(ids) != 1 || ids[0] != "k1" {
		t.Errorf("inbox_keys = %v, want the ids only", m["inbox_keys"])
	}
	if got, _ := m["merchant_key"].(*KeyPrint); got == nil || got.Version != 2 {
		t.Errorf("merchant_key = %v", m["merchant_key"])
	}
}
