// Package config is the configuration of the dws_notify handler: its
// settings as the JSON config gives them (Handler, Store and the types in
// them, with a doc comment on every field), their defaults, and every rule
// about them in one place. Check is a pure function of the settings: it
// reads no file, resolves no placeholder and returns the first rule broken
// as a *FieldError naming the settings involved, so the JSON config
// (caddymodule's Provision) and the Caddyfile (which maps a setting to its
// line) report the same message. Effective gives the settings with the
// defaults applied, for a config that passed Check; (*Store).Redis
// (redis.go) resolves the store settings into the Redis store's options at
// provisioning.
//
// It does not import Caddy: caddymodule.Handler embeds Handler, so these
// are the module's JSON fields, and Duration decodes as Caddy's does.
package config

import (
	"net/http"
	"time"
)

// Defaults of the optional settings (SPEC §5).
const (
	DefaultRetention            = 168 * time.Hour
	DefaultRequestTimeTolerance = 48 * time.Hour
	DefaultMaxBodySize          = 64 << 10
	DefaultForwardTimeout       = 10 * time.Second
	DefaultBodyTimeout          = 10 * time.Second
	// MaxMaxBodySize caps max_body_size: notifications are a few KiB and the
	// body is held in memory while it is verified and forwarded.
	MaxMaxBodySize = 16 << 20
)

// DefaultBusinessRejectStatus are the backend statuses that mean "refused
// for a business reason": acknowledged with S and recorded for follow-up.
var DefaultBusinessRejectStatus = []int{http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity}

// Handler is the configuration of one http.handlers.dws_notify handler, as
// its JSON config gives it (caddymodule.Handler embeds it, so these are the
// module's JSON fields) and as the dws_notify Caddyfile directive fills it.
type Handler struct {
	// ClientID lists the Client-Id values this gateway accepts (the
	// merchant's client ids at Alipay). A request with any other Client-Id
	// is answered ACCESS_DENIED. Required.
	ClientID []string `json:"client_id,omitempty"`

	// DWSPublicKey lists DWS's public keys, used to verify notifications.
	// Several keys with different versions allow rotation: the Signature
	// header's keyVersion selects one, or else the Key-Version request
	// header; a notification that names no version is verified with each
	// key, newest (highest) version first, until one verifies. Required.
	DWSPublicKey []Key `json:"dws_public_key,omitempty"`

	// MerchantPrivateKey, when set, signs every envelope the gateway writes
	// (Signature response header). Optional.
	MerchantPrivateKey *Key `json:"merchant_private_key,omitempty"`

	// API lists the notify APIs served and the request path of each. The
	// path is the path of the notify URL as DWS calls it, before any rewrite
	// in Caddy. It may be omitted when exactly one API is configured, which
	// then answers on any path. Required.
	API []API `json:"api,omitempty"`

	// Storage is the directory of the embedded idempotency database
	// (Badger). Default: the "dws_notify" folder in Caddy's data
	// directory. All dws_notify handlers that name the same directory
	// share one database. It is the short form of store with backend
	// badger and this dir; it must be empty with backend redis.
	Storage string `json:"storage,omitempty"`

	// Store chooses the idempotency store: the embedded Badger database
	// (the default, dedupe per gateway instance) or a Redis server shared
	// by a fleet of gateways behind a load balancer (dedupe across all of
	// them). Optional.
	Store *Store `json:"store,omitempty"`

	// Retention is how long a requestId is remembered after it was first
	// claimed. It must be at least twice the Request-Time tolerance (which
	// accepts times that far in the past and in the future), so a replay
	// is either deduplicated or rejected as stale, and at least the claim
	// lease (2 × forward_timeout + 5s), so a record outlives the forward it
	// guards. Default: 168h.
	Retention Duration `json:"retention,omitempty"`

	// RequestTimeTolerance is the largest accepted distance between the
	// Request-Time header and the gateway's clock: a duration such as
	// "48h", or "off" to disable the freshness check. Default: 48h, longer
	// than DWS's 24h22m retry span.
	RequestTimeTolerance string `json:"request_time_tolerance,omitempty"`

	// MaxBodySize is the largest accepted request body in bytes; a larger
	// one is answered with HTTP 413. Default: 65536.
	MaxBodySize int64 `json:"max_body_size,omitempty"`

	// BodyTimeout bounds the time the request body may take to arrive,
	// counted from when dws_notify starts on the request; a slower or
	// stalled body is cut off and answered U (DWS resends). It is a read
	// deadline on the connection, under whichever of Caddy's server
	// timeouts (read_body, read_body_idle) ends first. Default: 10s.
	BodyTimeout Duration `json:"body_timeout,omitempty"`

	// ForwardTimeout bounds the time the next handler (the backend) may take
	// to answer a forwarded notification; past it the notification is
	// answered U and DWS retries. Default: 10s.
	ForwardTimeout Duration `json:"forward_timeout,omitempty"`

	// BusinessRejectStatus lists the backend statuses that mean the backend
	// refused the notification for a business reason. The protocol says such
	// a failure must still be acknowledged, so these are answered S and
	// recorded for human follow-up. Default: 400, 409, 422.
	BusinessRejectStatus []int `json:"business_reject_status,omitempty"`

	// ResultMessageField names the message field of the result envelope,
	// for every api of the handler: "resultMsg" (as in the DWS API
	// documents' samples), "resultMessage" (as in the DWS documents' text,
	// the Antom reference and Alipay's SDKs), or "both" (the message under
	// both names, resultMsg first). Default: per api, as its family's
	// documents spell it: resultMsg for the DWS APIs, resultMessage for
	// the Antom ones.
	ResultMessageField string `json:"result_message_field,omitempty"`

	// Acknowledge chooses when DWS is answered S: once the backend took
	// the notification (on_delivery, the default) or once it is durably
	// queued in the gateway's encrypted inbox, which delivers it
	// (on_receipt). Optional.
	Acknowledge *Acknowledge `json:"acknowledge,omitempty"`

	// Strict applies the rules a sender may not follow yet: operateSource
	// becomes a required field of the DWS notifications; for the Antom ones,
	// the fields only some editions of the reference require become
	// required and the enums Antom extends over time are checked
	// (docs/antom.md, "Rules").
	Strict bool `json:"strict,omitempty"`

	// ForwardSignature keeps DWS's Signature header on the notification
	// forwarded to the next handler, for a backend that verifies the
	// signature itself. By default it is removed: the backend trusts
	// X-Dws-Verified, and a forwarded Signature reaches reverse_proxy's
	// debug log and the backend's own logs.
	ForwardSignature bool `json:"forward_signature,omitempty"`
}

// Key is one key: the key material and its version.
type Key struct {
	// Key is the key material: bare Base64 of the DER encoding, or PEM.
	// Caddy's {file./path} and {env.NAME} placeholders are resolved when
	// the config is provisioned, so the secret itself stays out of the
	// JSON config.
	Key string `json:"key"`

	// KeyVersion is the key's version, as DWS sends it in the Signature
	// header's keyVersion. Default: 1.
	KeyVersion *int `json:"key_version,omitempty"`
}

// Version is the key's version, KeyVersion or its default 1.
func (k Key) Version() int {
	if k.KeyVersion == nil {
		return 1
	}
	return *k.KeyVersion
}

// API binds one notify API to its request path.
type API struct {
	// Name is the notify API: addPaymentMethod or removePaymentMethod
	// (DWS), or notifyPayment, notifyCapture, notifyRefund, notifyDispute,
	// notifyRegistrationStatus, notifyVaulting, notifySubscription or
	// notifySubscriptionPayment (Antom, docs/antom.md).
	Name string `json:"name"`

	// Path is the request path DWS (or Antom) calls for this API, e.g.
	// /dws/notify/addPaymentMethod. Optional when only one API is
	// configured.
	Path string `json:"path,omitempty"`
}
