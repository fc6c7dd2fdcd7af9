package caddymodule

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/dwsnotify/dws_notify/notification"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("dws_notify", parseCaddyfile)
	// Before basic_auth: after request_body and the URI rewriters, ahead of
	// encode, handle, route and reverse_proxy, so a plain site block works.
	httpcaddyfile.RegisterDirectiveOrder("dws_notify", httpcaddyfile.Before, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	dws_notify [<matcher>] {
//		client_id <id>...
//		dws_public_key <key> [<key_version>]
//		merchant_private_key <key> [<key_version>]
//		api <addPaymentMethod|removePaymentMethod> [<path>]
//		storage <dir>
//		store badger [<dir>]
//		store redis <url> | sentinel <master_name> <host:port>... | cluster <host:port>... {
//			... (see StoreConfig.UnmarshalCaddyfile)
//		}
//		retention <duration>
//		request_time_tolerance <duration>|off
//		max_body_size <size>
//		forward_timeout <duration>
//		body_timeout <duration>
//		business_reject_status <code>...
//		result_message_field resultMsg|resultMessage|both
//		strict
//		forward_signature
//	}
//
// client_id, dws_public_key and api are required; client_id, dws_public_key,
// api and business_reject_status may be repeated. <key> is the key material
// itself (bare Base64 DER or PEM) or a {file./path} / {env.NAME}
// placeholder resolved at provision time. Every error names its line.
//
// The store is the embedded Badger database by default; storage <dir> is
// the short form of store badger <dir> (both may be given if they name the
// same directory). store redis shares the dedupe among every gateway that
// names the same Redis deployment (one server by URL, a Sentinel-managed
// primary, or a Cluster), database and prefix; every value of its settings
// may be a {env.*} / {file.*} placeholder, resolved at provision time.
// Errors never quote a password, a key or a URL's user information.
func (m *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	directiveFile, directiveLine := d.File(), d.Line()
	seen := map[string]int{}
	once := func(name string) error {
		if line, dup := seen[name]; dup {
			return d.Errf("%s is already set at line %d", name, line)
		}
		seen[name] = d.Line()
		return nil
	}
	var apiLines []int

	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		switch name {
		case "client_id":
			ids := d.RemainingArgs()
			if len(ids) == 0 {
				return d.ArgErr()
			}
			for _, id := range ids {
				for _, prev := range m.ClientID {
					if prev == id {
						return d.Errf("client_id %s is listed twice", id)
					}
				}
				m.ClientID = append(m.ClientID, id)
			}

		case "dws_public_key", "merchant_private_key":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.Errf("%s takes the key and an optional key version", name)
			}
			kc := KeyConfig{Key: args[0]}
			if len(args) == 2 {
				v, err := strconv.Atoi(args[1])
				if err != nil || v < 0 {
					return d.Errf("%s: key version %q must be a non-negative integer", name, args[1])
				}
				kc.KeyVersion = &v
			}
			private := name == "merchant_private_key"
			if err := checkLiteralKey(kc.Key, private); err != nil {
				return d.Errf("%s: %v", name, err)
			}
			if private {
				if err := once(name); err != nil {
					return err
				}
				m.MerchantPrivateKey = &kc
				continue
			}
			for _, prev := range m.DWSPublicKey {
				if prev.version() == kc.version() {
					return d.Errf("dws_public_key version %d is configured twice", kc.version())
				}
			}
			m.DWSPublicKey = append(m.DWSPublicKey, kc)

		case "api":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.Errf("api takes the API name and an optional path")
			}
			a := APIConfig{Name: args[0]}
			if _, ok := notification.LookupAPI(a.Name); !ok {
				return d.Errf("unknown api %q (known: %s)", a.Name, strings.Join(notification.APINames(), ", "))
			}
			if len(args) == 2 {
				a.Path = args[1]
				if err := checkAPIPath(a.Path); err != nil {
					return d.Errf("api %s: %v", a.Name, err)
				}
			}
			for _, prev := range m.API {
				if prev.Name == a.Name {
					return d.Errf("api %s is configured twice", a.Name)
				}
				if a.Path != "" && prev.Path == a.Path {
					return d.Errf("path %s is used by api %s too", a.Path, prev.Name)
				}
			}
			m.API = append(m.API, a)
			apiLines = append(apiLines, d.Line())

		case "storage":
			if err := once(name); err != nil {
				return err
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			m.Storage = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			if err := checkStorageAndStore(d, m, seen); err != nil {
				return err
			}

		case "store":
			if err := once(name); err != nil {
				return err
			}
			sc := new(StoreConfig)
			if err := sc.UnmarshalCaddyfile(d); err != nil {
				return err
			}
			m.Store = sc
			if err := checkStorageAndStore(d, m, seen); err != nil {
				return err
			}

		case "retention", "forward_timeout", "body_timeout":
			if err := once(name); err != nil {
				return err
			}
			dur, err := durationArg(d, name)
			if err != nil {
				return err
			}
			switch name {
			case "retention":
				m.Retention = caddy.Duration(dur)
			case "forward_timeout":
				m.ForwardTimeout = caddy.Duration(dur)
			default:
				m.BodyTimeout = caddy.Duration(dur)
			}

		case "request_time_tolerance":
			if err := once(name); err != nil {
				return err
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			if _, err := parseTolerance(d.Val()); err != nil {
				return d.Errf("request_time_tolerance: %v", err)
			}
			m.RequestTimeTolerance = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}

		case "max_body_size":
			if err := once(name); err != nil {
				return err
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			size, err := humanize.ParseBytes(d.Val())
			if err != nil {
				return d.Errf("max_body_size: %q is not a size: %v", d.Val(), err)
			}
			if size == 0 || size > MaxMaxBodySize || size > math.MaxInt64 {
				return d.Errf("max_body_size must be between 1 byte and %s", humanize.IBytes(MaxMaxBodySize))
			}
			m.MaxBodySize = int64(size)
			if d.NextArg() {
				return d.ArgErr()
			}

		case "business_reject_status":
			codes := d.RemainingArgs()
			if len(codes) == 0 {
				return d.ArgErr()
			}
			if m.BusinessRejectStatus == nil {
				m.BusinessRejectStatus = []int{}
			}
			for _, c := range codes {
				s, err := strconv.Atoi(c)
				if err != nil {
					return d.Errf("business_reject_status: %q is not a status code", c)
				}
				if err := checkBusinessStatus(s); err != nil {
					return d.Errf("business_reject_status: %v", err)
				}
				m.BusinessRejectStatus = append(m.BusinessRejectStatus, s)
			}

		case "result_message_field":
			if err := once(name); err != nil {
				return err
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			if _, err := parseMessageField(d.Val()); err != nil {
				return d.Err(err.Error())
			}
			m.ResultMessageField = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}

		case "strict", "forward_signature":
			if err := once(name); err != nil {
				return err
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			if name == "strict" {
				m.Strict = true
			} else {
				m.ForwardSignature = true
			}

		default:
			return d.Errf("unknown subdirective %q", name)
		}
	}

	if len(m.ClientID) == 0 {
		return errAt(directiveFile, directiveLine, "dws_notify: client_id is required")
	}
	if len(m.DWSPublicKey) == 0 {
		return errAt(directiveFile, directiveLine, "dws_notify: dws_public_key is required")
	}
	if len(m.API) == 0 {
		return errAt(directiveFile, directiveLine, "dws_notify: at least one api is required")
	}
	if len(m.API) > 1 {
		for i, a := range m.API {
			if a.Path == "" {
				return errAt(directiveFile, apiLines[i], "dws_notify: api %s needs a path when more than one api is configured", a.Name)
			}
		}
	}
	retention := DefaultRetention
	if m.Retention != 0 {
		retention = time.Duration(m.Retention)
	}
	tolerance, _ := parseTolerance(m.RequestTimeTolerance)
	if err := checkRetention(retention, tolerance); err != nil {
		return errAt(directiveFile, firstSeen(seen, directiveLine, "retention", "request_time_tolerance"), "dws_notify: %v", err)
	}
	forward := DefaultForwardTimeout
	if m.ForwardTimeout > 0 {
		forward = time.Duration(m.ForwardTimeout)
	}
	if err := checkLease(retention, forward); err != nil {
		return errAt(directiveFile, firstSeen(seen, directiveLine, "retention", "forward_timeout"), "dws_notify: %v", err)
	}
	return nil
}

// firstSeen returns the line of the first of names that the block sets,
// or fallback (the directive's line) when it sets none of them.
func firstSeen(seen map[string]int, fallback int, names ...string) int {
	for _, n := range names {
		if l, ok := seen[n]; ok {
			return l
		}
	}
	return fallback
}

// checkStorageAndStore reports, at the line of whichever of storage and
// store came second, a storage that contradicts the store: storage is the
// short form of store badger <dir>, so with store redis, or store badger
// naming another directory, it is an error.
func checkStorageAndStore(d *caddyfile.Dispenser, m *Handler, seen map[string]int) error {
	if m.Storage == "" || m.Store == nil {
		return nil
	}
	storageLine, storeLine := seen["storage"], seen["store"]
	other, otherLine := "store", storeLine
	if storeLine > storageLine {
		other, otherLine = "storage", storageLine
	}
	switch {
	case m.Store.Backend == BackendRedis:
		return errAt(d.File(), max(storageLine, storeLine), "dws_notify: storage %s (line %d) is the directory of the Badger store, but store redis (line %d) uses Redis: remove storage", m.Storage, storageLine, storeLine)
	case m.Store.Dir != "" && !sameDir(m.Store.Dir, m.Storage):
		return errAt(d.File(), max(storageLine, storeLine), "dws_notify: storage %s and store badger %s name different directories (%s is at line %d): storage is the short form of store badger <dir>; give one", m.Storage, m.Store.Dir, other, otherLine)
	}
	return nil
}

// errAt formats an error for a line of the Caddyfile the way the
// dispenser's own errors are formatted.
func errAt(file string, line int, format string, args ...any) error {
	return fmt.Errorf("%s, at %s:%d", fmt.Sprintf(format, args...), file, line)
}

func durationArg(d *caddyfile.Dispenser, name string) (time.Duration, error) {
	if !d.NextArg() {
		return 0, d.ArgErr()
	}
	dur, err := caddy.ParseDuration(d.Val())
	if err != nil {
		return 0, d.Errf("%s: %q is not a duration", name, d.Val())
	}
	if dur <= 0 {
		return 0, d.Errf("%s must be positive", name)
	}
	if d.NextArg() {
		return 0, d.ArgErr()
	}
	return dur, nil
}
