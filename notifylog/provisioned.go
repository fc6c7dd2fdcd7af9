package notifylog

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"time"

	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/buildinfo"
	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/notification"
)

// KeyPrint names a configured key in logs: its version and the SHA-256
// fingerprint of its public half in DER SubjectPublicKeyInfo form (what
// `openssl pkey -pubin -outform DER | sha256sum` prints for the public
// key), never the key itself.
type KeyPrint struct {
	Version int    `json:"key_version"`
	SHA256  string `json:"sha256"`
}

// SPKISHA256 is the hex SHA-256 of pub's DER SubjectPublicKeyInfo.
func SPKISHA256(pub *rsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// ServedPath is one served API and its path in the provision log line.
type ServedPath struct {
	API  string `json:"api"`
	Path string `json:"path"` // "*" when the only API answers on any path
}

// StoreInfo is the store in the provision log line: what its store_up
// series is labelled with, and its description (never a credential).
type StoreInfo struct {
	Kind        string `json:"kind"`
	ID          string `json:"id"`
	Description string `json:"description"`
}

// Provisioned is what a handler's provision log line says.
type Provisioned struct {
	Handler     *config.Handler  // the configured settings (Client-Ids, strict, forward_signature)
	Settings    config.Effective // the effective settings (defaults applied)
	Paths       []ServedPath
	Keys        []KeyPrint // dws_public_key's
	Merchant    *KeyPrint  // merchant_private_key's, nil without one
	Store       StoreInfo
	CallTimeout time.Duration // the store's call timeout
	Ack         string        // the acknowledge mode
	InboxKeyIDs []string      // with acknowledge on_receipt, the inbox keys' ids
}

// ProvisionedFields are the fields of a handler's one INFO line at
// provisioning: the plugin's build, the served APIs and paths, the keys by
// version and fingerprint, the store, and every effective setting.
func ProvisionedFields(p Provisioned) []zap.Field {
	v := buildinfo.Plugin()
	s := p.Settings
	// result_message_field as it applies to the APIs served.
	spellings := map[notification.MessageField]bool{}
	for _, sp := range p.Paths {
		api, _ := notification.Lookup(sp.API)
		spellings[s.MessageFieldFor(api)] = true
	}
	messageField := "per api family: resultMsg for DWS, resultMessage for Antom"
	if len(spellings) == 1 {
		for f := range spellings {
			messageField = string(f)
		}
	}
	var business []int
	for status, on := range s.BusinessReject {
		if on {
			business = append(business, status)
		}
	}
	tolerance := "off"
	if s.Tolerance > 0 {
		tolerance = s.Tolerance.String()
	}
	fields := []zap.Field{
		zap.String("version", v.Version),
		zap.String("revision", v.Revision),
		zap.Strings("client_ids", p.Handler.ClientID),
		zap.Any("apis", p.Paths),
		zap.Any("dws_public_keys", p.Keys),
	}
	if p.Merchant != nil {
		fields = append(fields, zap.Any("merchant_key", p.Merchant))
	} else {
		fields = append(fields, zap.String("merchant_key", "none (answers are not signed)"))
	}
	fields = append(fields,
		zap.Any("store", p.Store),
		zap.Duration("retention", s.Retention),
		zap.String("request_time_tolerance", tolerance),
		zap.Duration("forward_timeout", s.ForwardTimeout),
		zap.Duration("claim_lease", s.Lease),
		zap.Duration("body_timeout", s.BodyTimeout),
		zap.Int64("max_body_size", s.MaxBodySize),
		zap.Ints("business_reject_status", business),
		zap.String("result_message_field", messageField),
		zap.Bool("strict", p.Handler.Strict),
		zap.Bool("forward_signature", p.Handler.ForwardSignature),
		zap.Duration("store_call_timeout", p.CallTimeout),
		zap.String("acknowledge", p.Ack),
	)
	if a := s.Ack; a.OnReceipt {
		// The keys by their ids only.
		fields = append(fields, zap.Strings("inbox_keys", p.InboxKeyIDs), zap.Duration("max_age", a.MaxAge),
			zap.Duration("first_backoff", a.FirstBackoff), zap.Duration("max_backoff", a.MaxBackoff), zap.Int64("max_queued", a.MaxQueued))
	}
	return fields
}
