package caddymodule

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/config"
)

func TestProvisionResolvesSecretPlaceholders(t *testing.T) {
	k := keys(t)
	t.Setenv("DWS_TEST_PUBLIC_KEY", bareBase64(t, &k.dws.PublicKey))
	h := baseHandler(t)
	h.DWSPublicKey = []config.Key{{Key: "{env.DWS_TEST_PUBLIC_KEY}"}}
	h.MerchantPrivateKey = &config.Key{Key: "{file." + filepath.Join(k.dir, "merchant_private.pem") + "}"}
	provisioned(t, newContext(t), h)
	w, _ := serve(t, h, unitNotice(t, addPath, addSample(t, "env")), okBackend)
	if !strings.Contains(w.Body.String(), `"resultStatus":"S"`) || w.Header().Get("Signature") == "" {
		t.Fatalf("answer %d %s, Signature %q", w.Code, w.Body, w.Header().Get("Signature"))
	}
}

func TestProvisionErrors(t *testing.T) {
	k := keys(t)
	cases := []struct {
		name   string
		mutate func(h *Handler)
		want   string
	}{
		{"no client", func(h *Handler) { h.ClientID = nil }, "client_id is required"},
		{"empty client", func(h *Handler) { h.ClientID = []string{""} }, "client_id must not be empty"},
		{"no key", func(h *Handler) { h.DWSPublicKey = nil }, "dws_public_key is required"},
		{"no api", func(h *Handler) { h.API = nil }, "at least one api is required"},
		{"unknown api", func(h *Handler) { h.API = []config.API{{Name: "NotifyPayment"}} }, `unknown api "NotifyPayment"`},
		{"api without path", func(h *Handler) { h.API[1].Path = "" }, "needs a path when more than one api is configured"},
		{"retention below tolerance", func(h *Handler) { h.Retention = config.Duration(24 * time.Hour) },
			"retention 24h0m0s is shorter than twice request_time_tolerance 48h0m0s"},
		{"retention equal to the tolerance", func(h *Handler) { h.Retention = config.Duration(48 * time.Hour) },
			"retention 48h0m0s is shorter than twice request_time_tolerance 48h0m0s"},
		{"retention just below twice the tolerance", func(h *Handler) {
			h.RequestTimeTolerance = "10s"
			h.Retention = config.Duration(20*time.Second - time.Millisecond)
		}, "make retention at least 20s"},
		{"retention below the lease", func(h *Handler) { h.RequestTimeTolerance = "off"; h.Retention = config.Duration(3 * time.Second) },
			"retention 3s is shorter than the claim lease 25s"},
		{"tolerance garbage", func(h *Handler) { h.RequestTimeTolerance = "soon" }, "request_time_tolerance"},
		{"body size", func(h *Handler) { h.MaxBodySize = 1 << 30 }, "max_body_size must be between"},
		{"negative forward timeout", func(h *Handler) { h.ForwardTimeout = config.Duration(-time.Second) }, "forward_timeout must be positive"},
		{"negative body timeout", func(h *Handler) { h.BodyTimeout = config.Duration(-time.Second) }, "body_timeout must be positive"},
		{"business status", func(h *Handler) { h.BusinessRejectStatus = []int{302} }, "302 is not an HTTP error status"},
		{"message field", func(h *Handler) { h.ResultMessageField = "msg" }, "result_message_field must be"},
		{"unset env", func(h *Handler) { h.DWSPublicKey[0].Key = "{env.DWS_TEST_UNSET_VARIABLE}" }, "dws_public_key #1: placeholder {env.DWS_TEST_UNSET_VARIABLE} resolves to nothing"},
		{"missing file", func(h *Handler) { h.DWSPublicKey[0].Key = "{file./nonexistent/dws.pem}" }, "dws_public_key #1: placeholder {file./nonexistent/dws.pem} resolves to nothing"},
		{"garbage key", func(h *Handler) { h.DWSPublicKey[0].Key = "bm90IGEga2V5" }, "dws_public_key #1: "},
		// A key read from a file names the file (during a rotation there
		// are two); one written inline is never quoted.
		{"private key as public", func(h *Handler) {
			h.DWSPublicKey[0].Key = "{file." + filepath.Join(k.dir, "merchant_private.pem") + "}"
		}, "dws_public_key #1 (from {file." + filepath.Join(k.dir, "merchant_private.pem") + "}): found a private key"},
		{"public key as private", func(h *Handler) { h.MerchantPrivateKey = &config.Key{Key: bareBase64(t, &k.dws.PublicKey)} }, "merchant_private_key: "},
		{"public key file as private", func(h *Handler) {
			h.MerchantPrivateKey = &config.Key{Key: " {file." + filepath.Join(k.dir, "dws_public.pem") + "}\n"}
		}, "merchant_private_key (from {file." + filepath.Join(k.dir, "dws_public.pem") + "}): "},
		{"storage is a file", func(h *Handler) {
			f := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			h.Storage = f
		}, "storage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := baseHandler(t)
			tc.mutate(h)
			err := h.Provision(newContext(t))
			defer func() { _ = h.Cleanup() }()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Provision error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
