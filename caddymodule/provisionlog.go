package caddymodule

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"

	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/buildinfo"
	"github.com/dwsnotify/dws_notify/notification"
)

// keyPrint names a configured key in logs: its version and the SHA-256
// fingerprint of its public half in DER SubjectPublicKeyInfo form (what
// `openssl pkey -pubin -outform DER | sha256sum` prints for the public
// key), never the key itself.
type keyPrint struct {
	Version int    `json:"key_version"`
	SHA256  string `json:"sha256"`
}

// spkiSHA256 is the hex SHA-256 of pub's DER SubjectPublicKeyInfo.
func spkiSHA256(pub *rsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// servedPath is one served API and its path in the provision log line.
type servedPath struct {
	API  string `json:"api"`
	Path string `json:"path"` // "*" when the only API answers on any path
}

// storeInfo is the store in the provision log line: what its store_up
// series is labelled with, and its description (never a credential).
type storeInfo struct {
	Kind        string `json:"kind"`
	ID          string `json:"id"`
	Description string `json:"description"`
}

// logProvisioned writes the handler's one INFO line at provisioning: the
// plugin's build, the served APIs and paths, the keys by version and
// fingerprint, the store, and every effective setting (defaults applied).
// `caddy validate` writes it too.
func (h *Handler) logProvisioned() {
	v := buildinfo.Plugin()
	var paths []servedPath
	if h.anyPath != nil {
		paths = append(paths, servedPath{API: h.anyPath.api.Name(), Path: "*"})
	}
	for _, r := range h.apis {
		paths = append(paths, servedPath{API: r.api.Name(), Path: r.path})
	}
	// result_message_field as it applies to the APIs served.
	spellings := map[notification.MessageField]bool{}
	for _, p := range paths {
		api, _ := notification.Lookup(p.API)
		spellings[h.settings.MessageFieldFor(api)] = true
	}
	messageField := "per api family: resultMsg for DWS, resultMessage for Antom"
	if len(spellings) == 1 {
		for f := range spellings {
			messageField = string(f)
		}
	}
	var business []int
	for s, on := range h.settings.BusinessReject {
		if on {
			business = append(business, s)
		}
	}
	tolerance := "off"
	if h.settings.Tolerance > 0 {
		tolerance = h.settings.Tolerance.String()
	}
	fields := []zap.Field{
		zap.String("version", v.Version),
		zap.String("revision", v.Revision),
		zap.Strings("client_ids", h.ClientID),
		zap.Any("apis", paths),
		zap.Any("dws_public_keys", h.keyPrints),
	}
	if h.merchant != nil {
		fields = append(fields, zap.Any("merchant_key", h.merchant))
	} else {
		fields = append(fields, zap.String("merchant_key", "none (answers are not signed)"))
	}
	fields = append(fields,
		zap.Any("store", storeInfo{Kind: h.store.kind, ID: h.store.id, Description: h.store.name}),
		zap.Duration("retention", h.settings.Retention),
		zap.String("request_time_tolerance", tolerance),
		zap.Duration("forward_timeout", h.settings.ForwardTimeout),
		zap.Duration("claim_lease", h.settings.Lease),
		zap.Duration("body_timeout", h.settings.BodyTimeout),
		zap.Int64("max_body_size", h.settings.MaxBodySize),
		zap.Ints("business_reject_status", business),
		zap.String("result_message_field", messageField),
		zap.Bool("strict", h.Strict),
		zap.Bool("forward_signature", h.ForwardSignature),
		zap.Duration("store_call_timeout", h.store.CallTimeout()),
		zap.String("acknowledge", ackMode(h.settings)),
	)
	if a := h.settings.Ack; a.OnReceipt {
		// The keys by their ids only.
		fields = append(fields, zap.Strings("inbox_keys", h.inboxKeyIDs), zap.Duration("max_age", a.MaxAge),
			zap.Duration("first_backoff", a.FirstBackoff), zap.Duration("max_backoff", a.MaxBackoff), zap.Int64("max_queued", a.MaxQueued))
	}
	h.logger.Info("dws_notify provisioned", fields...)
}
