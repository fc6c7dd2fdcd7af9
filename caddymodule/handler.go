// Package caddymodule is the Caddy side of dws_notify: the
// http.handlers.dws_notify middleware, the dws_notify Caddyfile directive,
// the dws_notify app that opens deferred stores at start, and the
// admin.api.dws_notify endpoints. It is glue: the configuration and its
// rules are package config, the signature, message-rule and idempotency
// logic their own packages, the store runtime idempotency/guard and the
// request's HTTP mechanics package dwshttp; they are wired together here.
//
// For every request the handler reads the body under a size limit, verifies
// the signature (by the keys of dws_public_key) over the original request
// URI and the raw bytes, runs the API's message rules, claims the (Client-Id,
// API, key) record in the shared store (the key is the requestId for DWS,
// the fields the API names joined for Antom: notification.Result.Key),
// forwards first-seen notifications to the next handler (normally
// reverse_proxy) and answers the sender itself with the canonical result
// envelope. Nothing the next handler writes ever reaches the sender.
package caddymodule

import (
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/inbox"
	"github.com/dwsnotify/dws_notify/notification"
	"github.com/dwsnotify/dws_notify/notifylog"
	"github.com/dwsnotify/dws_notify/signature"
)

func init() {
	caddy.RegisterModule(new(Handler))
}

// Handler receives the notifications of the DWS payment-method APIs and of
// the Antom APIs (notification.Names), verifies and checks them, dedupes
// them by their idempotency key (the requestId for DWS, a composed key for
// Antom) and forwards first-seen clean ones to the next handler, answering
// the sender with the canonical result envelope. Its JSON fields are
// config.Handler's.
type Handler struct {
	config.Handler

	logger    *zap.Logger
	settings  config.Effective
	ring      *signature.KeyRing
	signer    *signature.Signer
	apis      []route
	anyPath   *route
	store     *sharedStore
	storeKey  string
	served    []servedKey // registered on store for the admin API
	metrics   *metrics
	keyPrints []keyPrint // dws_public_key versions and fingerprints, for the provision log line
	merchant  *keyPrint  // merchant_private_key's, nil without one
	unfollow  func()     // stops the module's other lines following this handler's logger

	// storeMoves are the stores the running config served some of served
	// from (storechange.go), warned of when this config starts.
	storeMoves []storeMove

	// inbox queues and delivers with acknowledge on_receipt (inbox.go);
	// nil with on_delivery. inboxKeyIDs are its keys' ids, newest first.
	inbox       *inbox.Inbox
	inboxKeyIDs []string
	// inboxOrderID names the order secret (a digest's first 8 bytes).
	inboxOrderID string
	clock        func() time.Time
	// verify is the RSA verification the key ring makes every one with;
	// nil means the ring's own verifier (each key prepared once). Tests count
	// RSA operations with it.
	verify signature.VerifyFunc
}

// route is a provisioned config.API.
type route struct {
	path   string
	api    *notification.API
	series *apiSeries // its hot-path metric series, resolved once (precreate)
}

// CaddyModule returns the Caddy module information.
func (*Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.dws_notify",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision checks the settings (config.Handler.Check), applies the
// defaults, resolves and parses the keys and, last, takes a reference to
// the shared store. It logs the effective settings in one line. Its
// errors name the handler (config.Handler.Describe): Caddy's own prefix
// ("server srv0: ... route 0") does not say which of several dws_notify
// blocks failed.
func (h *Handler) Provision(ctx caddy.Context) (err error) {
	defer func() {
		if err != nil {
			err = h.named(err)
		}
	}()
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
	if err := h.Check(); err != nil {
		return err
	}
	h.settings = h.Effective()
	h.provisionRoutes()
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
	// The admin API looks records up by the Client-Ids and APIs served.
	h.served = make([]servedKey, 0, len(h.ClientID)*len(h.API))
	for _, id := range h.ClientID {
		for _, a := range h.API {
			h.served = append(h.served, servedKey{clientID: id, api: a.Name})
		}
	}
	store.serve(h.served)
	h.noteStore(ctx)
	if err := h.provisionInbox(); err != nil {
		return err
	}
	if err := registerForStart(ctx, h); err != nil {
		return err
	}
	h.metrics.precreate(h)
	h.logProvisioned()
	return nil
}

// provisionRoutes maps the request paths to the APIs (checked by Check).
func (h *Handler) provisionRoutes() {
	h.apis, h.anyPath = nil, nil
	for _, a := range h.API {
		api, _ := notification.Lookup(a.Name)
		if a.Path == "" {
			h.anyPath = &route{api: api}
			continue
		}
		h.apis = append(h.apis, route{path: a.Path, api: api})
	}
}

// provisionKeys resolves placeholders in the key settings and builds the
// key ring and the response signer.
func (h *Handler) provisionKeys() error {
	lookup := placeholders()
	h.ring = signature.NewKeyRingVerifying(h.verify)
	h.keyPrints = nil
	for i, kc := range h.DWSPublicKey {
		material, err := config.ResolvePlaceholders(kc.Key, lookup)
		if err != nil {
			return fmt.Errorf("dws_public_key #%d: %w", i+1, err)
		}
		pub, err := signature.ParsePublicKey(material)
		if err != nil {
			return fmt.Errorf("dws_public_key #%d%s: %w", i+1, fromSource(kc.Key), config.KeyRefusal(kc.Key, err))
		}
		for _, id := range h.ClientID {
			if err := h.ring.Add(id, kc.Version(), pub); err != nil {
				return fmt.Errorf("dws_public_key #%d: %w", i+1, err)
			}
		}
		h.keyPrints = append(h.keyPrints, keyPrint{Version: kc.Version(), SHA256: notifylog.SPKISHA256(pub)})
	}
	h.signer, h.merchant = nil, nil
	if kc := h.MerchantPrivateKey; kc != nil {
		material, err := config.ResolvePlaceholders(kc.Key, lookup)
		if err != nil {
			return fmt.Errorf("merchant_private_key: %w", err)
		}
		priv, err := signature.ParsePrivateKey(material)
		if err != nil {
			return fmt.Errorf("merchant_private_key%s: %w", fromSource(kc.Key), config.KeyRefusal(kc.Key, err))
		}
		h.signer = signature.NewSigner(priv, kc.Version())
		h.merchant = &keyPrint{Version: kc.Version(), SHA256: notifylog.SPKISHA256(&priv.PublicKey)}
	}
	return nil
}

// fromSource is " (from <placeholder>)" for a key setting that is one
// {file.*} or {env.*} placeholder, else "": during a rotation with two
// key files, the error says which file held the wrong key.
func fromSource(setting string) string {
	if src := config.KeySource(setting); src != "" {
		return " (from " + src + ")"
	}
	return ""
}

// placeholders looks up the {env.*} and {file.*} placeholders of key
// material and store settings (config.ResolvePlaceholders) with Caddy's
// replacer.
func placeholders() config.Lookup {
	repl := caddy.NewReplacer()
	return func(name string) (string, bool) {
		v, ok := repl.Get(name)
		if !ok || v == nil {
			return "", false
		}
		return fmt.Sprint(v), true
	}
}

// Validate checks the provisioned handler. It only reads.
func (h *Handler) Validate() error {
	if h.ring == nil || h.store == nil {
		return h.named(errors.New("handler is not provisioned"))
	}
	if err := h.Check(); err != nil {
		return h.named(err)
	}
	return nil
}

// named puts what identifies the handler in its config before err.
func (h *Handler) named(err error) error {
	return fmt.Errorf("dws_notify for %s: %w", h.Describe(), err)
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
	if h.inbox != nil {
		h.store.deliveries.leave(h)
	}
	// h.served stays: a delivery the old config's routes still carry
	// may read it (serves) while this runs.
	h.store.unserve(h.served)
	h.forgetStore()
	return releaseStore(key)
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
