// Package caddymodule is the Caddy side of dws_notify: the
// http.handlers.dws_notify middleware and the dws_notify Caddyfile
// directive. It is the only package of the project that imports Caddy; the
// signature, message-rule and idempotency logic live in their own packages
// and are wired together here.
//
// For every request the handler reads the body under a size limit, verifies
// the DWS signature over the original request URI and the raw bytes, runs
// the message rules, claims the (Client-Id, API, requestId) key in the
// shared store, forwards first-seen notifications to the next handler
// (normally reverse_proxy) and answers DWS itself with the canonical result
// envelope. Nothing the next handler writes ever reaches DWS.
package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/notification"
	"github.com/dwsnotify/dws_notify/signature"
)

func init() {
	caddy.RegisterModule(new(Handler))
}

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

// Handler receives Alipay DWS payment-method notifications, verifies and
// checks them, dedupes them by requestId and forwards first-seen clean ones
// to the next handler, answering DWS with the canonical result envelope.
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
	DWSPublicKey []KeyConfig `json:"dws_public_key,omitempty"`

	// MerchantPrivateKey, when set, signs every envelope the gateway writes
	// (Signature response header). Optional.
	MerchantPrivateKey *KeyConfig `json:"merchant_private_key,omitempty"`

	// API lists the notify APIs served and the request path of each. The
	// path is the path of the notify URL as DWS calls it, before any rewrite
	// in Caddy. It may be omitted when exactly one API is configured, which
	// then answers on any path. Required.
	API []APIConfig `json:"api,omitempty"`

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
	Store *StoreConfig `json:"store,omitempty"`

	// Retention is how long a requestId is remembered after it was first
	// claimed. It must be at least twice the Request-Time tolerance (which
	// accepts times that far in the past and in the future), so a replay
	// is either deduplicated or rejected as stale, and at least the claim
	// lease (2 × forward_timeout + 5s), so a record outlives the forward it
	// guards. Default: 168h.
	Retention caddy.Duration `json:"retention,omitempty"`

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
	BodyTimeout caddy.Duration `json:"body_timeout,omitempty"`

	// ForwardTimeout bounds the time the next handler (the backend) may take
	// to answer a forwarded notification; past it the notification is
	// answered U and DWS retries. Default: 10s.
	ForwardTimeout caddy.Duration `json:"forward_timeout,omitempty"`

	// BusinessRejectStatus lists the backend statuses that mean the backend
	// refused the notification for a business reason. The protocol says such
	// a failure must still be acknowledged, so these are answered S and
	// recorded for human follow-up. Default: 400, 409, 422.
	BusinessRejectStatus []int `json:"business_reject_status,omitempty"`

	// ResultMessageField names the message field of the result envelope:
	// "resultMsg" (as in the DWS API documents' samples; default),
	// "resultMessage" (as in the documents' text, Alipay's other APIs and
	// its SDKs), or "both" (the message under both names, resultMsg first).
	ResultMessageField string `json:"result_message_field,omitempty"`

	// Strict makes operateSource a required field.
	Strict bool `json:"strict,omitempty"`

	// ForwardSignature keeps DWS's Signature header on the notification
	// forwarded to the next handler, for a backend that verifies the
	// signature itself. By default it is removed: the backend trusts
	// X-Dws-Verified, and a forwarded Signature reaches reverse_proxy's
	// debug log and the backend's own logs.
	ForwardSignature bool `json:"forward_signature,omitempty"`

	logger       *zap.Logger
	ring         *signature.KeyRing
	signer       *signature.Signer
	tolerance    time.Duration // 0 = off
	retention    time.Duration
	forwardLimit time.Duration
	bodyTimeout  time.Duration
	lease        time.Duration
	maxBody      int64
	msgField     notification.MessageField
	business     [600]bool
	apis         []route
	anyPath      *route
	store        *sharedStore
	storeKey     string
	served       []servedKey // registered on store for the admin API
	metrics      *metrics
	keyPrints    []keyPrint // dws_public_key versions and fingerprints, for the provision log line
	merchant     *keyPrint  // merchant_private_key's, nil without one
	unfollow     func()     // stops the module's other lines following this handler's logger
	clock        func() time.Time
	// verify is the RSA verification the key ring makes every one with;
	// nil means the ring's own verifier (each key prepared once). Tests count
	// RSA operations with it.
	verify signature.VerifyFunc
}

// KeyConfig is one key: the key material and its version.
type KeyConfig struct {
	// Key is the key material: bare Base64 of the DER encoding, or PEM.
	// Caddy's {file./path} and {env.NAME} placeholders are resolved when
	// the config is provisioned, so the secret itself stays out of the
	// JSON config.
	Key string `json:"key"`

	// KeyVersion is the key's version, as DWS sends it in the Signature
	// header's keyVersion. Default: 1.
	KeyVersion *int `json:"key_version,omitempty"`
}

func (k KeyConfig) version() int {
	if k.KeyVersion == nil {
		return 1
	}
	return *k.KeyVersion
}

// APIConfig binds one notify API to its request path.
type APIConfig struct {
	// Name is the notify API: addPaymentMethod or removePaymentMethod.
	Name string `json:"name"`

	// Path is the request path DWS calls for this API, e.g.
	// /dws/notify/addPaymentMethod. Optional when only one API is
	// configured.
	Path string `json:"path,omitempty"`
}

// route is a provisioned APIConfig.
type route struct {
	path string
	api  *notification.API
}

// CaddyModule returns the Caddy module information.
func (*Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.dws_notify",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults, resolves and parses the keys, checks the
// settings and, last, takes a reference to the shared store. It logs the
// effective settings in one line.
func (h *Handler) Provision(ctx caddy.Context) (err error) {
	h.logger = ctx.Logger()
	// The store's lines, Badger's and go-redis's go where this handler's
	// go (modlog.go), from the store's opening on.
	h.unfollow = followLogger(h.logger)
	defer func() {
		if err != nil {
			h.unfollow()
		}
	}()
	if h.clock == nil {
		h.clock = time.Now
	}
	if err := h.provisionSettings(); err != nil {
		return err
	}
	if err := h.provisionKeys(); err != nil {
		return err
	}
	h.metrics = registerMetrics(ctx.GetMetricsRegistry(), h.logger)

	spec, err := h.storeSpec()
	if err != nil {
		return err
	}
	store, err := acquire(spec)
	if err != nil {
		return err
	}
	h.store, h.storeKey = store, spec.key
	if err := registerForStart(ctx, store); err != nil {
		return err
	}
	// The admin API looks records up by the Client-Ids and APIs served.
	h.served = make([]servedKey, 0, len(h.ClientID)*len(h.API))
	for _, id := range h.ClientID {
		for _, a := range h.API {
			h.served = append(h.served, servedKey{clientID: id, api: a.Name})
		}
	}
	store.serve(h.served)
	h.metrics.precreate(h)
	h.logProvisioned()
	return nil
}

// provisionSettings applies defaults and checks every setting that needs
// no key material or resources.
func (h *Handler) provisionSettings() error {
	if len(h.ClientID) == 0 {
		return errors.New("dws_notify: client_id is required")
	}
	for _, id := range h.ClientID {
		if id == "" {
			return errors.New("dws_notify: client_id must not be empty")
		}
	}
	if len(h.DWSPublicKey) == 0 {
		return errors.New("dws_notify: dws_public_key is required")
	}
	if err := h.provisionRoutes(); err != nil {
		return err
	}

	h.retention = DefaultRetention
	if h.Retention != 0 {
		h.retention = time.Duration(h.Retention)
	}
	tolerance, err := parseTolerance(h.RequestTimeTolerance)
	if err != nil {
		return fmt.Errorf("dws_notify: request_time_tolerance: %w", err)
	}
	h.tolerance = tolerance
	if err := checkRetention(h.retention, h.tolerance); err != nil {
		return fmt.Errorf("dws_notify: %w", err)
	}

	h.maxBody = DefaultMaxBodySize
	if h.MaxBodySize != 0 {
		h.maxBody = h.MaxBodySize
	}
	if h.maxBody < 0 || h.maxBody > MaxMaxBodySize {
		return fmt.Errorf("dws_notify: max_body_size must be between 1 byte and %d bytes", MaxMaxBodySize)
	}

	h.forwardLimit = DefaultForwardTimeout
	if h.ForwardTimeout != 0 {
		h.forwardLimit = time.Duration(h.ForwardTimeout)
	}
	if h.forwardLimit <= 0 {
		return errors.New("dws_notify: forward_timeout must be positive")
	}
	h.bodyTimeout = DefaultBodyTimeout
	if h.BodyTimeout != 0 {
		h.bodyTimeout = time.Duration(h.BodyTimeout)
	}
	if h.bodyTimeout <= 0 {
		return errors.New("dws_notify: body_timeout must be positive")
	}
	h.lease = leaseFor(h.forwardLimit)
	if err := checkLease(h.retention, h.forwardLimit); err != nil {
		return fmt.Errorf("dws_notify: %w", err)
	}

	statuses := h.BusinessRejectStatus
	if statuses == nil {
		statuses = DefaultBusinessRejectStatus
	}
	h.business = [600]bool{}
	for _, s := range statuses {
		if err := checkBusinessStatus(s); err != nil {
			return fmt.Errorf("dws_notify: business_reject_status: %w", err)
		}
		h.business[s] = true
	}

	field, err := parseMessageField(h.ResultMessageField)
	if err != nil {
		return fmt.Errorf("dws_notify: %w", err)
	}
	h.msgField = field
	return nil
}

func (h *Handler) provisionRoutes() error {
	if len(h.API) == 0 {
		return errors.New("dws_notify: at least one api is required")
	}
	h.apis, h.anyPath = nil, nil
	seenName := map[string]bool{}
	seenPath := map[string]bool{}
	for _, a := range h.API {
		api, ok := notification.LookupAPI(a.Name)
		if !ok {
			return fmt.Errorf("dws_notify: unknown api %q (known: %s)", a.Name, strings.Join(notification.APINames(), ", "))
		}
		if seenName[a.Name] {
			return fmt.Errorf("dws_notify: api %s is configured twice", a.Name)
		}
		seenName[a.Name] = true
		if a.Path == "" {
			if len(h.API) > 1 {
				return fmt.Errorf("dws_notify: api %s needs a path when more than one api is configured", a.Name)
			}
			h.anyPath = &route{api: api}
			continue
		}
		if err := checkAPIPath(a.Path); err != nil {
			return fmt.Errorf("dws_notify: api %s: %w", a.Name, err)
		}
		if seenPath[a.Path] {
			return fmt.Errorf("dws_notify: path %s is used by two apis", a.Path)
		}
		seenPath[a.Path] = true
		h.apis = append(h.apis, route{path: a.Path, api: api})
	}
	return nil
}

// provisionKeys resolves placeholders in the key settings and builds the
// key ring and the response signer.
func (h *Handler) provisionKeys() error {
	repl := caddy.NewReplacer()
	h.ring = signature.NewKeyRingVerifying(h.verify)
	h.keyPrints = nil
	for i, kc := range h.DWSPublicKey {
		material, err := resolveKey(repl, kc.Key)
		if err != nil {
			return fmt.Errorf("dws_notify: dws_public_key #%d: %w", i+1, err)
		}
		pub, err := signature.ParsePublicKey(material)
		if err != nil {
			return fmt.Errorf("dws_notify: dws_public_key #%d: %w", i+1, err)
		}
		if kc.version() < 0 {
			return fmt.Errorf("dws_notify: dws_public_key #%d: key version must not be negative", i+1)
		}
		for _, id := range h.ClientID {
			if err := h.ring.Add(id, kc.version(), pub); err != nil {
				return fmt.Errorf("dws_notify: dws_public_key #%d: %w", i+1, err)
			}
		}
		h.keyPrints = append(h.keyPrints, keyPrint{Version: kc.version(), SHA256: spkiSHA256(pub)})
	}
	h.signer, h.merchant = nil, nil
	if kc := h.MerchantPrivateKey; kc != nil {
		material, err := resolveKey(repl, kc.Key)
		if err != nil {
			return fmt.Errorf("dws_notify: merchant_private_key: %w", err)
		}
		priv, err := signature.ParsePrivateKey(material)
		if err != nil {
			return fmt.Errorf("dws_notify: merchant_private_key: %w", err)
		}
		if kc.version() < 0 {
			return errors.New("dws_notify: merchant_private_key: key version must not be negative")
		}
		h.signer = signature.NewSigner(priv, kc.version())
		h.merchant = &keyPrint{Version: kc.version(), SHA256: spkiSHA256(&priv.PublicKey)}
	}
	return nil
}

// resolveKey replaces {file.*} and {env.*} placeholders in key material;
// a placeholder that resolves to nothing is an error, never an empty key.
func resolveKey(repl *caddy.Replacer, s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", errors.New("key is empty")
	}
	if !strings.Contains(s, "{") {
		return s, nil
	}
	out, err := repl.ReplaceOrErr(s, true, true)
	if err != nil {
		return "", fmt.Errorf("resolving key placeholder: %w (is the file readable, or the environment variable set?)", err)
	}
	return out, nil
}

// Validate checks the provisioned handler. It only reads.
func (h *Handler) Validate() error {
	if err := checkRetention(h.retention, h.tolerance); err != nil {
		return fmt.Errorf("dws_notify: %w", err)
	}
	if h.ring == nil || h.store == nil {
		return errors.New("dws_notify: handler is not provisioned")
	}
	return nil
}

// Cleanup releases the reference to the shared store this instance took.
func (h *Handler) Cleanup() error {
	if h.unfollow != nil {
		h.unfollow()
	}
	if h.storeKey == "" {
		return nil
	}
	key := h.storeKey
	h.storeKey = ""
	h.store.unserve(h.served)
	h.served = nil
	return releaseStore(key)
}

// storageDir returns the canonical absolute storage directory, creating it.
func storageDir(configured string) (string, error) {
	dir := configured
	if dir == "" {
		dir = filepath.Join(caddy.AppDataDir(), "dws_notify")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("dws_notify: storage %s: %w", configured, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("dws_notify: creating storage directory %s: %w", dir, err)
	}
	canonical, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("dws_notify: storage %s: %w", dir, err)
	}
	return canonical, nil
}

// leaseFor is how long a claim blocks duplicates before it is considered
// abandoned (the gateway died mid-forward). It outlasts the longest forward
// and stays well under DWS's first 2-minute retry interval for the default
// forward_timeout.
func leaseFor(forward time.Duration) time.Duration {
	return 2*forward + 5*time.Second
}

func parseTolerance(s string) (time.Duration, error) {
	switch s {
	case "":
		return DefaultRequestTimeTolerance, nil
	case "off":
		return 0, nil
	}
	d, err := caddy.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a duration nor off", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q must be positive (use off to disable the check)", s)
	}
	return d, nil
}

func checkRetention(retention, tolerance time.Duration) error {
	if retention <= 0 {
		return errors.New("retention must be positive")
	}
	if tolerance > 0 && retention < 2*tolerance {
		return fmt.Errorf("retention %s is shorter than twice request_time_tolerance %s: Request-Time is accepted that far in the past and in the future, so a notification dated ahead of the gateway's clock stays fresh for up to %s after it first arrives, and a replay after its record expired would be forwarded again; make retention at least %s",
			retention, tolerance, 2*tolerance, 2*tolerance)
	}
	return nil
}

// checkLease refuses a retention shorter than the claim lease: the store
// would refuse every claim (a record must outlive the lease that guards its
// forward), so every notification would be answered U.
func checkLease(retention, forward time.Duration) error {
	if lease := leaseFor(forward); retention < lease {
		return fmt.Errorf("retention %s is shorter than the claim lease %s (2 × forward_timeout %s + 5s): a record must outlive the forward it guards; make retention at least %s or forward_timeout shorter",
			retention, lease, forward, lease)
	}
	return nil
}

func checkBusinessStatus(s int) error {
	if s < 400 || s > 599 {
		return fmt.Errorf("%d is not an HTTP error status (400-599)", s)
	}
	return nil
}

func checkAPIPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q must start with /", p)
	}
	if strings.ContainsAny(p, "?#") {
		return fmt.Errorf("path %q must not contain a query or fragment", p)
	}
	return nil
}

func parseMessageField(s string) (notification.MessageField, error) {
	switch s {
	case "", string(notification.ResultMsg):
		return notification.ResultMsg, nil
	case string(notification.ResultMessage):
		return notification.ResultMessage, nil
	case string(notification.BothMessageFields):
		return notification.BothMessageFields, nil
	}
	return "", fmt.Errorf("result_message_field must be %s, %s or %s, not %q", notification.ResultMsg, notification.ResultMessage, notification.BothMessageFields, s)
}

// checkLiteralKey parses key material given literally in a Caddyfile, so a
// bad key is reported at its line; material with placeholders is checked
// when the config is provisioned.
func checkLiteralKey(material string, private bool) error {
	if strings.Contains(material, "{") {
		return nil
	}
	if private {
		_, err := signature.ParsePrivateKey(material)
		return err
	}
	_, err := signature.ParsePublicKey(material)
	return err
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
